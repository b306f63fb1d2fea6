"""Collect the sweep's runs into tidy tables and a summary metric file.

- ``runs.csv``: one row per (task, encoders, seed, ve_dropout, split, metric) with its value,
  plus each run's selected epoch and parameter count (timings stay in each run's metrics.json,
  so the table is byte-identical across reruns).
- ``masked.csv``: every run's inference-time masking table, concatenated.
- ``summary.json`` (a DVC metric): per task and encoder subset (VE-dropout 0), the mean and
  standard deviation over seeds of each test metric.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..errors import VecompError
from ..io import atomic_path, write_json

RUN_COLUMNS = ["task", "encoders", "seed", "ve_dropout"]


def read_run(folder: Path) -> tuple[list[dict], pd.DataFrame]:
    path = folder / "metrics.json"
    if not path.exists():
        raise VecompError(f"{folder} has no metrics.json: the run did not finish; rerun it")
    metrics = json.loads(path.read_text())
    run = {k: metrics[k] for k in RUN_COLUMNS}
    extra = {k: metrics[k] for k in ("selected_epoch", "parameters")}
    rows = [
        {**run, "split": split, "metric": name, "value": value, **extra}
        for split in ("dev", "test")
        for name, value in metrics[split].items()
    ]
    return rows, pd.read_csv(folder / "masked.csv")


def summarise(runs: pd.DataFrame) -> dict:
    """``{task: {encoders: {metric: {mean, std, seeds}}}}`` over test metrics, VE-dropout 0."""
    test = runs[(runs["split"] == "test") & (runs["ve_dropout"] == 0)]
    grouped = test.groupby(["task", "encoders", "metric"])["value"]
    stats = grouped.agg(["mean", "std", "count"]).reset_index()
    summary: dict = {}
    for row in stats.itertuples(index=False):
        entry = {"mean": round(row.mean, 4), "std": round(0.0 if pd.isna(row.std) else row.std, 4)}
        summary.setdefault(row.task, {}).setdefault(row.encoders, {})[row.metric] = entry | {
            "seeds": int(row.count)
        }
    return summary


def collect(folders: list[Path], out: Path, summary_path: Path) -> None:
    rows, masked = [], []
    for folder in folders:
        run_rows, run_masked = read_run(folder)
        rows += run_rows
        masked.append(run_masked)
    runs = pd.DataFrame(rows).sort_values(RUN_COLUMNS + ["split", "metric"], kind="stable")
    masked_all = pd.concat(masked, ignore_index=True).sort_values(
        RUN_COLUMNS + ["kept", "metric"], kind="stable"
    )
    with atomic_path(out / "runs.csv") as tmp:
        runs.to_csv(tmp, index=False)
    with atomic_path(out / "masked.csv") as tmp:
        masked_all.to_csv(tmp, index=False)
    write_json(summary_path, summarise(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp collect", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (results/runs/...)")
    parser.add_argument("--out", type=Path, required=True, help="folder for runs.csv, masked.csv")
    parser.add_argument("--summary", type=Path, required=True, help="summary metrics JSON")
    args = parser.parse_args(argv)
    collect(args.runs, args.out, args.summary)
    print(f"collected {len(args.runs)} runs into {args.out}")
    return 0
