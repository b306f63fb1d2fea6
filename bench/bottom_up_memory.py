"""Peak memory of importing bottom-up region features (``type: precomputed``) into a store.

LXMERT's COCO train2014 file is about 20 GB: 82,783 lines of 36 regions x 2048 float32 features
in base64 (about 393 KB a line). This script writes files of that record size in LXMERT's
ten-field layout (``--images`` lines; ``--tiny`` a smoke test), then runs ``vecomp
extract-features`` on them in a fresh subprocess each and reports the subprocess's peak
resident memory (``wait4``'s ``ru_maxrss``) and wall time:

- ``import`` at N and at 2N images: bounded memory means the two peaks are about equal (the
  writer buffers one shard, ``--images-per-shard`` x 36 x 2048 x 2 bytes, and nothing grows
  with the file);
- ``whole`` at N: the baseline measured in the same run, the same import with every line
  parsed into memory first (the way the field's loaders read these files, e.g. LXMERT's
  ``load_obj_tsv``).

    python bench/bottom_up_memory.py [--images N | --tiny] [--images-per-shard S] [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MB = 1e6
REGIONS, DIM = 36, 2048


def _b64(array: np.ndarray) -> bytes:
    return base64.b64encode(array.tobytes())


def write_features(path: Path, image_ids: list[int], seed: int = 0) -> int:
    """LXMERT-layout lines (``\\r\\n`` ends) for ``image_ids``; returns the file's size."""
    rng = np.random.default_rng(seed)
    features = rng.gamma(1.0, 2.0, (REGIONS, DIM)).astype(np.float32)
    with path.open("wb") as f:
        for image_id in image_ids:
            features[0, 0] = image_id  # every line differs
            x0, y0 = rng.uniform(0, 300, (2, REGIONS)).astype(np.float32)
            boxes = np.stack([x0, y0, x0 + 100, y0 + 100], axis=1)
            conf = rng.uniform(0.2, 1, REGIONS).astype(np.float32)
            ids = rng.integers(0, 1600, REGIONS)
            values = [
                f"COCO_train2014_{image_id:012d}".encode(),
                b"480",
                b"640",
                _b64(ids),
                _b64(conf),
                _b64(ids),
                _b64(conf),
                str(REGIONS).encode(),
                _b64(boxes),
                _b64(features),
            ]
            f.write(b"\t".join(values) + b"\r\n")
    return path.stat().st_size


def write_pool(path: Path, image_ids: list[int]) -> None:
    import pandas as pd

    ids = [str(i) for i in image_ids]
    pd.DataFrame(
        {
            "image_id": ids,
            "path": [f"/absent/{i}.jpg" for i in ids],
            "width": 640,
            "height": 480,
            "sha256": ids,
            "error": None,
        }
    ).to_parquet(path)


def read_whole(catalogue):
    """The baseline: the same import, with every record parsed into memory first."""

    def whole(files, to_pool_id):
        features = catalogue(files, to_pool_id)
        records = {image_id: features.read(image_id) for image_id in features.where}
        features.read = records.__getitem__
        return features

    return whole


def child(spec: dict) -> None:
    """Run in the measured subprocess."""
    from vecomp.features import extract

    if spec["mode"] == "whole":
        extract.catalogue = read_whole(extract.catalogue)

    spec_json = json.dumps({"type": "precomputed", "files": {"coco": [spec["tsv"]]}})
    extract.main(
        [
            "--encoder",
            "bottom_up",
            "--spec",
            spec_json,
            "--pool",
            "coco",
            "--pool-index",
            spec["pool"],
            "--out",
            spec["out"],
            "--sources",
            spec["tsv"],
            "--images-per-shard",
            str(spec["images_per_shard"]),
        ]
    )


def measure(spec: dict) -> dict:
    """Peak RSS (bytes) and wall seconds of ``child(spec)`` in a fresh interpreter."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)], stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{spec['mode']} on {spec['tsv']} failed")
    return {"peak_rss": usage.ru_maxrss * 1024, "seconds": time.perf_counter() - start}


def run(args: argparse.Namespace, folder: Path) -> list[dict]:
    rows = []
    for n, modes in ((args.images, ("import", "whole")), (2 * args.images, ("import",))):
        ids = list(range(1, n + 1))
        tsv, pool = folder / f"train2014_{n}.tsv", folder / f"pool_{n}.parquet"
        size = write_features(tsv, ids)
        write_pool(pool, ids)
        for mode in modes:
            spec = {
                "mode": mode,
                "tsv": str(tsv),
                "pool": str(pool),
                "out": str(folder / f"store_{n}_{mode}"),
                "images_per_shard": args.images_per_shard,
            }
            row = {"mode": mode, "images": n, "file_bytes": size, **measure(spec)}
            print(
                f"{mode:>6}  {n:>6} images  {size / MB:>8.0f} MB file  "
                f"peak {row['peak_rss'] / MB:>7.0f} MB  {row['seconds']:>6.1f} s",
                flush=True,
            )
            rows.append(row)
        tsv.unlink()
    return rows


def summary(rows: list[dict]) -> dict:
    peak = {(r["mode"], r["images"]): r["peak_rss"] for r in rows}
    n = min(r["images"] for r in rows)
    return {
        "import_2n_over_n": peak["import", 2 * n] / peak["import", n],
        "whole_over_import": peak["whole", n] / peak["import", n],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--tiny", action="store_true", help="20 images: a smoke test")
    parser.add_argument("--images-per-shard", type=int, default=256)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    if args.tiny:
        args.images, args.images_per_shard = 20, 8
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        rows = run(args, Path(folder))
    result = {"rows": rows, **summary(rows), "images_per_shard": args.images_per_shard}
    print(
        f"import peak at 2N / at N: {result['import_2n_over_n']:.2f}; "
        f"whole-file read / import at N: {result['whole_over_import']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
