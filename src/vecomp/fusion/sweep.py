"""The sweep as a table: every (task, encoder subset, seed, VE-dropout) run, and its settings.

Every non-empty subset of the configured encoders is trained on every task with every seed at
``ve_dropout = 0``; each probability in ``sweep.ve_dropout`` is trained as well, on the subset of
all encoders (``ve_dropout_on: full``) or on every subset of two or more (``multi``: VE-dropout
means nothing for a single encoder). Snakemake expands the run folders from this table.

Training settings resolve as: ``TrainConfig`` defaults < config ``train`` < the task's own
``tasks.<task>.train``, so changing one task's settings changes only that task's runs.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

RUN_FOLDER = "results/runs/{task}/{subset}/seed{seed}-vedrop{vedrop}"
RUN_LOG = "logs/runs/{task}/{subset}/seed{seed}-vedrop{vedrop}.log"
RUN_FILES = ("metrics.json", "predictions.parquet", "masked.csv", "checkpoint.pt")
SCHEDULER_KEYS = ("gpus",)  # train settings read by the scheduler, not by `vecomp train`


def encoder_subsets(encoders) -> list[tuple[str, ...]]:
    """Every non-empty subset, singles first, names sorted: reordering the config's encoders
    renames (and reruns) nothing."""
    names = sorted(encoders)
    return [c for k in range(1, len(names) + 1) for c in combinations(names, k)]


def subset_name(subset) -> str:
    return "+".join(subset)


def format_probability(p: float) -> str:
    return f"{float(p):g}"


def sweep_table(tasks, encoders, sweep: dict) -> pd.DataFrame:
    """One row per run: task, subset (``a+b``), seed, vedrop (formatted probability)."""
    subsets = encoder_subsets(encoders)
    multi = [s for s in subsets if len(s) > 1]
    dropout_subsets = {"full": multi[-1:], "multi": multi}[sweep.get("ve_dropout_on", "full")]
    settings = [(s, 0.0) for s in subsets]
    settings += [(s, p) for p in sweep.get("ve_dropout", []) if p > 0 for s in dropout_subsets]
    rows = [
        {"task": task, "subset": subset_name(s), "seed": seed, "vedrop": format_probability(p)}
        for task in tasks
        for s, p in settings
        for seed in sweep["seeds"]
    ]
    return pd.DataFrame(rows, columns=["task", "subset", "seed", "vedrop"])


def run_folders(table: pd.DataFrame) -> list[str]:
    return [RUN_FOLDER.format(**row) for row in table.to_dict("records")]


def train_settings(config: dict, task: str) -> dict:
    """The training settings one task's runs use (global, then the task's overrides)."""
    overrides = (config["tasks"].get(task) or {}).get("train", {})
    merged = {**config.get("train", {}), **overrides}
    return {k: v for k, v in merged.items() if k not in SCHEDULER_KEYS}
