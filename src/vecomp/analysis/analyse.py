"""``vecomp analyse``: every analysis table, the results table and the headline metrics.

Reads the tidy table of runs, each task's ``attention.csv`` and ``ensemble.csv``
(``analyse_task.py``) and the trivial baselines. Writes under ``--out`` one CSV per analysis
(``ANALYSES``) and the results table as ``results.md`` and ``results.tex``; and ``--metrics``, a
DVC metric file (``headline_metrics``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..errors import VecompError
from ..io import atomic_path, write_json
from ..settings import existing_path
from . import TASK_TABLES, complementarity, stats, tables

# name -> how to compute it from the inputs (runs, baselines and the task tables) and the
# analyses above it (``compute``: each computed once, in this order)
ANALYSES = {
    "results": lambda i, r: stats.results_table(i["runs"]),
    "gains": lambda i, r: stats.gains(i["runs"]),
    "necessity": lambda i, r: stats.necessity(i["runs"]),
    "shapley": lambda i, r: complementarity.shapley(i["runs"], i["baselines"]),
    "synergy": lambda i, r: complementarity.synergy(i["runs"], i["baselines"]),
    "utilization": lambda i, r: complementarity.utilization(i["runs"]),
    "effective_rank": lambda i, r: complementarity.effective_ranks(i["effective_rank"]),
    "pair_signals": lambda i, r: complementarity.pair_signals(
        i["runs"], i["baselines"], i["similarity"], r["synergy"], r["effective_rank"]
    ),
    "predictors": lambda i, r: complementarity.predictors(r["pair_signals"]),
    "masked": lambda i, r: stats.masked_scores(i["runs"]),
    "masking_vs_retraining": lambda i, r: stats.masking_vs_retraining(i["runs"]),
    "attention": lambda i, r: stats.attention_summary(i["attention"]),
    "dominant": lambda i, r: stats.dominant_encoders(r["attention"]),
    "ensemble": lambda i, r: stats.ensemble_vs_fusion(i["runs"], i["ensemble"]),
    "parameters": lambda i, r: stats.parameter_control(i["runs"]),
}


def compute(inputs: dict) -> dict[str, pd.DataFrame]:
    """Every analysis in ``ANALYSES``, in order, each from the inputs and those before it."""
    results: dict[str, pd.DataFrame] = {}
    for name, analysis in ANALYSES.items():
        results[name] = analysis(inputs, results)
    return results


def read_inputs(runs: Path, task_folders: list[Path], baselines: Path | None) -> dict:
    missing = [f for f in task_folders for n in TASK_TABLES if not (f / f"{n}.csv").exists()]
    if missing:
        raise VecompError(f"{missing[0]} lacks its tables: run `vecomp analyse-task` for it first")
    per_task = {
        name: pd.concat([pd.read_csv(f / f"{name}.csv") for f in task_folders])
        for name in TASK_TABLES
    }
    return per_task | {
        "runs": pd.read_csv(runs, dtype={"kept": str, "encoders": str}),
        "baselines": json.loads(baselines.read_text()) if baselines else {},
    }


ACROSS_TASKS = "across_tasks"  # analysis.json's entry beside the tasks'


def headline_metrics(results: dict[str, pd.DataFrame]) -> dict:
    """Per task: the best subset by mean and its score; its gain over its best single encoder
    with the interval, seed count and what they support; each encoder's Shapley value and the
    pair with the highest synergy in the retraining game; how far masking ranks the encoders as
    retraining does (Kendall's tau of their Shapley values); the information gap (IG) of the
    model with every encoder; and which encoder the text queries of the largest model attend
    most in its last layer. Across tasks: each cheap signal's rank correlation with the synergy.
    Undefined numbers are left out."""
    per_task = {
        task: _best(rows, results["gains"])
        | _game(results["shapley"], results["synergy"], task)
        | _information_gap(results["utilization"], task)
        | _dominant(results["dominant"], task)
        for task, rows in results["results"].groupby("task")
    }
    rho = {
        f"synergy_rho_{row.signal}": _round(row.rho)
        for row in results["predictors"].dropna(subset=["rho"]).itertuples()
    }
    return per_task | ({ACROSS_TASKS: rho} if rho else {})


def _information_gap(utilization: pd.DataFrame, task: str) -> dict:
    gaps = utilization[
        (utilization["task"] == task)
        & (utilization["measure"] == "IG")
        & (utilization["ve_dropout"] == 0)
    ]
    size = stats.n_encoders(gaps["encoders"])
    gaps = gaps[size == size.max()]
    return {"information_gap": _round(gaps["value"].iloc[0])} if len(gaps) else {}


def _best(rows: pd.DataFrame, gains: pd.DataFrame) -> dict:
    best = rows.loc[rows["mean"].idxmax()]
    entry = {"best": best["encoders"], "score": _round(best["mean"])}
    gain = gains[(gains["task"] == best["task"]) & (gains["encoders"] == best["encoders"])]
    if len(gain):
        gain = gain.iloc[0]
        entry |= {f"gain_{k}": _round(gain[k]) for k in ("low", "high") if pd.notna(gain[k])}
        entry |= {
            "gain_over_best_single": _round(gain["gain"]),
            "gain_seeds": int(gain["seeds"]),
            "gain_verdict": gain["verdict"],
        }
    return entry


def _game(shapley: pd.DataFrame, synergy: pd.DataFrame, task: str) -> dict:
    def retraining(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
        rows = frame[(frame["task"] == task) & (frame["game"] == "retraining")]
        return rows.dropna(subset=[measure])

    values, pairs = retraining(shapley, "shapley"), retraining(synergy, "synergy")
    entry = {f"shapley_{r.encoder}": _round(r.shapley) for r in values.itertuples()}
    tau = complementarity.ranking_agreement(shapley, task)
    if pd.notna(tau):
        entry["shapley_rank_tau"] = _round(tau)
    if len(pairs):
        top = pairs.loc[pairs["synergy"].idxmax()]
        entry |= {"top_synergy_pair": top["pair"], "top_synergy": _round(top["synergy"])}
    return entry


def _dominant(dominant: pd.DataFrame, task: str) -> dict:
    last = dominant[(dominant["task"] == task) & (dominant["ve_dropout"] == 0)]
    size = stats.n_encoders(last["encoders"])
    last = last[size == size.max()]
    return (
        {"dominant_last_layer": last.loc[last["layer"].idxmax(), "dominant"]} if len(last) else {}
    )


def _round(value) -> float:
    return round(float(value), 4)


def analyse(inputs: dict, out: Path, metrics: Path) -> None:
    results = compute(inputs)
    for name, frame in results.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
    for suffix, render in (("md", tables.markdown), ("tex", tables.latex)):
        with atomic_path(out / f"results.{suffix}") as tmp:
            tmp.write_text(render(results["results"], inputs["baselines"]))
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
    analyse(read_inputs(args.runs, args.tasks, args.baselines), args.out, args.metrics)
    print(f"wrote {len(ANALYSES)} analyses to {args.out}")
    return 0
