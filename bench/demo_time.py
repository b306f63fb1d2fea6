"""The demo's wall time from a fresh clone, and where it goes, from Snakemake's own log.

The project's target: `snakemake --cores 2` on the embedded default in <= 600 s on two CPU cores,
that is at most 1,200 core-seconds of jobs.

    python bench/demo_time.py [--cores 2] [--json demo_time.json]
        clones HEAD (committed code only) into a temporary folder and runs the demo there, offline,
        with this environment's Python and the clone's src/ first on PYTHONPATH
    python bench/demo_time.py --log .snakemake/log/<run>.snakemake.log
        reads a finished run's log instead (a rerun of some jobs, or a run elsewhere)

Each job lasts from the time Snakemake starts it to the time it sees it finish (the log's
1-second resolution); its core-seconds are that times the threads it held. Jobs are summed by
phase of the DAG and by rule.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 600
PHASES = {  # rule -> phase of the DAG; a rule not listed counts as "other"
    "generate_synthetic": "data",
    "download": "data",
    "unpack": "data",
    "index_pool": "data",
    "prepare": "data",
    "baselines": "data",
    "pretrain_encoder": "pretrain",
    "extract_features": "extract",
    "encode_text": "text",
    "tokenize_text": "text",
    "train_fusion": "train",
    "train_matched": "train",
    "analyse_task": "analysis",
    "collect_runs": "analysis",
    "analyse": "analysis",
    "figures": "analysis",
    "all": "analysis",
}
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
THREADS = re.compile(r"^\s+threads: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")
CORES = re.compile(r"^Provided cores: (\d+)$", re.M)


@dataclass
class Job:
    rule: str
    started: datetime
    threads: int = 1
    seconds: float = 0.0

    @property
    def core_seconds(self) -> float:
        return self.threads * self.seconds


def parse_log(text: str) -> tuple[list[Job], float]:
    """The finished jobs of a local Snakemake run's log, and the seconds from its first job's
    start to its last job's end."""
    jobs: dict[str, Job] = {}
    finished: list[Job] = []
    stamp = rule = job = None
    first = last = None
    for line in text.splitlines():
        if match := STAMP.match(line):
            stamp = datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            first, last = first or stamp, stamp
        elif match := STARTED.match(line):
            rule = match.group(1)
        elif (match := JOBID.match(line)) and rule:
            job = jobs[match.group(1)] = Job(rule, stamp)
            rule = None
        elif (match := THREADS.match(line)) and job:
            job.threads = int(match.group(1))
        elif (match := FINISHED.match(line)) and match.group(1) in jobs:
            done = jobs.pop(match.group(1))
            done.seconds = (stamp - done.started).total_seconds()
            finished.append(done)
            job = None
    if not finished:
        raise SystemExit("no finished job in the log: is it a local Snakemake run's log?")
    return finished, (last - first).total_seconds()


def provided_cores(text: str) -> int | None:
    """The cores a local Snakemake run was given (its log's "Provided cores: N")."""
    match = CORES.search(text)
    return int(match.group(1)) if match else None


def summarise(jobs: list[Job], wall: float, cores: int) -> dict:
    by_phase: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "job_s": 0.0, "core_s": 0.0})
    by_rule: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "job_s": 0.0, "core_s": 0.0})
    for job in jobs:
        for row in (by_phase[PHASES.get(job.rule, "other")], by_rule[job.rule]):
            row["jobs"] += 1
            row["job_s"] += job.seconds
            row["core_s"] += job.core_seconds
    core_s = sum(job.core_seconds for job in jobs)
    return {
        "wall_s": round(wall, 1),
        "cores": cores,
        "jobs": len(jobs),
        "core_s": core_s,
        "budget_core_s": TARGET_S * cores,
        "target_s": TARGET_S,
        "met": wall <= TARGET_S,
        "phases": dict(by_phase),
        "rules": dict(sorted(by_rule.items(), key=lambda kv: -kv[1]["core_s"])),
    }


def run_fresh_clone(cores: int) -> tuple[str, float]:
    """The log text and wall seconds of `snakemake --cores N` in a fresh clone of HEAD."""
    with tempfile.TemporaryDirectory(prefix="vecomp-demo-") as tmp:
        clone = Path(tmp) / "vecomp"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = os.environ | {
            "PYTHONPATH": str(clone / "src"),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "HF_HUB_OFFLINE": "1",
            "DVC_NO_ANALYTICS": "1",
        }
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", str(cores)],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"the demo failed:\n{done.stderr[-4000:]}")
        (log,) = (clone / ".snakemake" / "log").glob("*.snakemake.log")
        return log.read_text(), wall


def report(summary: dict) -> str:
    cores, core_s = summary["cores"], summary["core_s"]
    lines = [
        f"wall {summary['wall_s']:.0f} s for {summary['jobs']} jobs on {cores} cores "
        f"(target {summary['target_s']} s: {'met' if summary['met'] else 'not met'}); "
        f"{core_s:.0f} core-s of jobs against a budget of {summary['budget_core_s']} "
        f"({core_s / cores:.0f} s if the cores never waited)",
        f"{'':22}{'jobs':>6}{'job-s':>9}{'core-s':>9}{'share':>8}",
    ]
    for title, rows in (("phase", summary["phases"]), ("rule", summary["rules"])):
        lines.append(f"by {title}:")
        for name, row in rows.items():
            lines.append(
                f"  {name:20}{row['jobs']:>6}{row['job_s']:>9.0f}{row['core_s']:>9.0f}"
                f"{row['core_s'] / max(core_s, 1):>8.1%}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2, help="for the run (a log says its own)")
    parser.add_argument("--log", type=Path, help="read this Snakemake log instead of running")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if args.cores < 1:
        parser.error(f"--cores {args.cores}: give at least 1")
    if args.log and not args.log.is_file():
        parser.error(f"--log {args.log}: no such file (Snakemake writes .snakemake/log/*.log)")
    if args.log:
        text = args.log.read_text()
        jobs, wall = parse_log(text)
        cores = provided_cores(text) or args.cores
    else:
        text, wall = run_fresh_clone(args.cores)
        jobs, _ = parse_log(text)
        cores = args.cores
    summary = summarise(jobs, wall, cores)
    print(report(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
