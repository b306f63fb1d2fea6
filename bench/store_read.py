"""Feature-store read speed (random vs sequential) and bytes on disk per image.

Training reads the tokens of images in random order, so the store must serve random access
nearly as fast as a sequential scan (project target: random >= 50% of sequential). Everything is
written to a temporary folder that is deleted at exit; the page cache is warm for every read (a
repeat after a warm-up), so this measures the store's own overhead, not the disk.

    python bench/store_read.py [--images N] [--tokens T] [--dim D] [--per-shard S] [--threads N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open

from vecomp.features.store import FeatureStore, StoreWriter

MB = 1e6
SIZE_TOKENS = (16, 36, 64, 256)  # 36: a region encoder's K
SIZE_DIMS = (256, 768)
SIZE_IMAGES = 256
RANDOM = "random get(), shuffled ids (a)"
SEQUENTIAL = "sequential, shard by shard (b)"


def build_store(folder: Path, n_images: int, n_tokens: int, dim: int, per_shard: int) -> float:
    """Write ``n_images`` images of random ``tokens [n_tokens, dim]``; return seconds taken."""
    gen = torch.Generator().manual_seed(0)
    boxes = torch.rand(n_tokens, 4, generator=gen)
    images = [torch.randn(n_tokens, dim, generator=gen) for _ in range(n_images)]
    start = time.perf_counter()
    with StoreWriter(folder, dim, images_per_shard=per_shard, info={"bench": True}) as writer:
        for i, tokens in enumerate(images):
            writer.add(f"img{i:07d}", tokens, boxes)
    return time.perf_counter() - start


def timed(fn: Callable[[], None], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call (fills the page cache)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_random(store: FeatureStore | Path, ids: list[str]) -> None:
    """``get()`` every id; given a folder, open a new store first (maps its shards again)."""
    if isinstance(store, Path):
        store = FeatureStore(store)
    for image_id in ids:
        store.get(image_id)


def read_batches(store: FeatureStore, ids: list[str], batch_size: int = 64) -> None:
    """``get_batch`` as training reads it: normalised with the store's statistics."""
    for start in range(0, len(ids), batch_size):
        store.get_batch(ids[start : start + batch_size], normalize=True)


def read_sequential(paths: list[Path], out: torch.Tensor) -> None:
    """The same token bytes, one whole ``tokens`` tensor per shard, in shard order, as float32.

    ``get_tensor`` is a lazy view of the memory-mapped file: the bytes are read by the copy
    into ``out`` (float32, reused, so that allocating the output does not slow this baseline).
    """
    for path in paths:
        with safe_open(path, framework="pt") as f:
            tokens = f.get_tensor("tokens")
            out[: len(tokens)].copy_(tokens)


def speed_table(args: argparse.Namespace, folder: Path) -> list[tuple[str, float]]:
    """(label, seconds per pass over all images) for writing and each way of reading."""
    write_s = build_store(folder, args.images, args.tokens, args.dim, args.per_shard)
    store = FeatureStore(folder)
    ids = list(store.image_ids)
    random.Random(0).shuffle(ids)
    paths = [folder / shard["file"] for shard in store.manifest["shards"]]
    out = torch.empty(max(s["n_tokens"] for s in store.manifest["shards"]), args.dim)
    reads = {
        RANDOM: lambda: read_random(folder, ids),
        "random get(), shards already mapped": lambda: read_random(store, ids),
        "random get_batch(64, normalised), mapped": lambda: read_batches(store, ids),
        SEQUENTIAL: lambda: read_sequential(paths, out),
    }
    rows = [("write: add() + close()", write_s)]
    return rows + [(label, timed(fn, args.repeats)) for label, fn in reads.items()]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def size_table(root: Path) -> list[tuple[int, int, float, float]]:
    """(tokens, dim, bytes on disk per image, overhead over raw float16 tokens in %)."""
    rows = []
    for dim in SIZE_DIMS:
        for n_tokens in SIZE_TOKENS:
            folder = root / f"size-{n_tokens}x{dim}"
            build_store(folder, SIZE_IMAGES, n_tokens, dim, per_shard=SIZE_IMAGES)
            per_image = folder_bytes(folder) / SIZE_IMAGES
            raw = n_tokens * dim * 2
            rows.append((n_tokens, dim, per_image, 100 * (per_image / raw - 1)))
    return rows


def print_speed(args: argparse.Namespace, rows: list[tuple[str, float]]) -> None:
    token_mb = args.images * args.tokens * args.dim * 2 / MB
    print(
        f"\n{args.images} images x {args.tokens} tokens x D={args.dim} ({token_mb:.0f} MB of "
        f"float16 tokens), {args.per_shard} images/shard, {torch.get_num_threads()} thread(s), "
        f"warm page cache, median of {args.repeats}"
    )
    print(f"{'access':38} {'MB/s':>8} {'us/image':>9}")
    for label, seconds in rows:
        print(f"{label:38} {token_mb / seconds:8.0f} {seconds / args.images * 1e6:9.1f}")
    seconds = dict(rows)
    ratio = seconds[SEQUENTIAL] / seconds[RANDOM]
    verdict = "meets" if ratio >= 0.5 else "misses"
    print(f"{'random / sequential':38} {ratio:8.0%}   ({verdict} the >= 50% target)")


def print_sizes(rows: list[tuple[int, int, float, float]]) -> None:
    print(f"\nbytes on disk per image ({SIZE_IMAGES} images per store, all files included)")
    print(f"{'tokens':>6} {'dim':>5} {'bytes/image':>12} {'overhead':>9} {'GiB/100k images':>16}")
    for n_tokens, dim, per_image, overhead in rows:
        gib = per_image * 100_000 / 2**30
        print(f"{n_tokens:>6} {dim:>5} {per_image:>12,.0f} {overhead:>8.1f}% {gib:>16.2f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=64, help="tokens per image")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--per-shard", type=int, default=512, help="images per shard")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: one data-loader worker)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="vecomp-bench-") as tmp:
        sizes = size_table(Path(tmp))  # first: also pays the one-time imports of writing
        print_speed(args, speed_table(args, Path(tmp) / "speed"))
        print_sizes(sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
