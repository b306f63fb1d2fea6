"""The GPU benchmarks' CPU smoke versions (``--tiny``), so that what bench/gpu_check.sh runs on a
lent GPU cannot rot between the rare sessions that have one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> str:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "bench")])}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_the_extraction_benchmark_measures_both_decoders_for_every_encoder():
    lines = [line.split() for line in bench("gpu_extract.py", "--tiny").splitlines()]
    rows = {cells[0]: cells for cells in lines if cells and cells[0] in ("patch", "grid", "region")}
    assert sorted(rows) == ["grid", "patch", "region"]
    assert all(float(cells[-1]) < 0.05 for cells in rows.values())  # the two stores agree
    assert lines[-1][:2] == ["device", "decode:"]  # the projected hours of the paper's pools


@pytest.mark.slow
def test_the_feed_benchmark_trains_from_the_stores_with_workers_and_the_thread():
    table = bench("gpu_feed.py", "--tiny", "--device", "cpu", "--workers", "1").splitlines()
    names = [line[:18].strip() for line in table[-4:-1]]
    assert names == ["device tensors", "streamed, workers", "streamed, thread"]
