"""The sweep as a table: every (task, encoder subset, seed, VE-dropout) run, and its settings.

Every non-empty subset of the configured encoders is trained on every task with every seed at
``ve_dropout = 0``; each probability in ``sweep.ve_dropout`` is trained as well, on the subset of
all encoders (``ve_dropout_on: full``) or on every subset of two or more (``multi``: VE-dropout
means nothing for a single encoder). Snakemake expands the run folders from this table.

``sweep.matched`` adds the parameter-count control: each listed (task, encoder) is trained alone
with every seed, its model widened to the parameter count of the model with every encoder
(``MATCHED_FOLDER``; ``vecomp train --match-store``).

Training settings resolve as: ``TrainConfig`` defaults < config ``train`` < the task's own
``task_train.<task>``, so changing one task's settings changes only that task's runs.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from ..data.registry import get_task
from ..kinds import get_kind

RUN_FOLDER = "results/runs/{task}/{subset}/seed{seed}-vedrop{vedrop}"
RUN_LOG = "logs/runs/{task}/{subset}/seed{seed}-vedrop{vedrop}.log"
MATCHED_FOLDER = "results/runs/{task}/{subset}/seed{seed}-matched"
MATCHED_LOG = "logs/runs/{task}/{subset}/seed{seed}-matched.log"
RUN_FILES = ("metrics.json", "predictions.parquet", "masked.csv", "checkpoint.pt")
SCHEDULER_KEYS = ("gpus",)  # train settings read by the scheduler, not by `vecomp train`
RETRIEVAL_KEYS = ("negatives", "rerank_top_k")  # read by retrieval runs only
PRETRAINED_KEYS = ("lr_pretrained", "layer_decay")  # read only with model.init


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


def matched_folders(tasks, encoders, sweep: dict) -> list[str]:
    """The parameter-count control's run folders: each (task, encoder) of ``sweep.matched``
    whose task and encoder are configured, with every seed."""
    return [
        MATCHED_FOLDER.format(task=m["task"], subset=m["encoder"], seed=seed)
        for m in sweep.get("matched", [])
        if m["task"] in tasks and m["encoder"] in encoders
        for seed in sweep["seeds"]
    ]


def _merged_train(config: dict, task: str) -> dict:
    overrides = (config.get("task_train") or {}).get(task) or {}
    return {**config.get("train", {}), **overrides}


def train_settings(config: dict, task: str) -> dict:
    """What one task's runs read (global, then the task's overrides): a setting a task does
    not read is left out, so changing it reruns nothing."""
    unread = set(SCHEDULER_KEYS)
    if get_kind(get_task(task).kind).target != "match":
        unread |= set(RETRIEVAL_KEYS)
    if not (config.get("model") or {}).get("init"):
        unread |= set(PRETRAINED_KEYS)
    return {k: v for k, v in _merged_train(config, task).items() if k not in unread}


def scheduling(config: dict, task: str) -> dict:
    """The job resources of one task's runs: CPU threads (with the loader's) and GPUs."""
    merged = _merged_train(config, task)
    threads = max(1, merged.get("threads", 1)) + merged.get("loader_workers", 0)
    return {"threads": threads, "gpus": merged.get("gpus", 0)}


def model_settings(model: dict, subset: str) -> dict:
    """The model settings a run reads: pooling only for the encoders of its subset."""
    names = subset.split("+")
    pool_grid = {k: v for k, v in (model.get("pool_grid") or {}).items() if k in names}
    return {**model, "pool_grid": pool_grid}
