"""Extraction with real JPEG decoding against the encoder's bare forward, per paper encoder.

For each encoder (``--encoders``: the paper profile's three architectures, random weights, so it
runs offline: ViT-B/16 patches, ResNet-50 grid, Faster R-CNN R50-FPN regions), in one run on one
device:

  forward        the encoder alone on pre-decoded, pre-transformed device tensors, img/s
  decode (cpu)   the DataLoader alone: read + PIL decode + transform in worker processes, img/s
  cpu decode     ``extract_pool`` end to end, the workers decoding (``features.decode: cpu``)
  device decode  ``extract_pool`` end to end, the workers only reading and checking the files and
                 the device decoding each batch (``features.decode: device``: nvjpeg on a GPU)

and the largest token difference between the two pipelines' stores, relative to the tokens'
largest magnitude (the decoders and resamplers round differently). Images: 640 x 480 JPEGs drawn
first into a temporary folder, photo-like (smooth shading and grain; about 150 KB at quality 90,
as COCO train2014's 13 GB over 82,783 files), so decoding costs about what real files cost.

Targets (issue 17): ViT-B/16 >= 2,500 img/s end to end and >= 0.8 of its forward; ResNet-50 and
Faster R-CNN >= 0.9 of their forward. The last lines project the device-hours of extracting the
paper's image pools (``POOL_IMAGES``, about 520k images) by each encoder at the measured rates.

    python bench/gpu_extract.py [--images 2048] [--batch-size 256] [--workers 8]
    python bench/gpu_extract.py --tiny          # a CPU smoke version (numbers mean nothing)
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from extract_throughput import pipeline
from PIL import Image
from torch.utils.data import DataLoader

from vecomp.data.index_pool import index_pool
from vecomp.devices import autocast
from vecomp.encoders.factory import create_encoder
from vecomp.features.extract import PoolImages, _collate
from vecomp.features.store import FeatureStore

# The paper's image pools (SNLI-VE reads Flickr30k's): COCO train2014 + val2014, Flickr30k, GQA's
# images.zip, NLVR2's train, dev and test1 pairs (two images each, approximate).
POOL_IMAGES = {"coco": 123_287, "flickr30k": 31_783, "gqa": 148_854, "nlvr2": 215_000}
SPECS = {
    "patch": {"type": "timm_patch", "model": "vit_base_patch16_224"},
    "grid": {"type": "timm_grid", "model": "resnet50"},
    "region": {"type": "torchvision_frcnn", "arch": "fasterrcnn_resnet50_fpn", "max_regions": 36},
}
TINY = {
    "patch": {
        "type": "timm_patch",
        "model": "vit_tiny_patch16_224",
        "model_kwargs": {
            "img_size": 32,
            "patch_size": 8,
            "embed_dim": 32,
            "depth": 1,
            "num_heads": 2,
        },
    },
    "grid": {"type": "timm_grid", "model": "resnet10t"},
    "region": {
        "type": "torchvision_frcnn",
        "arch": "fasterrcnn_mini",
        "arch_kwargs": {"num_classes": 4, "image_size": 32},
        "max_regions": 5,
        "min_score": 0.0,
    },
}


def draw_jpegs(folder: Path, n: int, size: tuple[int, int]) -> None:
    """``n`` photo-like JPEGs, drawn by every core: a GPU session's minutes are not for this."""
    jobs = [(folder / f"{i:06d}.jpg", size, i) for i in range(n)]
    with multiprocessing.get_context("fork").Pool() as pool:
        pool.starmap(draw_jpeg, jobs, chunksize=16)


