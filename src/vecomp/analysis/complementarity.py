"""Complementarity as a cooperative game of the encoders, and what might predict it.

Every function reads the tidy table of runs (``collect.py``) and, where it needs them, the
per-task tables of ``analyse_task.py`` and the baselines; summaries over seeds and their
intervals are ``stats.over_seeds``.

- ``shapley`` and ``synergy``: each encoder's exact Shapley value and each pair's Shapley
  interaction index (``games.py``) in the retraining game (each subset's own model) and in the
  masking game of the model with every encoder, the empty subset valued by ``empty_value``;
  ``ranking_agreement`` compares the two games' rankings.
- ``utilization``: CUR and IG of arXiv 2507.03262, from the masked evaluations.
- ``effective_ranks``: each encoder's projected tokens alone and under joint training.
- ``pair_signals`` and ``predictors``: cheap signals of a pair (``SIGNALS``) beside its measured
  synergy, and how well each ranks the pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from .games import interaction_index, missing, pairs, shapley_values
from .stats import (
    capacity,
    masked_drops,
    n_encoders,
    over_seeds,
    results_table,
    sweep_scores,
)


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
    drops = masked_drops(runs)
    singles = drops[drops["n_masked"] == 1]
    rates = singles.assign(
        encoder=singles["masked"],
        cur=100 * singles["drop"] / singles["whole"].where(singles["whole"] != 0),
    )
    keys = ["task", "encoders", "ve_dropout"]
    rows = []
    for key_values, model in rates.groupby(keys):
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
    runs: pd.DataFrame,
    baselines: dict,
    similarity: pd.DataFrame,
    synergy_table: pd.DataFrame,
    ranks: pd.DataFrame,
) -> pd.DataFrame:
    """Per task and pair: each cheap signal (``SIGNALS``) beside the measured synergy of the
    retraining game (``synergy``'s table), also as ``synergy_share``: a share of what the model
    with every encoder gains over the empty subset, so tasks with different metrics pool.
    ``ranks`` is ``effective_ranks``'s table."""
    retraining = synergy_table[synergy_table["game"] == "retraining"]
    measured = retraining.set_index(["task", "pair"])["synergy"]
    results = results_table(runs)
    full = results.loc[results.groupby("task")["n_encoders"].idxmax()].set_index("task")["mean"]
    alone = capacity(runs).set_index(["task", "encoder"])["mean"]
    rank = ranks.set_index(["task", "encoder"])["alone"]
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
