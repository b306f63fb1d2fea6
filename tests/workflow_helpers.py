"""Run the workflow (Snakemake, DVC) in a throw-away copy of the repository."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "config.yaml"  # the tiny config of the end-to-end tests


def tool_env() -> dict[str, str]:
    """The venv's scripts (vecomp, snakemake, dvc) first on PATH, offline, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        HF_HUB_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t.invalid",
    )
    return env


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    return result


def project_files() -> list[str]:
    out = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], ROOT).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def copy_project(dest: Path, config: Path | None = None) -> Path:
    """A fresh clone-like copy (its own git repo), optionally with another config.yaml."""
    for name in project_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    if config is not None:
        shutil.copy2(config, dest / "config" / "config.yaml")
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


def tree_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``: artifacts hold no timings."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def small_config(path: Path) -> Path:
    """The tiny config cut to one task (its preparation, baselines and closing analyses), two
    pretrained encoders, their features and the three runs of their subsets, one seed: what
    `dvc repro` and the SLURM test run. Derived from TINY, so the two cannot drift."""
    config = yaml.safe_load(TINY.read_text())
    config["tasks"] = {"gqa": config["tasks"]["gqa"]}
    config["encoders"] = {name: config["encoders"][name] for name in ("grid", "patch")}
    config["task_train"] = {}
    config["sweep"] = {"seeds": [0], "ve_dropout": [], "matched": []}
    path.write_text(yaml.safe_dump(config))
    return path
