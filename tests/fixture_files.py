"""Writers for hand-made fixture files in the datasets' official formats."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_lines(path: Path, rows: list) -> Path:
    """One line per entry: dicts as JSON, strings verbatim (for deliberately broken lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((json.dumps(r) if isinstance(r, dict) else r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return path


def write_image_pool(root: Path, count: int, pool: str = "gqa") -> Path:
    """``count`` small solid-colour PNGs under ``root/images`` (ids 1000, 1001, ...) and their
    pool index; returns the index's path."""
    from PIL import Image

    from vecomp.data.index_pool import index_pool

    (root / "images").mkdir(parents=True)
    for n in range(count):
        colour = (n * 37 % 256, 255 - n * 11 % 256, n * 7 % 256)
        Image.new("RGB", (64, 48), colour).save(root / "images" / f"{1000 + n}.png")
    index_pool(pool, [root / "images"]).to_parquet(root / "pool.parquet")
    return root / "pool.parquet"