def draw_jpeg(path: Path, size: tuple[int, int], seed: int) -> None:
    """Smooth shading in three channels plus grain: about 150 KB at 640 x 480, quality 90."""
    rng = np.random.default_rng(seed)
    width, height = size
    x, y = np.arange(width) / width, np.arange(height)[:, None] / width  # a row and a column
    phase = rng.uniform(0, 6, 3)
    shading = [np.sin(4 * x + phase[c]) + np.cos(3 * y + c) for c in range(3)]
    pixels = (np.stack(shading, -1) + 2) * 60
    pixels += rng.normal(0, 20, (height, width, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def decode_only(index, transform, batch_size: int, workers: int) -> float:
    dataset = PoolImages(list(index.path), list(index.sha256), transform)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    started = time.perf_counter()
    for _ in loader:
        pass
    return len(index) / (time.perf_counter() - started)


@torch.inference_mode()
def forward_only(encoder, index, device: torch.device, batch_size: int, steps: int = 5) -> float:
    transform = encoder.transform()
    images = [transform(Image.open(p).convert("RGB")) for p in index.path[:batch_size]]
    if all(image.shape == images[0].shape for image in images):
        batch = torch.stack(images).to(device)
    else:  # the detector takes a list
        batch = [image.to(device) for image in images]
    with autocast(device):
        encoder(batch)
        synchronise(device)
        started = time.perf_counter()
        for _ in range(steps):
            encoder(batch)
        synchronise(device)
    return steps * len(images) / (time.perf_counter() - started)


def largest_difference(a: Path, b: Path) -> float:
    first, second = FeatureStore(a), FeatureStore(b)
    ids = first.image_ids
    x, y = first.get_batch(ids)["tokens"], second.get_batch(ids)["tokens"]
    return float((x - y).abs().max() / x.abs().max().clamp_min(1e-6))


def measure(name: str, spec: dict, index, root: Path, device: torch.device, args) -> dict:
    torch.manual_seed(0)
    encoder = create_encoder(spec).to(device).eval()
    row = {"encoder": name, "forward": forward_only(encoder, index, device, args.batch_size)}
    row["decode (cpu)"] = decode_only(index, encoder.transform(), args.batch_size, args.workers)
    loader = {"batch_size": args.batch_size, "workers": args.workers}
    for decode in ("cpu", "device"):
        folder = root / name / decode
        row[f"{decode} decode"] = pipeline(encoder, index, folder, str(device), decode, **loader)
    row["difference"] = largest_difference(root / name / "cpu", root / name / "device")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--encoders", default="patch,grid,region")
    parser.add_argument("--tiny", action="store_true", help="small sizes: checks the script runs")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda:
        print("no CUDA device (or --tiny): a CPU smoke version, its numbers are not the benchmark")
        args.images, args.batch_size, args.workers = 24, 8, 1
    device = torch.device("cuda" if cuda else "cpu")
    specs = SPECS if cuda else TINY
    size = (640, 480) if cuda else (64, 48)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        draw_jpegs(root / "images", args.images, size)
        index = index_pool("gqa", [root / "images"])
        kilobytes = index.path.map(lambda p: Path(p).stat().st_size).mean() / 1024
        for name in args.encoders.split(","):
            rows.append(measure(name, specs[name], index, root, device, args))
    where = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"{where}: {args.images} JPEGs {size[0]}x{size[1]} ({kilobytes:.0f} KB on average),")
    print(f"batch {args.batch_size}, {args.workers} workers; img/s (share of forward)")
    columns = ["forward", "decode (cpu)", "cpu decode", "device decode"]
    print(f"{'encoder':<8}" + "".join(f"{c:>20}" for c in columns) + f"{'difference':>12}")
    for row in rows:
        cells = [f"{row['forward']:>20.0f}"] + [
            f"{row[c]:>11.0f} ({row[c] / row['forward']:>4.0%})" for c in columns[1:]
        ]
        print(f"{row['encoder']:<8}" + "".join(cells) + f"{row['difference']:>12.4f}")
    images = sum(POOL_IMAGES.values())
    print(f"extracting the paper's pools ({images:,} images), device-hours at these rates:")
    for decode in ("cpu decode", "device decode"):
        hours = {row["encoder"]: images / row[decode] / 3600 for row in rows}
        each = ", ".join(f"{name} {h:.1f}" for name, h in hours.items())
        print(f"  {decode}: {each}; all {sum(hours.values()):.1f}")


if __name__ == "__main__":
    main()
