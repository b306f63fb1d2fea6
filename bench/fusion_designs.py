"""The two fusion designs side by side on the demo's data: fresh layers over cached text states
(the demo's default) against MiniLM continued over the joint sequence (``model.init``).

Reads what ``snakemake --cores 2`` left under ``results/`` (prepared tasks, feature stores, text
states) and ``config/config.yaml``, tokenises each task's texts for the LM-initialised design,
then trains the same runs (task x encoder subset x seed, VE-dropout 0) under both designs with
the config's training settings (the LM-initialised design adds ``--lr-pretrained`` for MiniLM's
layers, and ``--init-epochs`` can shorten its runs: an epoch costs about 45 times the demo's),
two runs at a time with one thread each (as the demo runs its sweep), and prints each
run's test headline metric and wall seconds. Both designs are measured in the same invocation,
on the same machine, so their costs compare as a ratio.

    python bench/fusion_designs.py [--tasks vqav2,gqa,...] [--subset grid+patch+region]
                                   [--seeds 0 1] [--lr-pretrained 1e-4] [--init-epochs N]
                                   [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = ("from scratch", "model.init")


def load_config() -> dict:
    from vecomp.config import validate_config
    from vecomp.settings import SCHEMA

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return validate_config(config, SCHEMA)


def settings(config: dict, design: str, task: str, args: argparse.Namespace):
    """(model settings, training settings) of one design, as the workflow would pass them."""
    from vecomp.fusion.sweep import model_settings, train_settings

    if design == "from scratch":
        return model_settings(config["model"], args.subset), train_settings(config, task)
    init = config["text"]["model"]
    model = {k: v for k, v in config["model"].items() if k in ("dropout", "pool_grid")}
    changed = config | {"model": model | {"init": init}}
    train = train_settings(changed, task) | {"lr_pretrained": args.lr_pretrained}
    if args.init_epochs:
        train["epochs"] = args.init_epochs
    return model_settings(changed["model"], args.subset), train


def one_run(job: dict) -> dict:
    """Train one run in this worker process; its test metrics and wall seconds."""
    import torch

    from vecomp.data.registry import get_task
    from vecomp.fusion.data import TaskData
    from vecomp.fusion.train import Run, TrainConfig, train_run
    from vecomp.kinds import get_kind

    torch.set_num_threads(1)
    model, train = job["model"], TrainConfig.from_dict(job["train"])
    pool = get_task(job["task"]).pool
    stores = {e: ROOT / "results" / "features" / e / pool for e in job["subset"].split("+")}
    data = TaskData(
        job["task"],
        ROOT / "results" / "prepared" / job["task"],
        Path(job["text"]),
        stores,
        model.pop("pool_grid", {}),
        train.negatives,
        train.preload_features,
    )
    run = Run(job["task"], tuple(stores), job["seed"], 0.0)
    started = time.perf_counter()
    metrics = train_run(run, data, model, train, Path(job["out"]))
    seconds = time.perf_counter() - started
    headline = get_kind(data.kind).headline
    return {k: job[k] for k in ("task", "design", "subset", "seed")} | {
        "metric": headline,
        "test": metrics["test"][headline],
        "seconds": seconds,
        "parameters": metrics["parameters"],
    }


def jobs(args: argparse.Namespace, config: dict, folder: Path) -> list[dict]:
    from vecomp.fusion.text import build_token_store

    out = []
    for task in args.tasks:
        prepared = ROOT / "results" / "prepared" / task
        ids = build_token_store(
            prepared, folder / "ids" / task, config["text"]["model"], config["text"]["max_length"]
        )
        texts = {"from scratch": ROOT / "results" / "text" / task, "model.init": ids}
        for design in DESIGNS:
            model, train = settings(config, design, task, args)
            for seed in args.seeds:
                run_dir = folder / "runs" / design.replace(" ", "_") / task / str(seed)
                out.append(
                    {
                        "task": task,
                        "design": design,
                        "subset": args.subset,
                        "seed": seed,
                        "model": model,
                        "train": train,
                        "text": str(texts[design]),
                        "out": str(run_dir),
                    }
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks",
        type=lambda s: s.split(","),
        default=["vqav2", "gqa", "nlvr2", "snli_ve", "flickr30k_retrieval", "coco_retrieval"],
    )
    parser.add_argument("--subset", default="grid+patch+region")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr-pretrained", type=float, default=1e-4)
    parser.add_argument(
        "--init-epochs",
        type=int,
        default=None,
        help="epochs of the LM-initialised runs (default: the config's)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    config = load_config()
    with tempfile.TemporaryDirectory() as folder:
        todo = jobs(args, config, Path(folder))
        with ProcessPoolExecutor(args.workers) as pool:
            rows = []
            for row in pool.map(one_run, todo):
                print(
                    f"{row['task']:<20} {row['design']:<12} seed {row['seed']}  "
                    f"{row['metric']} {row['test']:7.2f}  {row['seconds']:7.1f} s  "
                    f"{row['parameters'] / 1e6:6.2f} M",
                    flush=True,
                )
                rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
