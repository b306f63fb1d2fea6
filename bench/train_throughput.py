"""Training throughput: the fusion model fed by the real stores vs. pre-made tensors, same run.

real:     `Trainer._train_epoch` as `vecomp train` runs it: the task table, the text store and
          the feature stores (held in memory, normalised, pooled) batched every step.
streamed: the same with `train.preload_features: false` (each batch read from the
          memory-mapped stores, normalised and pooled on the fly).
pre-made: the same model, the same steps on the same batches, all collated beforehand (so
          the loop does no data work at all).
The project's target: real >= 90% of pre-made (data loading costs at most 10%).

    python bench/train_throughput.py [--task vqav2] [--epochs 2] [--threads 1]

Needs the demo's prepared task, text store and feature stores (`snakemake --cores 2 text
features`); the model settings are the embedded default's (config/config.yaml).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from vecomp.data.registry import get_task
from vecomp.fusion.data import TaskData
from vecomp.fusion.sweep import train_settings
from vecomp.fusion.train import Run, TrainConfig, Trainer


def build(task: str, encoders: list[str], config: dict, preload: bool = True) -> Trainer:
    model = dict(config["model"])
    pool_grid = model.pop("pool_grid", {})
    settings = TrainConfig.from_dict(train_settings(config, task))
    pool = get_task(task).pool
    stores = {e: Path(f"results/features/{e}/{pool}") for e in encoders}
    missing = [str(p) for p in [Path(f"results/text/{task}"), *stores.values()] if not p.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: run `snakemake --cores 2 text features` first")
    data = TaskData(task, Path(f"results/prepared/{task}"), Path(f"results/text/{task}"), stores,
                    pool_grid, settings.negatives, preload)  # fmt: skip
    return Trainer(Run(task, tuple(encoders), 0, 0.0), data, model, settings)


def real(trainer: Trainer, epochs: int) -> float:
    samples = 0
    started = time.perf_counter()
    for _ in range(epochs):
        trainer._train_epoch()
        samples += trainer._train_size()
    return samples / (time.perf_counter() - started)


def premade(trainer: Trainer, epochs: int) -> float:
    batches = list(trainer.data.batches("train", trainer.train.batch_size, trainer.generator))
    samples = sum(len(b["targets"]) for b in batches) * epochs
    trainer.model.train()
    started = time.perf_counter()
    for _ in range(epochs):
        for batch in batches:
            trainer._step(batch)
    return samples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="vqav2")
    parser.add_argument("--encoders", default="region,grid,patch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(args.config.read_text())
    encoders = args.encoders.split(",")
    speeds = {}
    feeds = (("pre-made", premade, True), ("real", real, True), ("streamed", real, False))
    for name, measure, preload in feeds:
        torch.manual_seed(0)
        trainer = build(args.task, encoders, config, preload)
        measure(trainer, 1)  # warm-up epoch
        speeds[name] = measure(trainer, args.epochs)
    print(f"task {args.task}, encoders {'+'.join(encoders)}, {args.threads} thread(s)")
    print(f"{'feed':<10} {'samples/s':>10}")
    for name, speed in speeds.items():
        print(f"{name:<10} {speed:>10.0f}")
    print(f"real / pre-made = {speeds['real'] / speeds['pre-made']:.2f}  (target >= 0.90)")
    print(f"streamed / pre-made = {speeds['streamed'] / speeds['pre-made']:.2f}")


if __name__ == "__main__":
    main()
