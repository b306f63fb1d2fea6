"""The code style CI enforces (run through the README's pytest, so CI and the hook agree):
ruff's lint rules and formatting for the package, tests and benchmarks, snakefmt for the
workflow. A failure prints the tool's own report; the fix is the tool without ``--check``."""

from __future__ import annotations

import pytest

from .workflow_helpers import ROOT, run

PYTHON = ["src", "tests", "bench"]
WORKFLOW = ["Snakefile", "workflow"]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PYTHON],
        ["ruff", "format", "--check", *PYTHON],
        ["snakefmt", "--check", *WORKFLOW],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_the_code_passes_the_linters_ci_runs(command):
    result = run(command, ROOT, check=False)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
