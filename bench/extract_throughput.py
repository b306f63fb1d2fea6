"""Extraction throughput: the whole pipeline against the bare model forward, in the same run.

pipeline: PNG/JPEG files -> DataLoader (decode + the model's transform) -> encoder -> feature
store (fp16 shards on disk), exactly as `vecomp extract-features` runs it.
bare:     the same encoder's forward on the same images, pre-decoded and pre-transformed
          into one tensor in memory.
The project's target on a CPU: pipeline >= 80% of bare (data loading and storage cost <= 20%).

    python bench/extract_throughput.py [--images 512] [--workers 1] [--batch-size 64]

Uses the demo's NLVR2 image pool (2,080 PNGs) when it exists, else draws images.
Encoders are the demo's mini architectures with random weights (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from vecomp.data.index_pool import index_pool
from vecomp.demo.synthetic.scenes import render, sample_scene
from vecomp.encoders.factory import create_encoder
from vecomp.features.extract import extract_pool
from vecomp.features.store import StoreWriter

ENCODERS = {
    "region": {
        "type": "torchvision_frcnn",
        "arch": "fasterrcnn_mini",
        "arch_kwargs": {"num_classes": 31},
        "max_regions": 10,
        "min_score": 0.0,
    },
    "grid": {"type": "timm_grid", "model": "resnet10t"},
    "patch": {
        "type": "timm_patch",
        "model": "vit_tiny_patch16_224",
        "model_kwargs": {
            "img_size": 64,
            "patch_size": 8,
            "embed_dim": 128,
            "depth": 4,
            "num_heads": 4,
        },
    },
}
DEMO_POOL = Path("results/prepared/pools/nlvr2.parquet")  # the largest demo pool


def image_pool(n: int, folder: Path) -> pd.DataFrame:
    if DEMO_POOL.exists():
        return pd.read_parquet(DEMO_POOL).head(n)
    import random

    rng = random.Random(0)
    for i in range(n):
        render(sample_scene(rng, str(i)), 64).save(folder / f"{i}.jpg", quality=95)
    return index_pool("gqa", [folder])


def bare(encoder, paths: list[str], batch_size: int) -> float:
    transform = encoder.transform()
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            encoder(images[i : i + batch_size])
    return len(paths) / (time.perf_counter() - started)


def pipeline(encoder, index, folder: Path, device: str = "cpu", decode: str = "auto", **loader):
    """Images/s of ``extract_pool`` end to end into a store at ``folder`` (``loader``: its
    ``batch_size`` and ``workers``)."""
    started = time.perf_counter()
    with StoreWriter(folder, encoder.dim, images_per_shard=256) as writer:
        extract_pool(encoder, index, writer, device=device, decode=decode, pool="bench", **loader)
    return len(index) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        index = image_pool(args.images, tmp / "images")
        print(
            f"{len(index)} images, batch {args.batch_size}, workers {args.workers}, "
            f"{torch.get_num_threads()} torch threads"
        )
        print(f"{'encoder':8} {'bare img/s':>11} {'pipeline img/s':>15} {'ratio':>6}")
        for name, spec in ENCODERS.items():
            encoder = create_encoder(spec)
            bare(encoder, list(index.path[:32]), args.batch_size)  # warm-up
            fast = bare(encoder, list(index.path), args.batch_size)
            full = pipeline(
                encoder, index, tmp / name, batch_size=args.batch_size, workers=args.workers
            )
            print(f"{name:8} {fast:11.1f} {full:15.1f} {full / fast:6.2f}")


if __name__ == "__main__":
    main()
