"""Encoders as players of a cooperative game, measured exactly over every subset.

A game gives each subset of the encoders (a frozenset; the empty one included) a score ``v``.
vecomp plays two: *retraining* (``v(S)`` is the model trained on ``S``) and *masking*
(``v(S)`` is the model trained on every encoder, evaluated with only ``S`` kept). With ``n``
players there are ``2**n`` subsets, so both measures below are exact sums, not samples.

- Shapley value (Shapley 1953): the average marginal contribution of encoder ``i`` over every
  order in which the encoders could join,
  ``phi_i = sum_{S in N minus i} |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))``.
  The values sum to ``v(N) - v(empty)`` (efficiency).
- Shapley interaction index (Grabisch & Roubens 1999) of encoders ``i`` and ``j``: the same
  weighting over ``S in N minus {i, j}`` of ``v(S + ij) - v(S + i) - v(S + j) + v(S)``, with
  weights ``|S|! (n - |S| - 2)! / (n - 1)!``. For two encoders it is
  ``v(ij) - v(i) - v(j) + v(empty)``: positive when the pair does more together than apart
  (complementary), negative when each makes the other less useful (redundant).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain, combinations
from math import factorial

Game = Mapping[frozenset, float]


def subsets(players: Iterable[str]) -> list[frozenset]:
    """Every subset of ``players``, the empty one first, by size."""
    players = sorted(players)
    return [
        frozenset(s)
        for s in chain.from_iterable(combinations(players, k) for k in range(len(players) + 1))
    ]


def missing(players: Iterable[str], game: Game) -> list[frozenset]:
    """The subsets of ``players`` that ``game`` has no value for."""
    return [s for s in subsets(players) if s not in game]


def shapley_values(players: Iterable[str], game: Game) -> dict[str, float]:
    """Exact Shapley value of each player (``game`` must value every subset)."""
    players = sorted(players)
    n = len(players)
    values = {}
    for i in players:
        others = [p for p in players if p != i]
        values[i] = sum(
            factorial(len(s)) * factorial(n - len(s) - 1) / factorial(n) * (game[s | {i}] - game[s])
            for s in subsets(others)
        )
    return values


def interaction_index(players: Iterable[str], game: Game, i: str, j: str) -> float:
    """Exact Shapley interaction index of the pair ``i``, ``j``."""
    n = len(set(players))
    others = [p for p in players if p not in (i, j)]
    return sum(
        factorial(len(s))
        * factorial(n - len(s) - 2)
        / factorial(n - 1)
        * (game[s | {i, j}] - game[s | {i}] - game[s | {j}] + game[s])
        for s in subsets(others)
    )


def pairs(players: Iterable[str]) -> list[tuple[str, str]]:
    return list(combinations(sorted(players), 2))
