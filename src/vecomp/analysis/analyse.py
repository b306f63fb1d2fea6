"""``vecomp analyse``: every analysis table, the results table and the headline metrics.

Reads the tidy table of runs, each task's ``attention.csv`` and ``ensemble.csv``
(``analyse_task.py``) and the trivial baselines. Writes under ``--out`` one CSV per analysis
(``ANALYSES``) and the results table as ``results.md`` and ``results.tex``; and ``--metrics``, a
DVC metric file: per task the best subset, its gain over its best single encoder, and the
dominant encoder of the last layer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..errors import VecompError
from ..io import atomic_path, write_json
from ..settings import existing_path
from . import stats, tables

# name -> how to compute it from the inputs (runs, attention, ensembles)
ANALYSES = {
    "results": lambda i: stats.results_table(i["runs"]),
    "gains": lambda i: stats.gains(i["runs"]),
    "necessity": lambda i: stats.necessity(i["runs"]),
    "masked": lambda i: stats.masked_scores(i["runs"]),
    "masking_vs_retraining": lambda i: stats.masking_vs_retraining(i["runs"]),
    "attention": lambda i: stats.attention_summary(i["attention"]),
    "dominant": lambda i: stats.dominant_encoders(stats.attention_summary(i["attention"])),
    "ensemble": lambda i: stats.ensemble_vs_fusion(i["runs"], i["ensembles"]),
    "parameters": lambda i: stats.parameter_control(i["runs"]),
}


def read_inputs(runs: Path, task_folders: list[Path]) -> dict[str, pd.DataFrame]:
    missing = [
        f for f in task_folders for n in ("attention.csv", "ensemble.csv") if not (f / n).exists()
    ]
    if missing:
        raise VecompError(f"{missing[0]} lacks its tables: run `vecomp analyse-task` for it first")
    return {
        "runs": pd.read_csv(runs, dtype={"kept": str, "encoders": str}),
        "attention": pd.concat([pd.read_csv(f / "attention.csv") for f in task_folders]),
        "ensembles": pd.concat([pd.read_csv(f / "ensemble.csv") for f in task_folders]),
    }


def headline_metrics(results: dict[str, pd.DataFrame]) -> dict:
    """Per task: the best subset and score, its gain over its best single encoder, and which
    encoder the text queries of the largest model attend most in its last layer."""
    summary = {}
    table, gains, dominant = results["results"], results["gains"], results["dominant"]
    for task, rows in table.groupby("task"):
        best = rows.loc[rows["mean"].idxmax()]
        entry = {"best": best["encoders"], "score": round(float(best["mean"]), 4)}
        gain = gains[(gains["task"] == task) & (gains["encoders"] == best["encoders"])]
        if len(gain):
            entry["gain_over_best_single"] = round(float(gain["gain"].iloc[0]), 4)
        last = dominant[(dominant["task"] == task) & (dominant["ve_dropout"] == 0)]
        size = stats.n_encoders(last["encoders"])
        last = last[size == size.max()]
        if len(last):
            entry["dominant_last_layer"] = last.loc[last["layer"].idxmax(), "dominant"]
        summary[task] = entry
    return summary


def analyse(inputs: dict, baselines: dict, out: Path, metrics: Path) -> None:
    results = {name: compute(inputs) for name, compute in ANALYSES.items()}
    for name, frame in results.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    for suffix, render in (("md", tables.markdown), ("tex", tables.latex)):
        with atomic_path(out / f"results.{suffix}") as tmp:
            tmp.write_text(render(results["results"], baselines))
    write_json(metrics, headline_metrics(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp analyse", description=__doc__)
    parser.add_argument("--runs", type=existing_path, required=True, help="results/tables/runs.csv")
    parser.add_argument(
        "--tasks",
        type=existing_path,
        nargs="+",
        required=True,
        help="per-task folders of `vecomp analyse-task`",
    )
    parser.add_argument("--baselines", type=existing_path, help="results/metrics/baselines.json")
    parser.add_argument("--out", type=Path, required=True, help="folder for the analysis tables")
    parser.add_argument("--metrics", type=Path, required=True, help="headline metrics JSON")
    args = parser.parse_args(argv)
    baselines = json.loads(args.baselines.read_text()) if args.baselines else {}
    analyse(read_inputs(args.runs, args.tasks), baselines, args.out, args.metrics)
    print(f"wrote {len(ANALYSES)} analyses to {args.out}")
    return 0
