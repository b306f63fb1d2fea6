"""Training fed from memory-mapped stores against the same steps on pre-made device tensors.

Writes a classification task of ``--images`` images at the paper's sizes to a temporary folder on
local disk: three feature stores (random float16 tokens: 36 x 2048 bottom-up regions, 7 x 7 x
2048 grid cells, 197 x 768 ViT-B/16 patches), a text store (20 x 768 states) and prepared
tables. Then it trains the BERT-base-sized fusion model of ``gpu_train.py`` over all three
encoders (bf16 autocast on a GPU), one epoch per feed after a warm-up epoch each, interleaved:

- **device tensors**: every batch collated and copied to the device before the clock starts, so
  the loop only steps (the ceiling);
- **streamed, workers**: ``Trainer._train_epoch`` as ``vecomp train`` runs the paper profile
  (``preload_features: false``, ``loader_workers`` processes collating batches from the
  memory-mapped shards, pinned memory, non-blocking copies);
- **streamed, thread**: the same with ``loader_workers: 0`` (one thread reads ahead).

The project's target: streamed >= 0.95 of device tensors on a GPU.

    python bench/gpu_feed.py                               # on a CUDA machine
    python bench/gpu_feed.py --tiny --device cpu           # checks the script runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from gpu_train import PAPER_MODEL, TEXT, TINY_MODEL, TOKENS

from vecomp.features.store import StoreWriter
from vecomp.fusion.data import TaskData, to_device
from vecomp.fusion.text import write_text_store
from vecomp.fusion.train import Run, TrainConfig, Trainer

PAPER_TOKENS = TOKENS | {"region": (36, 2048)}  # bottom-up features (LXMERT's files): 2048 wide
TINY_TOKENS = {name: (n // 8, 32) for name, (n, _) in PAPER_TOKENS.items()}
LABELS = 1842  # GQA's answers
SPLITS = ("train", "dev", "test")


def write_stores(root: Path, images: list[str], tokens: dict) -> dict[str, Path]:
    generator = torch.Generator().manual_seed(0)
    stores = {}
    for name, (n, dim) in tokens.items():
        lo = torch.rand(n, 2, generator=generator) * 0.5
        boxes = torch.cat([lo, lo + 0.5], 1)
        stores[name] = root / name
        with StoreWriter(stores[name], dim, 512, info={"encoder": name}) as writer:
            for image in images:
                writer.add(image, torch.randn(n, dim, generator=generator), boxes)
    return stores


def write_task(root: Path, images: list[str], text: tuple[int, int]) -> tuple[Path, Path]:
    """GQA-shaped prepared tables (one question per image and split) and their text store."""
    prepared = root / "prepared"
    prepared.mkdir()
    texts = [f"question {i}" for i in range(len(images))]
    for split in SPLITS:
        frame = pd.DataFrame(
            {
                "sample_id": [f"{split}{i}" for i in range(len(images))],
                "image_id": images,
                "text": texts,
                "label": [i % LABELS for i in range(len(images))],
            }
        )
        frame["answer"] = frame["label"].astype(str)
        frame.to_parquet(prepared / f"{split}.parquet", index=False)
    labels = {"task": "gqa", "labels": [str(i) for i in range(LABELS)]}
    (prepared / "labels.json").write_text(json.dumps(labels))
    states = torch.randn(len(texts), *text).half()
    lengths = torch.full((len(texts),), text[0])
    text_store = write_text_store(root / "text", texts, {"hidden": states}, lengths, {})
    return prepared, text_store


def trainer(task: tuple, stores: dict, model: dict, settings: TrainConfig) -> Trainer:
    prepared, text = task
    device = torch.device(settings.device)
    data = TaskData(
        "gqa",
        prepared,
        text,
        stores,
        preload=False,
        loader_workers=settings.loader_workers,
        pin_memory=device.type == "cuda",
    )
    torch.manual_seed(0)
    return Trainer(Run("gqa", tuple(stores), 0, 0.0), data, model, settings)


def synchronised(trainer: Trainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)


def streamed_epoch(trainer: Trainer) -> float:
    synchronised(trainer)
    started = time.perf_counter()
    trainer._train_epoch()
    synchronised(trainer)
    return trainer._train_size() / (time.perf_counter() - started)


def device_epoch(trainer: Trainer) -> float:
    batches = trainer.data.batches("train", trainer.train.batch_size, trainer.generator)
    batches = [to_device(batch, trainer.device) for batch in batches]
    trainer.model.train()
    synchronised(trainer)
    started = time.perf_counter()
    for batch in batches:
        trainer._step(batch)
    synchronised(trainer)
    return sum(len(b["targets"]) for b in batches) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=4, help="loader workers (paper.yaml: 4)")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs per feed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="small sizes: checks the script runs")
    parser.add_argument("--workdir", type=Path, help="where the stores go (default: a temp dir)")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.batch_size, args.epochs = 64, 16, 1
    model, tokens = (TINY_MODEL, TINY_TOKENS) if args.tiny else (PAPER_MODEL, PAPER_TOKENS)
    text = (TEXT[0], 32) if args.tiny else TEXT
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        images = [f"img{i:06d}" for i in range(args.images)]
        started = time.perf_counter()
        stores, task = write_stores(root, images, tokens), write_task(root, images, text)
        size = sum(f.stat().st_size for f in root.rglob("*.safetensors")) / 2**30
        seconds = time.perf_counter() - started
        print(f"wrote {args.images} images, {size:.2f} GiB, in {seconds:.0f} s")
        base = {"batch_size": args.batch_size, "device": args.device, "preload_features": False}
        feeds = {
            "device tensors": (device_epoch, 0),
            "streamed, workers": (streamed_epoch, args.workers),
            "streamed, thread": (streamed_epoch, 0),
        }
        trainers = {
            name: trainer(task, stores, model, TrainConfig(**base, loader_workers=w))
            for name, (_, w) in feeds.items()
        }
        samples = {name: [] for name in feeds}
        for epoch in range(args.epochs + 1):  # interleaved; the first round warms up
            for name, (measure, _) in feeds.items():
                speed = measure(trainers[name])
                if epoch:
                    samples[name].append(speed)
    speeds = {name: statistics.median(values) for name, values in samples.items()}
    ceiling = speeds["device tensors"]
    print(f"device {args.device}, batch {args.batch_size}, {args.workers} loader worker(s)")
    print(f"{'feed':<18} {'samples/s':>10} {'/ device tensors':>17}")
    for name, speed in speeds.items():
        print(f"{name:<18} {speed:>10.0f} {speed / ceiling:>17.2f}")
    print("target: streamed >= 0.95 of device tensors")


if __name__ == "__main__":
    main()
