"""Retrieval evaluation: shortlisted pairs in caption-length order against (image, text) order.

length-ordered: `evaluate` as `vecomp train` runs it: the matching head scores the shortlisted
                pairs shortest caption first, each batch padded to its own longest caption.
unordered:      the same pairs in (image, text) order, so nearly every batch holds a longest
                caption of the split and pads every other caption to it.
Both give the same metrics (checked here); the ratio is what the ordering saves.

    python bench/retrieval_eval.py [--task coco_retrieval] [--rounds 5] [--threads 1]

The model is the embedded default's, untrained (the shortlist's size and the batches' shapes do
not depend on the weights). Needs the demo's prepared task, text store and feature stores
(`snakemake --cores 2 text features`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml
from train_throughput import build  # bench/ is the script's folder, first on sys.path

from vecomp.fusion import evaluate as evaluation


def in_given_order(pairs: torch.Tensor, caption_lengths: torch.Tensor) -> torch.Tensor:
    return pairs


ORDERS = {"length-ordered": evaluation._by_caption_length, "unordered": in_given_order}


def measure(trainer, order) -> tuple[float, dict, float]:
    """Seconds of one test evaluation, its metrics, and the share of text tokens that pad."""
    evaluation._by_caption_length = order
    real, seen = [], []
    forward = trainer.model.forward

    def counting(batch, keep=None):
        mask = batch["text"]["mask"]
        real.append(int(mask.sum()))
        seen.append(mask.numel())
        return forward(batch, keep)

    trainer.model.forward = counting
    try:
        started = time.perf_counter()
        metrics, _ = trainer.evaluate("test")
        seconds = time.perf_counter() - started
    finally:
        del trainer.model.forward
    return seconds, metrics, 1 - sum(real) / sum(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="coco_retrieval")
    parser.add_argument("--encoders", default="region,grid,patch")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per order")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(args.config.read_text())
    torch.manual_seed(0)
    trainer = build(args.task, args.encoders.split(","), config)
    chosen = ORDERS["length-ordered"]
    seconds = {name: [] for name in ORDERS}
    results = {}
    try:
        for round_ in range(args.rounds + 1):  # interleaved; the first round warms up
            for name, order in ORDERS.items():
                took, metrics, padding = measure(trainer, order)
                results[name] = (metrics, padding)
                if round_:
                    seconds[name].append(took)
    finally:
        evaluation._by_caption_length = chosen
    print(f"task {args.task}, encoders {args.encoders.replace(',', '+')}, {args.threads} thread(s)")
    print(f"{'order':<15} {'seconds':>8} {'text padding':>13}")
    for name in ORDERS:
        print(f"{name:<15} {statistics.median(seconds[name]):>8.3f} {results[name][1]:>13.0%}")
    ratio = statistics.median(seconds["unordered"]) / statistics.median(seconds["length-ordered"])
    same = results["length-ordered"][0] == results["unordered"][0]
    print(f"unordered / length-ordered = {ratio:.2f}x; same metrics: {same}")


if __name__ == "__main__":
    main()
