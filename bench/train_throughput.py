"""Training throughput: the fusion model fed by the real stores vs. pre-made tensors, same run.

real:     `Trainer._train_epoch` as `vecomp train` runs it: the task table, the text store and
          the feature stores (held in memory, normalised, pooled) batched every step.
streamed: the same with `train.preload_features: false` (each batch read from the
          memory-mapped stores, normalised and pooled on the fly).
streamed, workers: the same with `train.loader_workers` (default 1) DataLoader processes
          collating the batches ahead of the loop.
pre-made: the same model, the same steps on the same batches, all collated beforehand (so
          the loop does no data work at all).
The project's target: real and streamed >= 90% of pre-made (data loading costs at most 10%).

    python bench/train_throughput.py [--task vqav2] [--epochs 3] [--threads 1] [--workers 1]

Epochs of the four feeds are interleaved and each feed's median epoch speed is reported.

Needs the demo's prepared task, text store and feature stores (`snakemake --cores 2 text
features`); the model settings are the embedded default's (config/config.yaml).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

from vecomp.data.registry import get_task
from vecomp.fusion.data import TaskData
from vecomp.fusion.sweep import train_settings
from vecomp.fusion.train import Run, TrainConfig, Trainer


def build(
    task: str, encoders: list[str], config: dict, preload: bool = True, workers: int = 0
) -> Trainer:
    model = dict(config["model"])
    pool_grid = model.pop("pool_grid", {})
    settings = TrainConfig.from_dict(train_settings(config, task))
    pool = get_task(task).pool
    stores = {e: Path(f"results/features/{e}/{pool}") for e in encoders}
    missing = [str(p) for p in [Path(f"results/text/{task}"), *stores.values()] if not p.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: run `snakemake --cores 2 text features` first")
    data = TaskData(
        task,
        Path(f"results/prepared/{task}"),
        Path(f"results/text/{task}"),
        stores,
        pool_grid,
        settings.negatives,
        preload,
        workers,
    )
    return Trainer(Run(task, tuple(encoders), 0, 0.0), data, model, settings)


def real_epoch(trainer: Trainer) -> float:
    """Samples/s of one training epoch fed as `vecomp train` feeds it."""
    started = time.perf_counter()
    trainer._train_epoch()
    return trainer._train_size() / (time.perf_counter() - started)


def premade_epoch(trainer: Trainer) -> float:
    """Samples/s of the same steps on batches collated before the clock starts."""
    batches = list(trainer.data.batches("train", trainer.train.batch_size, trainer.generator))
    samples = sum(len(b["targets"]) for b in batches)
    trainer.model.train()
    started = time.perf_counter()
    for batch in batches:
        trainer._step(batch)
    return samples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="vqav2")
    parser.add_argument("--encoders", default="region,grid,patch")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs per feed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="loader workers of the last feed")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(args.config.read_text())
    encoders = args.encoders.split(",")
    speeds = {}
    feeds = {  # name: (measure, preload, loader workers)
        "pre-made": (premade_epoch, True, 0),
        "real": (real_epoch, True, 0),
        "streamed": (real_epoch, False, 0),
        "streamed, workers": (real_epoch, False, args.workers),
    }
    trainers = {}
    for name, (_, preload, workers) in feeds.items():
        torch.manual_seed(0)
        trainers[name] = build(args.task, encoders, config, preload, workers)
    samples = {name: [] for name in feeds}
    for epoch in range(args.epochs + 1):  # interleaved, so drifts in machine speed hit all
        for name, (measure, _, _) in feeds.items():
            speed = measure(trainers[name])
            if epoch:  # the first round warms up
                samples[name].append(speed)
    speeds = {name: statistics.median(values) for name, values in samples.items()}
    print(f"task {args.task}, encoders {'+'.join(encoders)}, {args.threads} thread(s)")
    print(f"{'feed':<18} {'samples/s':>10} {'/ pre-made':>11}")
    for name, speed in speeds.items():
        print(f"{name:<18} {speed:>10.0f} {speed / speeds['pre-made']:>11.2f}")
    print(f"target: every feed >= 0.90 of pre-made; last feed with {args.workers} worker(s)")


if __name__ == "__main__":
    main()
