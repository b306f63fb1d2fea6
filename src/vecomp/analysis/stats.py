"""The study's analyses, each a function from tidy tables to a tidy table.

Every function reads the one table of runs (``collect.py``: task, encoders, seed, ve_dropout,
split, kept, metric, value, parameters) and, where it needs the trained models, the per-task
tables of ``analyse_task.py``. Scores are each task's headline test metric (VQA accuracy, accuracy,
retrieval rSum); means and standard deviations are over seeds.

Intervals are 95% Student-t intervals of the mean over seeds (``over_seeds``), printed beside
their seed count; they need two seeds. A difference is called positive or negative (``verdict``)
only when the interval excludes zero *and* at least ``MIN_SEEDS_FOR_A_CLAIM`` seeds back it:
two seeds give an interval, but no claim.

- ``results_table``: every subset's mean ± std and parameter count; the best subset per task.
- ``gains``: each multi-encoder subset against the best single encoder in it (paired by seed).
- ``necessity``: per multi-encoder model and masked group of its encoders (one or several), the
  drop when the group is masked at inference, beside a single encoder's score alone (capacity).
- ``masking_vs_retraining``: a model with encoders masked against the model retrained on the
  encoders that were kept.
- ``masked_scores``: every model under every masking (the training-time dropout comparison).
- ``attention_summary``: attention mass per task, subset, layer, query and block over seeds, and
  the dominant encoder per task and layer.
- ``ensemble_vs_fusion``: the averaged single-encoder models against the multi-encoder model.
- ``parameter_control``: every model's score beside its parameter count, with the single-encoder
  models widened to the parameter count of the model with every encoder (``sweep.matched``).

Every analysis but the last reads the standard sweep only (``sweep_scores``). The measures of
complementarity as a cooperative game, and the signals that might predict it, are in
``complementarity.py``.
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
    "verdict",
]
CONFIDENCE = 0.95
MIN_SEEDS_FOR_A_CLAIM = 3


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


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% Student-t interval of the mean of ``values`` (NaN below two values)."""
    from scipy import stats as scipy_stats  # here: scipy.stats takes 0.6 s to import

    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n)
    return float(np.mean(values) - half), float(np.mean(values) + half)


def verdict(low: float, high: float, seeds: int) -> str:
    """What the interval supports: positive, negative, not shown, or no claim at all."""
    if seeds == 0:
        return "undefined"
    if seeds < MIN_SEEDS_FOR_A_CLAIM:
        return "too few seeds"
    if low > 0:
        return "positive"
    return "negative" if high < 0 else "not shown"


def over_seeds(values) -> dict:
    """mean, low, high, seeds and verdict of per-seed values."""
    values = np.asarray(values, dtype=float)
    low, high = t_interval(values)
    mean = float(values.mean()) if len(values) else float("nan")
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "seeds": len(values),
        "verdict": verdict(low, high, len(values)),
    }


def gains(runs: pd.DataFrame) -> pd.DataFrame:
    """Each multi-encoder subset against the best single encoder in it (by mean over seeds).

    The gain is paired by seed (subset's score minus that encoder's score with the same seed);
    ``low``/``high`` bound its mean (``over_seeds``).
    """
    scores = plain(sweep_scores(runs))
    scores = scores[scores["ve_dropout"] == 0]
    by_seed = scores.pivot_table(index=["task", "seed"], columns="encoders", values="value")
    means = by_seed.groupby(level="task").mean()
    rows = []
    for (task, subset), _ in scores.groupby(["task", "encoders"]):
        members = subset.split("+")
        if len(members) < 2 or not set(members) <= set(means.columns):
            continue
        best = max(members, key=lambda e: means.loc[task, e])
        paired = (by_seed.loc[task, subset] - by_seed.loc[task, best]).dropna().to_numpy()
        summary = over_seeds(paired)
        rows.append(
            {
                "task": task,
                "encoders": subset,
                "best_single": best,
                "subset_mean": means.loc[task, subset],
                "single_mean": means.loc[task, best],
                "gain": summary.pop("mean"),
                **summary,
            }
        )
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def capacity(runs: pd.DataFrame) -> pd.DataFrame:
    """Each encoder's score alone (single-encoder models, VE-dropout 0): task, encoder, mean."""
    scores = plain(sweep_scores(runs))
    singles = scores[(n_encoders(scores["encoders"]) == 1) & (scores["ve_dropout"] == 0)]
    return _mean_std(singles, ["task", "encoders"]).rename(columns={"encoders": "encoder"})


def masked_drops(runs: pd.DataFrame) -> pd.DataFrame:
    """Per multi-encoder model, seed and group of its encoders masked at inference: the model's
    plain score (``whole``), its score with the group masked (``value``) and the ``drop``."""
    scores = sweep_scores(runs)
    multi = scores[n_encoders(scores["encoders"]) > 1]
    whole = plain(multi).set_index(["task", "encoders", "seed", "ve_dropout"])["value"]
    rows = []
    for row in multi.itertuples(index=False):
        removed = sorted(set(row.encoders.split("+")) - set(row.kept.split("+")))
        if removed:
            score = whole[(row.task, row.encoders, row.seed, row.ve_dropout)]
            rows.append(
                {
                    "task": row.task,
                    "encoders": row.encoders,
                    "ve_dropout": row.ve_dropout,
                    "masked": "+".join(removed),
                    "n_masked": len(removed),
                    "seed": row.seed,
                    "whole": score,
                    "value": row.value,
                    "drop": score - row.value,
                }
            )
    columns = ["task", "encoders", "ve_dropout", "masked", "n_masked", "seed", "whole", "value"]
    return pd.DataFrame(rows, columns=[*columns, "drop"])


def necessity(runs: pd.DataFrame) -> pd.DataFrame:
    """Per multi-encoder model and masked group of its encoders: the drop when the group is
    masked (necessity, mean ± std over seeds), and a single masked encoder's capacity.

    Groups show what one-at-a-time masking hides: two encoders that carry the same information
    each cost little when masked alone and a lot together.
    """
    keys = ["task", "encoders", "ve_dropout", "masked", "n_masked"]
    table = masked_drops(runs).groupby(keys)["drop"].agg(["mean", "std", "count"]).reset_index()
    table = table.fillna({"std": 0.0}).rename(
        columns={"mean": "necessity", "std": "necessity_std", "count": "seeds"}
    )
    alone = capacity(runs)[["task", "encoder", "mean"]]
    alone = alone.rename(columns={"encoder": "masked", "mean": "capacity"})
    return table.merge(alone, on=["task", "masked"], how="left")


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
