"""Tests for vecomp.metrics.vqa: the official VQA answer normalisation, accuracy and soft scores.

Every expected value below is worked out by hand from the rules of the official VQA evaluation
script (processPunctuation / processDigitArticle and the 10-choose-9 accuracy average).
"""

from __future__ import annotations

import random

import pytest

from vecomp.metrics.vqa import (
    _process_digits_articles,
    _process_punctuation,
    majority_answer,
    normalize_answer,
    soft_scores,
    vqa_accuracy,
)

# ----------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # number words become digits (after lower-casing)
        ("Two", "2"),
        ("none", "0"),
        ("zero", "0"),
        ("TEN", "10"),
        ("two dogs", "2 dogs"),
        ("eleven", "eleven"),  # only zero..ten are mapped
        # articles a / an / the are dropped, as whole words only
        ("the red circle", "red circle"),
        ("A Dog", "dog"),
        ("an apple", "apple"),
        ("theater", "theater"),
        ("them", "them"),
        # the word "a" left over after punctuation became a space is an article too
        ("a,b", "b"),
        # punctuation: removed when it touches a space, else replaced by a space
        ("yes!", "yes"),
        ("What?", "what"),
        ("yes, sir", "yes sir"),
        ("x-ray", "x ray"),
        ("left/right", "left right"),
        ("(red)", "red"),
        ('"quoted"', "quoted"),
        # the comma rule: a digit,digit anywhere makes every punctuation mark vanish
        ("1,000", "1000"),
        ("1,000,000", "1000000"),
        ("1,000-2", "10002"),
        # a period next to a digit stays (decimals), elsewhere it goes
        ("3.5", "3.5"),
        ("hello.", "hello"),
        ("no.", "no"),
        ("Mr. T", "mr t"),
        ("3.", "3"),
        # apostrophe-less contractions get their apostrophes back
        ("dont", "don't"),
        ("isnt", "isn't"),
        ("cant", "can't"),
        ("Wont", "won't"),
        ("youdve", "you'd've"),
        ("youd've", "you'd've"),
        ("you'dve", "you'd've"),
        ("don't", "don't"),
        # capitalised canonical forms ("I'm") never match after lower-casing, as in the official map
        ("Im", "im"),
        # newlines and tabs are spaces; surrounding white space goes
        ("red\ncircle", "red circle"),
        ("\tyes\n", "yes"),
        ("two\tcats", "2 cats"),
        ("  many   spaces  ", "many spaces"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_normalize_answer_is_idempotent_on_normalised_answers() -> None:
    for raw in ["Two", "the red circle", "1,000", "3.5", "dont", "x-ray", "yes!"]:
        once = normalize_answer(raw)
        assert normalize_answer(once) == once


# ----------------------------------------------------------------------------- accuracy


def _answers(matching: int, match: str = "2", other: str = "3") -> list[str]:
    return [match] * matching + [other] * (10 - matching)


@pytest.mark.parametrize(
    ("matching", "expected"),
    [
        # k annotators agree with the prediction. Leaving out one of them leaves k-1 matches,
        # leaving out another leaves k: accuracy = (k*min(1,(k-1)/3) + (10-k)*min(1,k/3)) / 10
        (0, 0.0),
        (1, (1 * 0 + 9 * (1 / 3)) / 10),  # 0.3
        (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10),  # 0.6
        (3, (3 * (2 / 3) + 7 * 1) / 10),  # 0.9
        (4, (4 * 1 + 6 * 1) / 10),  # 1.0
        (7, 1.0),
        (10, 1.0),
    ],
)
def test_vqa_accuracy_by_number_of_matching_annotators(matching: int, expected: float) -> None:
    assert vqa_accuracy("2", _answers(matching)) == pytest.approx(expected)


def test_vqa_accuracy_literal_values() -> None:
    assert vqa_accuracy("2", _answers(1)) == pytest.approx(0.3)
    assert vqa_accuracy("2", _answers(2)) == pytest.approx(0.6)
    assert vqa_accuracy("2", _answers(3)) == pytest.approx(0.9)
    assert vqa_accuracy("2", _answers(4)) == pytest.approx(1.0)


def test_vqa_accuracy_normalises_the_prediction() -> None:
    # "Two" -> "2": three of the ten annotators said "2"
    assert vqa_accuracy("Two", _answers(3)) == pytest.approx(0.9)
    assert vqa_accuracy("the 2.", _answers(3)) == pytest.approx(0.9)


def test_vqa_accuracy_normalises_the_human_answers() -> None:
    humans = ["two", "Two", "2.", "the 2", "3", "3", "3", "3", "3", "3"]  # four say 2
    assert vqa_accuracy("2", humans) == pytest.approx(1.0)
    assert vqa_accuracy("3", humans) == pytest.approx(1.0)
    assert vqa_accuracy("4", humans) == 0.0
    # one "yes!" among nine "no"s
    assert vqa_accuracy("Yes", ["yes!"] + ["no"] * 9) == pytest.approx(0.3)
    assert vqa_accuracy("don't know", ["dont know"] * 2 + ["no"] * 8) == pytest.approx(0.6)


def _official_script_accuracy(prediction: str, human_answers: list[str]) -> float:
    """The official vqaEval.py's loop for one question: the prediction fully processed; the
    human answers only de-punctuated, and only when they disagree (the released annotations are
    normalised already, so the script does not process them further)."""
    res = prediction.replace("\n", " ").replace("\t", " ").strip()
    res = _process_digits_articles(_process_punctuation(res))
    gts = list(human_answers)
    if len(set(gts)) > 1:
        gts = [_process_punctuation(g) for g in gts]
    accs = [min(1, sum(g == res for j, g in enumerate(gts) if j != i) / 3) for i in range(10)]
    return sum(accs) / 10


def test_vqa_accuracy_equals_the_official_script_on_normalised_annotations() -> None:
    # vecomp normalises the human answers as it does the prediction (the synthetic annotators
    # write raw answers); on annotations normalised already, as released, nothing may differ
    raw = ["Two", "2", "2.", "the 2", "3", "three", "Yes", "yes!", "no", "a red circle",
           "red circle", "dont", "don't", "1,000", "3.5", "white and blue"]  # fmt: skip
    rng = random.Random(0)
    for _ in range(2000):
        humans = [normalize_answer(rng.choice(raw[: rng.randint(1, len(raw))])) for _ in range(10)]
        prediction = rng.choice(raw)
        expected = _official_script_accuracy(prediction, humans)
        assert vqa_accuracy(prediction, humans) == pytest.approx(expected), (prediction, humans)


def test_vqa_accuracy_of_a_wrong_answer_is_zero() -> None:
    assert vqa_accuracy("cat", ["dog"] * 10) == 0.0


def test_vqa_accuracy_without_answers_raises() -> None:
    with pytest.raises(ValueError, match="human answers"):
        vqa_accuracy("yes", [])


# ----------------------------------------------------------------------------- soft scores


def test_soft_score_table() -> None:
    humans = (
        ["red"] * 1  # 1 -> 0.3
        + ["blue"] * 2  # 2 -> 0.6
        + ["green"] * 3  # 3 -> 0.9
        + ["yellow"] * 4  # 4 -> 1.0
    )
    assert soft_scores(humans) == pytest.approx(
        {"red": 0.3, "blue": 0.6, "green": 0.9, "yellow": 1.0}
    )


def test_soft_scores_cap_at_four_and_normalise() -> None:
    humans = ["Two", "2", "two.", "the 2", "2", "3", "three", "Yes!", "yes", "yes"]
    # "2": 5 (capped at 1.0), "3": 2 -> 0.6, "yes": 3 -> 0.9
    assert soft_scores(humans) == pytest.approx({"2": 1.0, "3": 0.6, "yes": 0.9})


def test_soft_scores_agree_with_accuracy_for_ten_answers() -> None:
    humans = ["a cat", "cat", "cat", "dog", "dog", "bird", "cat.", "fish", "Cat", "dog"]
    for answer, score in soft_scores(humans).items():
        assert vqa_accuracy(answer, humans) == pytest.approx(score)


def test_soft_scores_of_no_answers_is_empty() -> None:
    assert soft_scores([]) == {}


# ----------------------------------------------------------------------------- majority


def test_majority_answer_is_normalised() -> None:
    assert majority_answer(["Two", "two", "2.", "3", "three"]) == "2"
    assert majority_answer(["the red circle", "Red circle!", "blue"]) == "red circle"


def test_majority_answer_tie_goes_to_first_seen() -> None:
    assert majority_answer(["3", "Two", "2", "three"]) == "3"
    assert majority_answer(["Two", "3", "2", "three"]) == "2"
