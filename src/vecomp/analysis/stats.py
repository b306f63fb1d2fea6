"""The study's analyses, each a function from tidy tables to a tidy table.

Every function reads the one table of runs (``collect.py``: task, encoders, seed, ve_dropout,
split, kept, metric, value, parameters) and, where it needs the trained models, the per-task
tables of ``analyse_task.py``. Scores are each task's headline test metric (VQA accuracy, accuracy,
retrieval rSum); means and standard deviations are over seeds.

- ``results_table``: every subset's mean ± std and parameter count; the best subset per task.
- ``gains``: each multi-encoder subset against the best single encoder in it (paired by seed,
  with a bootstrap interval over seeds).
- ``necessity``: per multi-encoder model and encoder, the drop when that encoder is masked at
  inference (necessity) beside the encoder's score alone (capacity).
- ``masking_vs_retraining``: a model with encoders masked against the model retrained on the
  encoders that were kept.
- ``masked_scores``: every model under every masking (the training-time dropout comparison).
- ``attention_summary``: attention mass per task, subset, layer, query and block over seeds, and
  the dominant encoder per task and layer.
- ``ensemble_vs_fusion``: the averaged single-encoder models against the multi-encoder model.
- ``parameter_control``: every model's score beside its parameter count, with the single-encoder
  models widened to the parameter count of the model with every encoder (``sweep.matched``).

Every analysis but the last reads the standard sweep only (``sweep_scores``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.registry import get_task
from ..kinds import get_kind
from .collect import plain, standard

GAIN_COLUMNS = [
    "task",
    "encoders",
    "best_single",
    "subset_mean",
    "single_mean",
    "gain",
    "low",
    "high",
    "seeds",
]
BOOTSTRAP_SAMPLES = 2000
SEED = 0  # the bootstrap's generator: the tables are identical on every rerun


def headline_metric(task: str) -> str:
    return get_kind(get_task(task).kind).headline


def headline(runs: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per (task, encoders, seed, ve_dropout, kept): the task's headline score."""
    rows = runs[runs["split"] == split]
    wanted = rows["task"].map(headline_metric)
    return rows[rows["metric"] == wanted].drop(columns=["split", "metric"])


