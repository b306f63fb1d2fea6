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
- ``shapley`` and ``synergy``: each encoder's exact Shapley value and each pair's Shapley
  interaction index (``games.py``) in the retraining game and in the masking game of the model
  with every encoder, the empty subset valued by ``empty_value``.
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

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..data.registry import get_task
from ..kinds import get_kind
from .collect import plain, standard
from .games import interaction_index, missing, pairs, shapley_values

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


def necessity(runs: pd.DataFrame) -> pd.DataFrame:
    """Per multi-encoder model and masked group of its encoders: the drop when the group is
    masked (necessity, mean ± std over seeds), and a single masked encoder's capacity.

    Groups show what one-at-a-time masking hides: two encoders that carry the same information
    each cost little when masked alone and a lot together.
    """
    scores = sweep_scores(runs)
    multi = scores[n_encoders(scores["encoders"]) > 1]
    full = plain(multi).set_index(["task", "encoders", "seed", "ve_dropout"])["value"]
    rows = []
    for row in multi.itertuples(index=False):
        removed = sorted(set(row.encoders.split("+")) - set(row.kept.split("+")))
        if not removed:
            continue
        key = (row.task, row.encoders, row.seed, row.ve_dropout)
        rows.append(
            {
                "task": row.task,
                "encoders": row.encoders,
                "ve_dropout": row.ve_dropout,
                "masked": "+".join(removed),
                "n_masked": len(removed),
                "seed": row.seed,
                "drop": full[key] - row.value,
            }
        )
    keys = ["task", "encoders", "ve_dropout", "masked", "n_masked"]
    drops = pd.DataFrame(rows, columns=[*keys, "seed", "drop"])
    table = drops.groupby(keys)["drop"].agg(["mean", "std", "count"]).reset_index()
    table = table.fillna({"std": 0.0}).rename(
        columns={"mean": "necessity", "std": "necessity_std", "count": "seeds"}
    )
    alone = capacity(runs)[["task", "encoder", "mean"]]
    alone = alone.rename(columns={"encoder": "masked", "mean": "capacity"})
    return table.merge(alone, on=["task", "masked"], how="left")


def empty_value(baselines: dict, task: str) -> float | None:
    """The score of the empty subset: the task's text-only baseline (``vecomp baselines``), or
    for retrieval, which no rule can do without the image, a random ranking's expected rSum."""
    entry = baselines.get(task, {})
    return entry.get("text_only", entry.get("chance"))


def encoder_games(runs: pd.DataFrame, baselines: dict) -> Iterator[tuple[dict, list, dict]]:
    """Per task, the retraining game and the masking game of its model with every encoder (one
    per VE-dropout): ``(key, players, {seed: {subset: score}})``."""
    scores = sweep_scores(runs)
    for task, rows in scores.groupby("task"):
        members = rows["encoders"].str.split("+").map(frozenset)
        players = sorted(frozenset().union(*members))
        empty = empty_value(baselines, task)
        retrained = rows[(rows["kept"] == rows["encoders"]) & (rows["ve_dropout"] == 0)]
        key = {"task": task, "game": "retraining", "ve_dropout": 0.0}
        yield key, players, _games_by_seed(retrained, "encoders", empty)
        full = rows[members == frozenset(players)]
        for ve_dropout, model in full.groupby("ve_dropout"):
            key = {"task": task, "game": "masking", "ve_dropout": ve_dropout}
            yield key, players, _games_by_seed(model, "kept", empty)


def _games_by_seed(rows: pd.DataFrame, subset: str, empty: float | None) -> dict[int, dict]:
    games = {}
    for seed, group in rows.groupby("seed"):
        game = {
            frozenset(s.split("+")): v for s, v in zip(group[subset], group["value"], strict=True)
        }
        if empty is not None:
            game[frozenset()] = empty
        games[seed] = game
    return games


def _complete(players: list, games: dict) -> tuple[list[dict], str]:
    """The games that value every subset, and why there are none when there are none."""
    complete = [game for game in games.values() if not missing(players, game)]
    if complete or not games:
        return complete, "" if complete else "no runs"
    gaps = missing(players, next(iter(games.values())))
    if frozenset() in gaps:
        return [], "no text-only baseline values the empty subset (pass --baselines)"
    return [], "the sweep lacks " + ", ".join("+".join(sorted(s)) for s in gaps)


