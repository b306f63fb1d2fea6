"""Image pools: an index of every image the pool's archives hold, checked for readability.

The index maps the image id the annotations use to a path, with the decoded size and the
sha256 of the file, or the error that made the image unreadable. Prepare resolves every sample's
images against it, so a missing or corrupt image is reported per task, with the samples it
affects. The checksums make the index change whenever an image does (new pixels under an old
name too), which is what tells feature extraction that a store's shards are stale.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm import tqdm

from ..errors import VecompError
from ..io import atomic_path
from .registry import get_pool

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
COLUMNS = ["image_id", "path", "width", "height", "sha256", "error"]


class DuplicateImageError(VecompError, ValueError):
    pass


class NoImagesError(VecompError, ValueError):
    """An image folder that is missing, or that holds no image at all."""


def _check(path: Path) -> tuple[int, int, str | None, str | None]:
    """(width, height, sha256, None) for an image that fully decodes, else (0, 0, sha256 or
    None, the error). The file is read once, for both."""
    digest = None
    try:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.width, image.height, digest, None
    except Exception as err:  # PIL raises many types for broken files
        return 0, 0, digest, f"{type(err).__name__}: {err}"


def index_pool(pool: str, folders: list[Path], threads: int = 1) -> pd.DataFrame:
    """One row per image file under ``folders``: image_id, path, width, height, sha256, error.

    Decoding dominates on real pools (120k COCO images); PIL releases the GIL while decoding,
    so ``threads`` workers scale it.
    """
    to_id = get_pool(pool).image_id
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise NoImagesError(f"image pool {pool!r}: no such image folder(s) {missing}")
    files = sorted(
        p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise NoImagesError(
            f"image pool {pool!r}: no image ({', '.join(IMAGE_SUFFIXES)}) under "
            f"{[str(f) for f in folders]}; check that the archives were unpacked there"
        )
    with ThreadPoolExecutor(max_workers=threads) as workers:
        checks = list(
            tqdm(
                workers.map(_check, files),
                total=len(files),
                desc=f"index {pool}",
                unit="img",
                disable=None,
            )
        )
    rows = [
        {
            "image_id": to_id(path.name),
            "path": path.as_posix(),
            "width": width,
            "height": height,
            "sha256": digest,
            "error": error,
        }
        for path, (width, height, digest, error) in zip(files, checks, strict=True)
    ]
    table = pd.DataFrame(rows, columns=COLUMNS)
    duplicated = table[table.image_id.duplicated(keep=False)]
    if len(duplicated):
        first = duplicated.head(6).to_string(index=False)
        raise DuplicateImageError(
            f"image pool {pool!r}: {duplicated.image_id.nunique()} image ids occur more than once "
            f"(two files map to one id); first offenders:\n{first}"
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp index-pool", description=__doc__)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="image folders")
    parser.add_argument("--out", type=Path, required=True, help="index .parquet")
    parser.add_argument("--threads", type=int, default=1, help="decoding threads")
    args = parser.parse_args(argv)
    table = index_pool(args.pool, args.images, args.threads)
    with atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)
    bad = int(table.error.notna().sum())
    print(f"{args.pool}: {len(table)} images, {bad} unreadable")
    return 0
