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
