"""``vecomp settle-times``: after `dvc checkout` or `dvc pull`, mark restored artifacts as
up to date for Snakemake.

DVC restores files in no particular order, so an input can end up newer than the outputs made
from it, and Snakemake reruns any job whose input is newer than its output (its params and code
triggers are content-based, file times are not). Setting every file and folder under the given
paths to one time removes that spurious ordering and nothing else: a job whose config keys or
code changed still reruns, as does everything downstream of it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def settle_times(paths: list[Path], when: float | None = None) -> int:
    """Give every file and folder below ``paths`` the same modification time; returns the count."""
    when = time.time() if when is None else when
    count = 0
    for root in paths:
        for folder, _, files in os.walk(root):
            for path in [*(os.path.join(folder, f) for f in files), folder]:
                if not os.path.islink(path):
                    os.utime(path, (when, when))
                    count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp settle-times", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("results")])
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"{missing[0]} does not exist; run `dvc checkout` or `dvc pull` first")
    print(f"settled the times of {settle_times(args.paths)} files and folders")
    return 0
