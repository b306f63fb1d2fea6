"""Shared test setup: offline hubs and no DVC analytics, whatever the caller's environment;
the tiny config's local end-to-end run, which the workflow tests build on, and the small
config's `dvc repro`, which the SLURM test compares against."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """tests/config/config.yaml run end to end with `snakemake --cores 2` in a fresh copy."""
    from .workflow_helpers import TINY, copy_project, run

    work = copy_project(tmp_path_factory.mktemp("snakemake"), TINY)
    run(["snakemake", "--cores", "2"], work)
    return work


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """workflow_helpers.small_config reproduced with `dvc repro` (whose stages run `snakemake
    --cores all <phase>`) in a fresh copy: the SLURM test runs the same config on the cluster."""
    from .workflow_helpers import copy_project, run, small_config

    root = tmp_path_factory.mktemp("small")
    work = copy_project(root / "work", small_config(root / "small.yaml"))
    run(["dvc", "repro"], work)
    return work
