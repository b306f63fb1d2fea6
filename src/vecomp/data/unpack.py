"""``vecomp unpack``: unpack a downloaded archive into its folder (safely, atomically)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..settings import existing_path
from .archive import extract


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp unpack", description=__doc__)
    parser.add_argument("--archive", type=existing_path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="target folder")
    args = parser.parse_args(argv)
    extract(args.archive, args.out)
    print(f"{args.archive} -> {args.out}")
    return 0
