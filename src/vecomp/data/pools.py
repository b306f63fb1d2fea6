"""Image pools: an index of every image the pool's archives hold, checked for readability.

The index maps the image id the annotations use to a path, with the decoded size, or the error
that made the image unreadable. Prepare resolves every sample's images against it, so a missing or
corrupt image is reported per task, with the samples it affects.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm import tqdm

from ..io import atomic_path
from .registry import get_pool

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DuplicateImageError(ValueError):
    pass


def _check(path: Path) -> tuple[int, int, str | None]:
    """(width, height, None) for an image that fully decodes, else (0, 0, the error)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.width, image.height, None
    except Exception as err:  # PIL raises many types for broken files
        return 0, 0, f"{type(err).__name__}: {err}"


def index_pool(pool: str, folders: list[Path]) -> pd.DataFrame:
    """One row per image file under ``folders``: image_id, path, width, height, error."""
    to_id = get_pool(pool).image_id
    files = sorted(
        p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    rows = []
    for path in tqdm(files, desc=f"index {pool}", unit="img", disable=None):
        width, height, error = _check(path)
        rows.append({"image_id": to_id(path.name), "path": path.as_posix(), "width": width,
                     "height": height, "error": error})  # fmt: skip
    table = pd.DataFrame(rows, columns=["image_id", "path", "width", "height", "error"])
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
    args = parser.parse_args(argv)
    table = index_pool(args.pool, args.images)
    with atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)
    bad = int(table.error.notna().sum())
    print(f"{args.pool}: {len(table)} images, {bad} unreadable")
    return 0