def shapley(runs: pd.DataFrame, baselines: dict) -> pd.DataFrame:
    """task, game, ve_dropout, encoder, shapley, low, high, seeds, verdict, note: each encoder's
    exact Shapley value per seed, summarised over seeds (NaN with a note when undefined)."""
    rows = []
    for key, players, games in encoder_games(runs, baselines):
        complete, note = _complete(players, games)
        per_seed = [shapley_values(players, game) for game in complete]
        for encoder in players:
            values = [seed_values[encoder] for seed_values in per_seed]
            rows.append(_measured(key, {"encoder": encoder}, "shapley", values, note))
    return pd.DataFrame(rows)


def synergy(runs: pd.DataFrame, baselines: dict) -> pd.DataFrame:
    """task, game, ve_dropout, pair, synergy, low, high, seeds, verdict, note: each pair's
    Shapley interaction index per seed, summarised over seeds (positive: complementary,
    negative: redundant); a sweep of one encoder has no pair and says so."""
    rows = []
    for key, players, games in encoder_games(runs, baselines):
        complete, note = _complete(players, games)
        if len(players) < 2:
            rows.append(_measured(key, {"pair": ""}, "synergy", [], "one encoder: no pair"))
        for i, j in pairs(players):
            values = [interaction_index(players, game, i, j) for game in complete]
            rows.append(_measured(key, {"pair": f"{i}+{j}"}, "synergy", values, note))
    return pd.DataFrame(rows)


def ranking_agreement(shapley: pd.DataFrame, task: str) -> float:
    """Kendall's tau between the encoders' Shapley values from retraining and from masking the
    model with every encoder (VE-dropout 0): 1 when masking ranks them as retraining does, the
    comparison arXiv 2606.03879 makes. NaN when either game is undefined or has one encoder."""
    from scipy import stats as scipy_stats  # here: scipy.stats takes 0.6 s to import

    rows = shapley[(shapley["task"] == task) & (shapley["ve_dropout"] == 0)]
    games = rows.pivot_table(index="encoder", columns="game", values="shapley").dropna()
    if len(games) < 2 or set(games.columns) != {"retraining", "masking"}:
        return float("nan")
    return float(scipy_stats.kendalltau(games["retraining"], games["masking"]).statistic)


def _measured(key: dict, label: dict, measure: str, values: list, note: str) -> dict:
    summary = over_seeds(values)
    return {**key, **label, measure: summary.pop("mean"), **summary, "note": note}


def utilization(runs: pd.DataFrame) -> pd.DataFrame:
    """CUR and IG of arXiv 2507.03262 (Wang et al., ICLR 2026, Sec. "How can we quantify encoder
    redundancy?"), in percent, per multi-encoder model and VE-dropout, summarised over seeds:

    - conditional utilization rate ``u(E_i) = (acc(all) - acc(all without E_i)) / acc(all)``,
      the relative drop when encoder ``i`` alone is masked (``measure`` CUR, per ``encoder``);
    - information gap ``max_i u(E_i) - min_j u(E_j)``, how unevenly the model uses its
      encoders (``measure`` IG, no encoder).
    """
    scores = sweep_scores(runs)
    multi = scores[n_encoders(scores["encoders"]) > 1]
    full = plain(multi).set_index(["task", "encoders", "ve_dropout", "seed"])["value"]
    rates = []
    for row in multi.itertuples(index=False):
        removed = sorted(set(row.encoders.split("+")) - set(row.kept.split("+")))
        if len(removed) == 1:
            whole = full[(row.task, row.encoders, row.ve_dropout, row.seed)]
            rate = 100 * (whole - row.value) / whole if whole else float("nan")
            rates.append(row._asdict() | {"encoder": removed[0], "cur": rate})
    keys = ["task", "encoders", "ve_dropout"]
    rows = []
    for key_values, model in pd.DataFrame(rates, columns=[*keys, "seed", "encoder", "cur"]).groupby(
        keys
    ):
        key = dict(zip(keys, key_values, strict=True))
        for encoder, encoder_rows in model.groupby("encoder"):
            values = encoder_rows.sort_values("seed")["cur"].tolist()
            rows.append(_measured(key, {"measure": "CUR", "encoder": encoder}, "value", values, ""))
        gaps = model.groupby("seed")["cur"].agg(lambda cur: cur.max() - cur.min())
        rows.append(_measured(key, {"measure": "IG", "encoder": ""}, "value", gaps.tolist(), ""))
    return pd.DataFrame(rows)


