"""What checking the feature stores on consumption costs, against a training epoch, same run.

A `FeatureStore` checks each shard when it first opens it (sha256 against the manifest, width
against the manifest's dim, NaN/inf): once per process, so once per `vecomp train` run. This
measures, on the demo's stores:

check:  every shard of the three encoders' stores of one task's pool, checked as a run checks
        them (median of --repeats; the files are in the page cache, as in a run that follows
        its extraction or a previous run);
epoch:  one training epoch of the demo's three-encoder model on that task, fed from the stores
        (`vecomp train`'s path; median of --repeats).

The target (issue 20): check <= 5% of one epoch. It also reports the sha256 throughput and what
the check would cost on a 40 GB store at that rate, read from the page cache; from disk the read
is bounded by the disk instead (a cold 40 GB store costs one sequential read of it per run).

    python bench/store_check.py [--task vqav2] [--repeats 3]

Needs the demo's prepared task, text store and feature stores (`snakemake --cores 2 text
features`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import yaml
from train_throughput import build, real_epoch  # bench/ is the script's folder, first on sys.path

from vecomp.data.registry import get_task
from vecomp.features.store import FeatureStore

STORE_40GB = 40e9


def check_seconds(folders: list[Path]) -> tuple[float, int]:
    """Seconds to check every shard of ``folders`` as a consuming run does, and their bytes."""
    started = time.perf_counter()
    size = sum(FeatureStore(folder).verify() for folder in folders)
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="vqav2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path("config/config.yaml").read_text())
    encoders = sorted(config["encoders"])
    pool = get_task(args.task).pool
    folders = [Path(f"results/features/{e}/{pool}") for e in encoders]
    trainer = build(args.task, encoders, config, preload=False)
    checks, epochs = [], []
    for _ in range(args.repeats):
        seconds, size = check_seconds(folders)
        checks.append(seconds)
        epochs.append(trainer._train_size() / real_epoch(trainer))
    check, epoch = statistics.median(checks), statistics.median(epochs)
    rate = size / check
    print(
        json.dumps(
            {
                "task": args.task,
                "stores": [str(f) for f in folders],
                "store_bytes": size,
                "check_s": round(check, 4),
                "epoch_s": round(epoch, 3),
                "check_over_epoch": round(check / epoch, 4),
                "target": "<= 0.05",
                "check_MB_per_s": round(rate / 1e6, 1),
                "projected_check_s_40GB_page_cache": round(STORE_40GB / rate, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
