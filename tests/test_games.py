"""Exact Shapley values and interaction indices against hand-computed games and the axioms."""

from __future__ import annotations

import random

import pytest

from vecomp.analysis.games import interaction_index, missing, shapley_values, subsets

# a and b matter, c is a dummy (adding it never changes the score):
# v(a) = 10, v(b) = 20, v(ab) = 40. By hand: phi_a = (10 - 0)/2 + (40 - 20)/2 = 15,
# phi_b = 20/2 + (40 - 10)/2 = 25, and I_ab = ((40-10-20+0) + (40-10-20+0)) / 2 = 10.
BASE = {"": 0.0, "a": 10.0, "b": 20.0, "ab": 40.0}
GAME = {frozenset(k): v for k, v in BASE.items()}
GAME |= {s | {"c"}: v for s, v in GAME.items()}


def test_subsets_lists_every_subset_once_the_empty_one_first():
    assert subsets(["b", "a"]) == [frozenset(), {"a"}, {"b"}, {"a", "b"}]
    assert len(set(subsets("abcd"))) == 16


def test_shapley_values_of_a_hand_computed_game():
    assert shapley_values("abc", GAME) == pytest.approx({"a": 15.0, "b": 25.0, "c": 0.0})


def test_interaction_index_of_a_hand_computed_game():
    assert interaction_index("abc", GAME, "a", "b") == pytest.approx(10.0)
    assert interaction_index("abc", GAME, "a", "c") == pytest.approx(0.0)  # a dummy interacts
    assert interaction_index("abc", GAME, "b", "c") == pytest.approx(0.0)  # with no one


def test_for_two_players_the_interaction_is_the_joint_minus_the_parts():
    game = {frozenset(k): v for k, v in {"": 3.0, "x": 7.0, "y": 4.0, "xy": 5.0}.items()}
    assert interaction_index("xy", game, "x", "y") == pytest.approx(5 - 7 - 4 + 3)


def _random_game(players: str, seed: int) -> dict:
    rng = random.Random(seed)
    return {s: rng.uniform(-10, 50) for s in subsets(players)}


@pytest.mark.parametrize("seed", range(5))
def test_efficiency_the_values_sum_to_the_whole_minus_the_empty_subset(seed):
    game = _random_game("abcd", seed)
    values = shapley_values("abcd", game)
    assert sum(values.values()) == pytest.approx(game[frozenset("abcd")] - game[frozenset()])


def test_symmetric_players_get_the_same_value():
    # v depends only on how many players join: every player is interchangeable
    game = {s: [0, 4, 11, 12][len(s)] for s in subsets("xyz")}
    values = shapley_values("xyz", game)
    assert values["x"] == pytest.approx(values["y"]) == pytest.approx(values["z"]) == 4.0


def test_an_additive_game_has_no_interaction():
    worth = {"a": 3.0, "b": -2.0, "c": 7.5}
    game = {s: 1.0 + sum(worth[p] for p in s) for s in subsets("abc")}
    assert shapley_values("abc", game) == pytest.approx(worth)
    for i, j in (("a", "b"), ("a", "c"), ("b", "c")):
        assert interaction_index("abc", game, i, j) == pytest.approx(0.0)


def test_twins_interact_negatively_and_a_conjunction_positively():
    # "either": a or its twin a2 is enough; "both": a and b are needed together
    either = {s: 10.0 * bool(s & {"a", "a2"}) for s in subsets(["a", "a2"])}
    both = {s: 10.0 * ({"a", "b"} <= s) for s in subsets("ab")}
    assert interaction_index(["a", "a2"], either, "a", "a2") == pytest.approx(-10.0)
    assert interaction_index("ab", both, "a", "b") == pytest.approx(10.0)


def test_missing_names_the_subsets_a_game_lacks():
    game = dict(GAME)
    del game[frozenset("bc")]
    assert missing("abc", game) == [frozenset("bc")]
