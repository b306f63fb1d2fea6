"""bench/demo_time.py: the demo's time by phase, read from Snakemake's own log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Two jobs at once (pretraining on two threads while a download runs), then a training run.
LOG = """\
Building DAG of jobs...
Using shell: /usr/bin/bash
Provided cores: 2
[Mon Dec  7 10:00:00 2026]
localrule pretrain_encoder:
    output: results/encoders/grid, results/metrics/pretrain/grid.json
    log: logs/encoders/grid.log
    jobid: 3
    reason: Missing output files: results/encoders/grid
    wildcards: encoder=grid
    threads: 2
    resources: tmpdir=/tmp
Shell command: vecomp pretrain --objective grid --out results/encoders/grid
[Mon Dec  7 10:00:00 2026]
localrule download:
    output: results/downloads/coco
    jobid: 5
    resources: tmpdir=/tmp
[Mon Dec  7 10:00:07 2026]
Finished jobid: 5 (Rule: download)
1 of 3 steps (33%) done
[Mon Dec  7 10:01:40 2026]
Finished jobid: 3 (Rule: pretrain_encoder)
2 of 3 steps (67%) done
[Mon Dec  7 10:01:40 2026]
localrule train_fusion:
    jobid: 9
    wildcards: task=gqa, subset=grid, seed=0, vedrop=0
    resources: tmpdir=/tmp
[Mon Dec  7 10:01:52 2026]
Finished jobid: 9 (Rule: train_fusion)
3 of 3 steps (100%) done
"""


def demo_time(*args) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "demo_time.py"), *map(str, args)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_jobs_are_summed_by_phase_with_the_threads_they_held(tmp_path):
    (tmp_path / "run.log").write_text(LOG)
    printed = demo_time("--log", tmp_path / "run.log", "--json", tmp_path / "time.json")
    summary = json.loads((tmp_path / "time.json").read_text())
    assert summary["wall_s"] == 112  # 10:00:00 to 10:01:52
    assert summary["jobs"] == 3
    assert summary["phases"] == {
        "pretrain": {"jobs": 1, "job_s": 100, "core_s": 200},  # two threads
        "data": {"jobs": 1, "job_s": 7, "core_s": 7},
        "train": {"jobs": 1, "job_s": 12, "core_s": 12},
    }
    assert summary["core_s"] == 219 and summary["budget_core_s"] == 1200
    assert summary["met"]
    assert printed.startswith("wall 112 s for 3 jobs on 2 cores (target 600 s: met)")


def test_the_log_says_how_many_cores_the_run_had(tmp_path):
    (tmp_path / "run.log").write_text(LOG.replace("Provided cores: 2", "Provided cores: 4"))
    demo_time("--log", tmp_path / "run.log", "--json", tmp_path / "time.json")
    summary = json.loads((tmp_path / "time.json").read_text())
    assert summary["cores"] == 4 and summary["budget_core_s"] == 2400


def test_bad_arguments_stop_with_the_argument_named(tmp_path):
    for args, message in (
        (["--log", tmp_path / "absent.log"], "--log " + str(tmp_path / "absent.log")),
        (["--cores", "0"], "--cores 0: give at least 1"),
        (["--log", tmp_path], "no such file"),
    ):
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "demo_time.py"), *map(str, args)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr
    (tmp_path / "empty.log").write_text("Building DAG of jobs...\n")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "demo_time.py"),
            "--log",
            tmp_path / "empty.log",
            "--json",
            tmp_path / "time.json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "no finished job in the log" in done.stderr
    assert not (tmp_path / "time.json").exists()


def test_it_reads_the_log_of_the_installed_snakemake(tmp_path):
    """The format is Snakemake's: a real run of two jobs, one holding two threads."""
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            """\
            rule all:
                input: "b.txt"

            rule a:
                output: "a.txt"
                threads: 2
                shell: "sleep 2 && touch {output}"

            rule b:
                input: "a.txt"
                output: "b.txt"
                shell: "touch {output}"
            """
        )
    )
    env = os.environ | {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    }
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    (log,) = (tmp_path / ".snakemake" / "log").glob("*.snakemake.log")
    demo_time("--log", log, "--json", tmp_path / "time.json")
    summary = json.loads((tmp_path / "time.json").read_text())
    rules = summary["rules"]
    assert {name: row["jobs"] for name, row in rules.items()} == {"a": 1, "b": 1, "all": 1}
    assert rules["a"]["job_s"] >= 2 and rules["a"]["core_s"] == 2 * rules["a"]["job_s"]
    assert rules["b"]["core_s"] == rules["b"]["job_s"] < rules["a"]["job_s"]
    assert summary["phases"]["other"]["jobs"] == 2 and summary["phases"]["analysis"]["jobs"] == 1
