"""Shared test setup: offline hubs and no DVC analytics, whatever the caller's environment;
the tiny config's local end-to-end run, which the workflow tests build on, and the small
config's `dvc repro`, which the SLURM test compares against.

The suite runs on two pytest-xdist workers (pyproject.toml's addopts; `-n0` runs it in one
process), one test module at a time per worker (`--dist loadfile`), so a module's fixtures are
built once. The two end-to-end runs are built once per session by whichever worker asks first
(a file lock; the other waits) and only read or copied by the tests, and the longest modules are
handed out first."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers share the cores: one torch thread each for the tests that compute in-process
    # (jobs set their own thread counts), and OpenMP threads that sleep rather than spin while
    # they wait, so that a worker's idle threads do not take the other's cores. Results are
    # compared within the session only, so neither changes what a test checks.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The modules that take longest, in the order they are handed out. Two workers take the first
# two and hold the next as their second: the workflow tests (the tiny run first) then the
# paper-scale ones; the SLURM run (the small config's `dvc repro` first, then mostly waiting on
# the scheduler, which leaves the cores to the other worker) then the planted validation. The
# rest fill the gaps; the bottom-up test, which copies the tiny run, comes after it is built.
LONGEST_FIRST = (
    "test_workflow.py",
    "test_slurm.py",
    "test_paper_scale.py",
    "test_validation.py",
    "test_kill.py",
    "test_pretrained_fusion.py",
    "test_cpu_kernels.py",
    "test_pretrain.py",
    "test_fusion_train.py",
    "test_provenance.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first: xdist hands modules out in collection order."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a module


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` run once per test session, whichever worker asks first; the others
    wait for it and get the same folder (a failed build is retried by the next to ask)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            if folder.exists():
                shutil.rmtree(folder)  # a build that failed half-way
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """tests/config/config.yaml run end to end with `snakemake --cores 2` in a fresh copy."""
    from .workflow_helpers import TINY, copy_project, run

    def build(folder: Path) -> None:
        run(["snakemake", "--cores", "2"], copy_project(folder, TINY))

    return built_once(tmp_path_factory, "tiny_run", build)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """workflow_helpers.small_config reproduced with `dvc repro` (whose stages run `snakemake
    --cores all <phase>`) in a fresh copy: the SLURM test runs the same config on the cluster."""
    from .workflow_helpers import copy_project, run, small_config

    def build(folder: Path) -> None:
        work = copy_project(folder / "work", small_config(folder / "small.yaml"))
        run(["dvc", "repro"], work)

    return built_once(tmp_path_factory, "small_run", build) / "work"