def sweep_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Headline test scores of the standard sweep (without the widened control runs)."""
    return headline(standard(runs))


def n_encoders(encoders: pd.Series) -> pd.Series:
    return encoders.str.count(r"\+") + 1


def _mean_std(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    stats = frame.groupby(keys, sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    return stats.rename(columns={"count": "seeds"}).fillna({"std": 0.0})


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """task, encoders, n_encoders, metric, mean, std, seeds, parameters, best (VE-dropout 0)."""
    scores = plain(sweep_scores(runs))
    scores = scores[scores["ve_dropout"] == 0]
    table = _mean_std(scores, ["task", "encoders"])
    table["parameters"] = scores.groupby(["task", "encoders"])["parameters"].first().to_numpy()
    table["n_encoders"] = n_encoders(table["encoders"])
    table["metric"] = table["task"].map(headline_metric)
    table["best"] = table["mean"] == table.groupby("task")["mean"].transform("max")
    columns = ["task", "encoders", "n_encoders", "metric", "mean", "std", "seeds", "parameters"]
    return table[[*columns, "best"]]


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` resampled with replacement."""
    draws = rng.choice(values, size=(BOOTSTRAP_SAMPLES, len(values)), replace=True).mean(1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def gains(runs: pd.DataFrame) -> pd.DataFrame:
    """Each multi-encoder subset against the best single encoder in it (by mean over seeds).

    The gain is paired by seed (subset's score minus that encoder's score with the same seed);
    ``low``/``high`` bound its mean with a bootstrap over seeds.
    """
    scores = plain(sweep_scores(runs))
    scores = scores[scores["ve_dropout"] == 0]
    by_seed = scores.pivot_table(index=["task", "seed"], columns="encoders", values="value")
    means = by_seed.groupby(level="task").mean()
    rng = np.random.default_rng(SEED)
    rows = []
    for (task, subset), _ in scores.groupby(["task", "encoders"]):
        members = subset.split("+")
        if len(members) < 2 or not set(members) <= set(means.columns):
            continue
        best = max(members, key=lambda e: means.loc[task, e])
        paired = (by_seed.loc[task, subset] - by_seed.loc[task, best]).dropna().to_numpy()
        low, high = bootstrap_interval(paired, rng)
        rows.append(
            {
                "task": task,
                "encoders": subset,
                "best_single": best,
                "subset_mean": means.loc[task, subset],
                "single_mean": means.loc[task, best],
                "gain": paired.mean(),
                "low": low,
                "high": high,
                "seeds": len(paired),
            }
        )
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def capacity(runs: pd.DataFrame) -> pd.DataFrame:
    """Each encoder's score alone (single-encoder models, VE-dropout 0): task, encoder, mean."""
    scores = plain(sweep_scores(runs))
    singles = scores[(n_encoders(scores["encoders"]) == 1) & (scores["ve_dropout"] == 0)]
    return _mean_std(singles, ["task", "encoders"]).rename(columns={"encoders": "encoder"})


def necessity(runs: pd.DataFrame) -> pd.DataFrame:
    """Per multi-encoder model and encoder: the drop when it alone is masked, and its capacity."""
    scores = sweep_scores(runs)
    multi = scores[n_encoders(scores["encoders"]) > 1]
    full = plain(multi).set_index(["task", "encoders", "seed", "ve_dropout"])["value"]
    rows = []
    for row in multi.itertuples(index=False):
        members, kept = row.encoders.split("+"), row.kept.split("+")
        removed = sorted(set(members) - set(kept))
        if len(removed) != 1:
            continue
        key = (row.task, row.encoders, row.seed, row.ve_dropout)
        rows.append(
            {
                "task": row.task,
                "encoders": row.encoders,
                "ve_dropout": row.ve_dropout,
                "seed": row.seed,
                "encoder": removed[0],
                "drop": full[key] - row.value,
            }
        )
    keys = ["task", "encoders", "ve_dropout", "encoder"]
    drops = pd.DataFrame(rows, columns=[*keys, "seed", "drop"])
    table = drops.groupby(keys)["drop"].agg(["mean", "std"]).reset_index().fillna({"std": 0.0})
    table = table.rename(columns={"mean": "necessity", "std": "necessity_std"})
    alone = capacity(runs)[["task", "encoder", "mean"]].rename(columns={"mean": "capacity"})
    return table.merge(alone, on=["task", "encoder"], how="left")


def masked_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Every model (task, encoders, ve_dropout) under every kept subset: mean ± std over seeds."""
    return _mean_std(sweep_scores(runs), ["task", "encoders", "ve_dropout", "kept"])


def masking_vs_retraining(runs: pd.DataFrame) -> pd.DataFrame:
    """A multi-encoder model evaluated with only ``kept`` against the model trained on ``kept``."""
    masked = masked_scores(runs)
    masked = masked[masked["kept"] != masked["encoders"]]
    retrained = plain(sweep_scores(runs))
    retrained = retrained[retrained["ve_dropout"] == 0]
    retrained = _mean_std(retrained, ["task", "encoders"])[["task", "encoders", "mean"]]
    retrained = retrained.rename(columns={"encoders": "kept", "mean": "retrained"})
    table = masked.rename(columns={"mean": "masked", "std": "masked_std"}).merge(
        retrained, on=["task", "kept"], how="inner"
    )
    table["difference"] = table["masked"] - table["retrained"]
    return table.drop(columns=["seeds"])


def attention_summary(attention: pd.DataFrame) -> pd.DataFrame:
    """Attention mass per (task, encoders, ve_dropout, layer, query, block), mean over seeds."""
    keys = ["task", "encoders", "ve_dropout", "layer", "query", "block"]
    return attention.groupby(keys)[["mass", "per_token"]].mean().reset_index()


def dominant_encoders(summary: pd.DataFrame) -> pd.DataFrame:
    """Per task, multi-encoder model and layer: the encoder block the text queries attend most,
    by raw mass and per token."""
    text = summary[(summary["query"] == "text") & ~summary["block"].isin(["cls", "text"])]
    text = text[n_encoders(text["encoders"]) > 1]
    keys = ["task", "encoders", "ve_dropout", "layer"]
    raw = text.loc[text.groupby(keys)["mass"].idxmax(), [*keys, "block"]]
    per_token = text.loc[text.groupby(keys)["per_token"].idxmax(), [*keys, "block"]]
    return raw.rename(columns={"block": "dominant"}).merge(
        per_token.rename(columns={"block": "dominant_per_token"}), on=keys
    )


def ensemble_vs_fusion(runs: pd.DataFrame, ensembles: pd.DataFrame) -> pd.DataFrame:
    """Per task and multi-encoder subset: the fusion model's and the ensemble's mean ± std."""
    wanted = ensembles["task"].map(headline_metric)
    ensemble = _mean_std(ensembles[ensembles["metric"] == wanted], ["task", "encoders"])
    fusion = results_table(runs)[["task", "encoders", "mean", "std"]]
    return fusion.merge(ensemble, on=["task", "encoders"], suffixes=("_fusion", "_ensemble"))


def parameter_control(runs: pd.DataFrame) -> pd.DataFrame:
    """task, encoders, matched, parameters, mean, std: every model (VE-dropout 0) of the tasks
    with a widened single-encoder model, so scores can be read against parameter counts."""
    scores = plain(headline(runs))
    scores = scores[scores["ve_dropout"] == 0]
    tasks = scores.loc[scores["matched"].astype(bool), "task"].unique()
    scores = scores[scores["task"].isin(tasks)]
    table = _mean_std(scores, ["task", "encoders", "matched"])
    parameters = scores.groupby(["task", "encoders", "matched"])["parameters"].first()
    return table.merge(parameters.reset_index(), on=["task", "encoders", "matched"])
