"""Collect the sweep's runs into one tidy table and a summary metric file.

- ``runs.csv``, one row per (task, encoders, seed, ve_dropout, matched, split, kept, metric)
  with its value and the run's parameter count and selected epoch. ``matched`` marks the
  parameter-count control's widened runs. ``kept`` is the encoder subset left at
  inference: dev rows keep every encoder of the run; test rows come from the run's masking table,
  so the row whose ``kept`` equals ``encoders`` is the run's plain test score. No artifact
  holds a timing, so the table is byte-identical across reruns. Every analysis reads this
  table (``vecomp.analysis.stats``).
- ``summary.json`` (a DVC metric): per task and encoder subset (VE-dropout 0), the mean and
  standard deviation over seeds of each test metric.
- ``curves/<task>.csv`` (a DVC plot): the training curve (epoch, loss, dev score) of each task's
  model with every encoder, first seed, VE-dropout 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..errors import VecompError
from ..io import atomic_path, write_json

RUN_COLUMNS = ["task", "encoders", "seed", "ve_dropout", "matched"]
TABLE_COLUMNS = [*RUN_COLUMNS, "split", "kept", "metric", "value", "parameters", "selected_epoch"]


def read_run(folder: Path) -> pd.DataFrame:
    """One run's rows of the tidy table: dev metrics, then test metrics under every masking."""
    path = folder / "metrics.json"
    if not path.exists():
        raise VecompError(f"{folder} has no metrics.json: the run did not finish; rerun it")
    metrics = json.loads(path.read_text())
    run = {k: metrics.get(k, False) for k in RUN_COLUMNS}  # matched: absent before the control
    dev = pd.DataFrame(
        [{"metric": name, "value": value} for name, value in metrics["dev"].items()]
    ).assign(split="dev", kept=metrics["encoders"])
    test = pd.read_csv(folder / "masked.csv", dtype={"kept": str})[["kept", "metric", "value"]]
    rows = pd.concat([dev, test.assign(split="test")], ignore_index=True)
    extra = {k: metrics[k] for k in ("parameters", "selected_epoch")}
    return rows.assign(**run, **extra)[TABLE_COLUMNS]


def standard(runs: pd.DataFrame) -> pd.DataFrame:
    """The sweep's runs without the parameter-count control's widened ones."""
    return runs[~runs["matched"].astype(bool)]


def plain(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of models evaluated with every encoder they were trained with."""
    return runs[runs["kept"] == runs["encoders"]]


def summarise(runs: pd.DataFrame) -> dict:
    """``{task: {encoders: {metric: {mean, std, seeds}}}}`` over test metrics, VE-dropout 0."""
    test = plain(standard(runs))
    test = test[(test["split"] == "test") & (test["ve_dropout"] == 0)]
    grouped = test.groupby(["task", "encoders", "metric"])["value"]
    stats = grouped.agg(["mean", "std", "count"]).reset_index()
    summary: dict = {}
    for row in stats.itertuples(index=False):
        entry = {"mean": round(row.mean, 4), "std": round(0.0 if pd.isna(row.std) else row.std, 4)}
        summary.setdefault(row.task, {}).setdefault(row.encoders, {})[row.metric] = entry | {
            "seeds": int(row.count)
        }
    return summary


def curves(folders: list[Path]) -> dict[str, pd.DataFrame]:
    """Per task: epoch, loss and dev score of the model with the most encoders (first seed,
    VE-dropout 0, not a widened control run)."""
    chosen: dict[str, tuple] = {}
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        if metrics["ve_dropout"] or metrics.get("matched") or not metrics.get("history"):
            continue
        rank = (-metrics["encoders"].count("+"), metrics["seed"], metrics["encoders"])
        if metrics["task"] not in chosen or rank < chosen[metrics["task"]][0]:
            chosen[metrics["task"]] = (rank, metrics["history"])
    return {
        task: pd.DataFrame(history)[["epoch", "loss", "dev"]]
        for task, (_, history) in chosen.items()
    }


def collect(folders: list[Path], out: Path, summary_path: Path) -> None:
    runs = pd.concat([read_run(folder) for folder in folders], ignore_index=True)
    runs = runs.sort_values(RUN_COLUMNS + ["split", "kept", "metric"], kind="stable")
    with atomic_path(out / "runs.csv") as tmp:
        runs.to_csv(tmp, index=False)
    for task, curve in curves(folders).items():
        with atomic_path(out / "curves" / f"{task}.csv") as tmp:
            curve.to_csv(tmp, index=False, float_format="%.6g")
    write_json(summary_path, summarise(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp collect", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (results/runs/...)")
    parser.add_argument("--out", type=Path, required=True, help="folder for runs.csv and curves/")
    parser.add_argument("--summary", type=Path, required=True, help="summary metrics JSON")
    args = parser.parse_args(argv)
    collect(args.runs, args.out, args.summary)
    print(f"collected {len(args.runs)} runs into {args.out}")
    return 0