def effective_ranks(ranks: pd.DataFrame) -> pd.DataFrame:
    """task, encoder, alone, joint, seeds: the effective rank of each encoder's projected tokens
    in its single-encoder model and in the model with every encoder (VE-dropout 0), as
    arXiv 2606.03879 compares them; means over seeds."""
    ranks = ranks[ranks["ve_dropout"] == 0]
    size = n_encoders(ranks["encoders"])
    largest = size == size.groupby(ranks["task"]).transform("max")
    keys = ["task", "encoder"]
    alone = ranks[size == 1].groupby(keys)["effective_rank"].agg(["mean", "count"])
    joint = ranks[largest & (size > 1)].groupby(keys)["effective_rank"].mean().rename("joint")
    table = alone.rename(columns={"mean": "alone", "count": "seeds"}).join(joint, how="left")
    return table.reset_index()[["task", "encoder", "alone", "joint", "seeds"]]


# the cheap signals of a pair, each a column of ``pair_signals``: what it is
SIGNALS = {
    "cka": "linear CKA of the two encoders' mean-pooled features (stores only)",
    "mutual_knn": "mutual k-NN alignment of the same features (stores only)",
    "capacity": "the weaker encoder's score alone, as a share of the full model's gain",
    "effective_rank": "the two encoders' mean effective rank of projected tokens, alone",
}


def pair_signals(
    runs: pd.DataFrame, baselines: dict, similarity: pd.DataFrame, ranks: pd.DataFrame
) -> pd.DataFrame:
    """Per task and pair: each cheap signal (``SIGNALS``) beside the measured synergy of the
    retraining game, also as ``synergy_share``: a share of what the model with every encoder
    gains over the empty subset, so tasks with different metrics pool."""
    measured = synergy(runs, baselines)
    measured = measured[measured["game"] == "retraining"].set_index(["task", "pair"])["synergy"]
    results = results_table(runs)
    full = results.loc[results.groupby("task")["n_encoders"].idxmax()].set_index("task")["mean"]
    alone = capacity(runs).set_index(["task", "encoder"])["mean"]
    rank = effective_ranks(ranks).set_index(["task", "encoder"])["alone"]
    rows = []
    for row in similarity.itertuples(index=False):
        a, b = row.pair.split("+")
        empty = empty_value(baselines, row.task)
        gain = full.get(row.task, np.nan) - (np.nan if empty is None else empty)
        weaker = min(alone.get((row.task, a), np.nan), alone.get((row.task, b), np.nan))
        value = measured.get((row.task, row.pair), np.nan)
        rows.append(
            {
                "task": row.task,
                "pair": row.pair,
                "cka": row.cka,
                "mutual_knn": row.mutual_knn,
                "capacity": (weaker - (np.nan if empty is None else empty)) / gain,
                "effective_rank": np.mean([rank.get((row.task, e), np.nan) for e in (a, b)]),
                "synergy": value,
                "synergy_share": value / gain,
            }
        )
    return pd.DataFrame(rows, columns=["task", "pair", *SIGNALS, "synergy", "synergy_share"])


def predictors(signals: pd.DataFrame) -> pd.DataFrame:
    """signal, rho, p_value, pairs, note: Spearman's rank correlation, over every task and pair,
    between each cheap signal and the measured synergy share (undefined below three pairs)."""
    from scipy import stats as scipy_stats  # here: scipy.stats takes 0.6 s to import

    rows = []
    for signal in SIGNALS:
        both = signals[[signal, "synergy_share"]].dropna()
        row = {"signal": signal, "rho": np.nan, "p_value": np.nan, "pairs": len(both), "note": ""}
        if len(both) < 3 or (both.nunique() < 2).any():
            row["note"] = "fewer than three pairs with both values, or one of them constant"
        else:
            result = scipy_stats.spearmanr(both[signal], both["synergy_share"])
            row |= {"rho": float(result.statistic), "p_value": float(result.pvalue)}
        rows.append(row)
    return pd.DataFrame(rows)


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
