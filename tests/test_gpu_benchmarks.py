"""bench/gpu_check.sh, the one call a session makes on a lent GPU: its smoke version runs every
step's small CPU version, so that what the GPU session runs cannot rot between the rare sessions
that have one; and a failing or overrunning step must not cost the other steps their figures."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
gpu_check = sys.modules["gpu_check"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def report(out: Path, step: str) -> list[list[str]]:
    return [line.split() for line in (out / f"{step}.txt").read_text().splitlines()]


def rows(lines: list[list[str]], names) -> dict[str, list[str]]:
    return {cells[0]: cells for cells in lines if cells and cells[0] in names}


@pytest.mark.slow
def test_the_device_check_s_smoke_version_runs_every_step(tmp_path):
    env = os.environ | {
        "OUT": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = [line.split()[:2] for line in (tmp_path / "summary.txt").read_text().splitlines()]
    assert summary == [[step.name, "ok"] for step in gpu_check.steps()]

    skipped = report(tmp_path, "gpu_tests")[-1]  # found and skipped: nvjpeg, bf16 training
    assert skipped[1] == "skipped," and int(skipped[0]) >= 2
    extraction = report(tmp_path, "gpu_extract")
    encoders = rows(extraction, ("patch", "grid", "region"))
    assert sorted(encoders) == ["grid", "patch", "region"]
    assert all(float(cells[-1]) < 0.05 for cells in encoders.values())  # the two stores agree
    assert extraction[-1][:2] == ["device", "decode:"]  # the projected hours of the paper's pools
    feeds = [" ".join(cells[:2]) for cells in report(tmp_path, "gpu_feed")[-4:-1]]
    assert feeds == ["device tensors", "streamed, workers", "streamed, thread"]
    subsets = ("grid", "patch", "region", "grid+patch", "grid+region", "patch+region")
    for step in ("gpu_train_fused", "gpu_train_eager"):
        assert len(rows(report(tmp_path, step), (*subsets, "grid+patch+region"))) == 7
    compiled = report(tmp_path, "gpu_train_compiled")
    assert ["torch.compile:", "True"] in [cells[-2:] for cells in compiled]
    assert list(rows(compiled, subsets)) == ["grid"]
    assert list(rows(report(tmp_path, "attention"), ("train", "eval"))) == ["train", "eval"]


def step(name: str, code: str, limit_s: float = 30) -> object:
    return gpu_check.Step(name, [sys.executable, "-c", code], limit_s)


def test_a_failing_or_overrunning_step_does_not_stop_the_next_ones(tmp_path):
    marker = tmp_path / "worker-finished"
    child = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w')"
    # a process with a child of its own, as a benchmark with DataLoader workers
    hangs = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
    hangs += "time.sleep(60)"
    steps = [
        step("first", "print('fine')"),
        step("broken", "raise SystemExit(3)"),
        step("hangs", hangs, limit_s=0.5),
        step("last", "print('still run')"),
    ]
    assert gpu_check.run_all(steps, tmp_path, budget_s=100, smoke=False) is False
    lines = (tmp_path / "summary.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["first", "broken", "hangs", "last"]
    assert (
        "ok" in lines[0] and "failed (exit 3)" in lines[1] and "timed out after 0.5 s" in lines[2]
    )
    assert "ok" in lines[3] and "still run" in (tmp_path / "last.txt").read_text()
    time.sleep(2)
    assert not marker.exists()  # the overrunning step's child process was stopped with it


def test_steps_the_budget_cannot_hold_are_cut_short_or_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "MIN_STEP_S", 0.5)
    steps = [step("long", "import time; time.sleep(60)", limit_s=100), step("next", "pass")]
    started = time.monotonic()
    assert gpu_check.run_all(steps, tmp_path, budget_s=1.5, smoke=False) is False
    assert time.monotonic() - started < 10
    lines = (tmp_path / "summary.txt").read_text().splitlines()
    assert "timed out after 1.5 s" in lines[0]  # the budget's 1.5 s, not the step's 100
    assert "next" in lines[1] and "not run: the budget of 1.5 s is spent" in lines[1]


def test_the_summary_is_written_after_every_step(tmp_path):
    """A device call stopped at its time limit still leaves the summary of the steps done."""
    reads_summary = f"print(open({str(tmp_path / 'summary.txt')!r}).read())"
    assert gpu_check.run_all(
        [step("first", "pass"), step("second", reads_summary)], tmp_path, 100, smoke=False
    )
    assert (tmp_path / "second.txt").read_text().splitlines()[1].split()[:2] == ["first", "ok"]


def test_compiling_uses_a_fresh_cache_that_is_removed_after(monkeypatch):
    """A cache left by a run under other CPU kernel settings crashed torch.compile's CPU kernels."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "bench" / "gpu_train.py")
    gpu_train = sys.modules["gpu_train"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_train)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/shared")
    with gpu_train.fresh_compile_cache() as cache:
        assert cache_dir() == cache and Path(cache).name.startswith("gpu-train-compiled-")
    assert not Path(cache).exists()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/shared"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], "--budget must be a positive number"),
        (["--out", "a-file"], "is a file: give a folder for the reports"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, args, message):
    (tmp_path / "a-file").write_text("kept")
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", "reports", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and message in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]  # nothing written
    assert (tmp_path / "a-file").read_text() == "kept"
