"""Fusion training at paper scale on a GPU: samples/s, model FLOP utilisation, sweep GPU-hours.

The model is the paper profile's size: width 768, 12 layers, 12 heads, FFN 3072 (BERT-base),
reading a frozen text encoder's 768-d states (20 tokens) and the tokens of three encoders:
36 regions x 1024 (Faster R-CNN box features), 7 x 7 grid cells x 2048 (ResNet-50) and
197 patches x 768 (ViT-B/16 + CLS). Training steps run under bf16 autocast on random inputs
(speed does not depend on the values). FLOPs per step come from torch's FlopCounterMode (forward
+ backward); MFU = achieved FLOP/s / the card's dense bf16 peak.

The projection multiplies each subset's measured step time by the paper sweep's samples:
train-set size x epochs x seeds for all six tasks (NLVR2 counts two images per sample,
retrieval one negative per caption), over the 7 encoder subsets.

    python bench/gpu_train.py                  # on a CUDA machine
    python bench/gpu_train.py --fused --compile     # fused AdamW, the model under torch.compile
    python bench/gpu_train.py --tiny --device cpu   # a quick check that the script runs

``--fused`` steps AdamW in one fused kernel (what ``vecomp train`` uses on a GPU); ``--compile``
compiles the model (``nn.Module.compile``) before the warm-up steps, so compilation is not timed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from unittest import mock

import torch

from vecomp.fusion.heads import build_task_model
from vecomp.fusion.model import FusionConfig
from vecomp.fusion.sweep import encoder_subsets

PAPER_MODEL = {"width": 768, "layers": 12, "heads": 12, "ffn": 3072, "dropout": 0.1}
TINY_MODEL = {"width": 64, "layers": 2, "heads": 4, "ffn": 128, "dropout": 0.1}
TOKENS = {"region": (36, 1024), "grid": (49, 2048), "patch": (197, 768)}
TEXT = (20, 768)
# Training samples of the real datasets (approximate; one epoch) and their kinds.
TRAIN_SAMPLES = {
    "vqav2": (443_757, 1),
    "gqa": (943_000, 1),
    "nlvr2": (86_373, 2),
    "snli_ve": (529_527, 1),
    "flickr30k_retrieval": (145_000, 2),
    "coco_retrieval": (566_435, 2),
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM parts


def batch_for(subset, size: int, device) -> dict:
    visual = {}
    for name in subset:
        n, dim = TOKENS[name]
        lo = torch.rand(size, n, 2, device=device) * 0.5
        visual[name] = {
            "tokens": torch.randn(size, n, dim, device=device),
            "boxes": torch.cat([lo, lo + 0.5], -1),
            "mask": torch.ones(size, n, dtype=torch.bool, device=device),
        }
    text = {
        "tokens": torch.randn(size, *TEXT, device=device),
        "mask": torch.ones(size, TEXT[0], dtype=torch.bool, device=device),
    }
    return {"text": text, "visual": visual, "targets": torch.randint(3, (size,), device=device)}


def measure(subset, model_settings, batch_size, steps, device, options) -> tuple[float, float]:
    """(seconds per sample, FLOPs per sample) of training steps on one encoder subset."""
    from torch.utils.flop_counter import FlopCounterMode

    config = FusionConfig(
        encoders=subset,
        encoder_dims={e: TOKENS[e][1] for e in subset},
        text_dim=TEXT[1],
        **model_settings,
    )
    model = build_task_model("classification", config, 3).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=options.fused or None)
    batch = batch_for(subset, batch_size, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with autocast:
            loss = model.loss(model(batch).float(), batch["targets"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    if options.compile:
        model.compile()
    for _ in range(2):  # warm-up (and compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    return seconds / batch_size, counter.get_total_flops() / batch_size


@contextmanager
def fresh_compile_cache() -> Iterator[str]:
    """torch.compile's cache in a temporary folder, removed after: torch 2.14's inductor reused CPU
    kernels compiled under another ``ATEN_CPU_CAPABILITY`` (``vecomp`` pins it) in a process with
    the native kernels and aborted with a corrupted heap (an AVX-512 CPU, 2026-12-07)."""
    with (
        tempfile.TemporaryDirectory(prefix="gpu-train-compiled-") as cache,
        mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}),
    ):
        yield cache


def peak_tflops(device, override: float | None) -> float | None:
    if override or device.type != "cuda":
        return override
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (projection)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per run (projection)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the peak")
    parser.add_argument("--tiny", action="store_true", help="a small model (a quick check)")
    parser.add_argument("--fused", action="store_true", help="fused AdamW (one kernel per step)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--subsets", help="only these subsets, e.g. grid+patch+region,grid (no projection)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    settings = TINY_MODEL if args.tiny else PAPER_MODEL
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, model {settings}, batch {args.batch_size}, bf16 on cuda")
    print(f"fused AdamW: {args.fused}, torch.compile: {args.compile}")
    print(f"{'subset':<20} {'tokens':>6} {'samples/s':>10} {'GFLOP/sample':>13} {'MFU':>6}")
    seconds_per_sample = {}
    subsets = encoder_subsets(TOKENS)
    if args.subsets:
        subsets = [tuple(name.split("+")) for name in args.subsets.split(",")]
    with fresh_compile_cache() if args.compile else nullcontext():
        for subset in subsets:
            per_sample, flops = measure(subset, settings, args.batch_size, args.steps, device, args)
            seconds_per_sample[subset] = per_sample
            tokens = 1 + TEXT[0] + sum(TOKENS[e][0] for e in subset)
            mfu = f"{flops / per_sample / 1e12 / peak:6.1%}" if peak else "   n/a"
            name = "+".join(subset)
            print(f"{name:<20} {tokens:>6} {1 / per_sample:>10.0f} {flops / 1e9:>13.1f} {mfu}")
    if args.subsets:
        return
    run_seconds = sum(
        samples * forwards * per_sample * args.epochs
        for samples, forwards in TRAIN_SAMPLES.values()
        for per_sample in seconds_per_sample.values()
    )
    hours = run_seconds * args.seeds / 3600
    print(
        f"paper sweep (6 tasks x 7 subsets x {args.seeds} seeds x {args.epochs} epochs, VE-dropout "
        f"0 only, training only): {hours:.0f} GPU-hours on this device; each VE-dropout "
        "probability trained on the 4 multi-encoder subsets adds about half of that"
    )


if __name__ == "__main__":
    main()
