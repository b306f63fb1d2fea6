"""GPU extraction benchmark: a ViT-B/16-class patch encoder with real JPEG decoding in the loop.

Measures, in one run on one device:
  decode   the DataLoader alone (JPEG decode + resize + normalise in worker processes), img/s
  forward  the encoder alone on pre-loaded device tensors (bf16 autocast on CUDA), img/s
  pipeline `extract_pool` end to end (decode -> forward -> fp16 store on disk), img/s
and reports where the time goes. COCO-sized JPEGs (640 x 480) are drawn first into a temp dir.

    python bench/gpu_extract.py [--images 2048] [--batch-size 256] [--workers 8]

Needs a CUDA device for meaningful numbers; on a CPU it runs a small smoke version.
Weights are random (speed does not depend on them), so it runs offline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from vecomp.data.index_pool import index_pool
from vecomp.encoders.factory import create_encoder
from vecomp.features.extract import PoolImages, _collate, extract_pool
from vecomp.features.store import StoreWriter

SPEC = {"type": "timm_patch", "model": "vit_base_patch16_224"}


def draw_jpegs(folder: Path, n: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = torch.randint(0, 256, (480, 640, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:06d}.jpg", quality=90)


def rate(n: int, seconds: float) -> float:
    return n / seconds


def decode_only(paths, transform, batch_size, workers) -> float:
    loader = DataLoader(
        PoolImages(paths, transform),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=torch.cuda.is_available(),
    )
    started = time.perf_counter()
    for _ in loader:
        pass
    return rate(len(paths), time.perf_counter() - started)


def forward_only(encoder, device, batch_size, steps=10) -> float:
    images = torch.randn(batch_size, 3, 224, 224, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with torch.inference_mode(), autocast:
        encoder(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            encoder(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return rate(steps * batch_size, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda:
        print("no CUDA device: running a CPU smoke version (numbers are not the benchmark)")
        args.images, args.batch_size, args.workers = 64, 16, 1
    device = torch.device("cuda" if cuda else "cpu")
    encoder = create_encoder(SPEC).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        draw_jpegs(folder, args.images)
        index = index_pool("gqa", [folder])
        decode = decode_only(list(index.path), encoder.transform(), args.batch_size, args.workers)
        forward = forward_only(encoder, device, args.batch_size)
        started = time.perf_counter()
        with StoreWriter(Path(tmp) / "store", encoder.dim, images_per_shard=1024) as writer:
            extract_pool(
                encoder,
                index,
                writer,
                batch_size=args.batch_size,
                workers=args.workers,
                device=str(device),
                pool="bench",
            )
        pipeline = rate(len(index), time.perf_counter() - started)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"{name}: {args.images} JPEGs 640x480, batch {args.batch_size}, {args.workers} workers")
    print(f"decode   {decode:9.1f} img/s")
    print(f"forward  {forward:9.1f} img/s (bf16 autocast: {cuda})")
    bound = "decode" if decode < forward else "forward"
    print(
        f"pipeline {pipeline:9.1f} img/s = {pipeline / forward:.0%} of forward, "
        f"{pipeline / decode:.0%} of decode; bound by {bound}"
    )


if __name__ == "__main__":
    main()
