"""Tests for vecomp.metrics.vqa: the official VQA answer normalisation, accuracy and soft scores.

Every expected value below is worked out by hand from the official VQA evaluation script
(GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` at a013f00, March 2021:
processPunctuation / processDigitArticle, normalising only where the annotators disagree, and the
10-choose-9 average), or computed by ``OfficialReference`` below: those rules written out again
here, independently of vecomp's code, which it is compared against on randomised inputs.
"""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from vecomp.metrics.vqa import (
    CONTRACTIONS,
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
        ("youd've", "you'd've"),
        ("you'dve", "you'd've"),
        ("don't", "don't"),
        # only the official table's spellings: these are words, not contractions, there
        ("shed", "shed"),
        ("were", "were"),
        ("wed", "wed"),
        ("lets", "lets"),
        ("shes", "shes"),
        ("whore", "whore"),
        ("youdve", "youdve"),
        # ... and its quirks: a contraction mapped to its apostrophe-less form
        ("somebody'd", "somebodyd"),
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


# ----------------------------------------------------------------------------- the official table

# sha256 of the official contractions table as "key<TAB>value<LF>" lines in sorted key order,
# computed from vqaEval.py at GT-Vision-Lab/VQA a013f00 (120 entries)
OFFICIAL_CONTRACTIONS_SHA256 = "f7e93e52d4cd2e370d30e576bfe54d4437e95fd593cec197817e9e388c46659f"


def test_contractions_are_the_official_table_exactly() -> None:
    lines = "".join(f"{k}\t{v}\n" for k, v in sorted(CONTRACTIONS.items()))
    assert len(CONTRACTIONS) == 120
    assert hashlib.sha256(lines.encode()).hexdigest() == OFFICIAL_CONTRACTIONS_SHA256


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dont", "don't"),
        ("youd've", "you'd've"),
        ("y'allll", "y'all'll"),
        ("twas", "'twas"),
        ("somebody'd", "somebodyd"),
        ("Im", "I'm"),
        ("let's", "let's"),
        ("she's", "she's"),
        ("'ows'at", "'ow's'at"),
    ],
)
def test_official_contraction_entries(key: str, value: str) -> None:
    assert CONTRACTIONS[key] == value


@pytest.mark.parametrize(
    "word",
    [
        "shed",
        "were",
        "wed",
        "lets",
        "shes",
        "whore",
        "youdve",
        "im",
        "ive",
        "hell",
        "ill",
        "its",
        "somebodyd",
    ],
)
def test_words_the_official_table_does_not_hold(word: str) -> None:
    assert word not in CONTRACTIONS


def test_a_contraction_against_the_word_it_resembles_scores_nothing() -> None:
    # vecomp's old table mapped "shed" to "she'd": 1.0 here, 0.0 in the official evaluation
    assert vqa_accuracy("she'd", ["shed"] * 10) == 0.0
    assert vqa_accuracy("she'd", ["shed"] * 9 + ["no"]) == 0.0
    assert vqa_accuracy("we're", ["were"] * 5 + ["are"] * 5) == 0.0


def test_at_most_32_periods_are_stripped() -> None:
    # vqaEval.py passes re.UNICODE (32) as re.sub's count
    assert _process_punctuation("." * 40) == "." * 8
    assert _process_punctuation("." * 32) == ""
    assert normalize_answer("yes" + "." * 33) == "yes."
    assert normalize_answer("yes" + "." * 32) == "yes"


def test_unanimous_answers_are_compared_as_written() -> None:
    assert vqa_accuracy("Yes", ["yes"] * 10) == 0.0
    assert vqa_accuracy("yes", ["yes"] * 10) == 1.0
    assert vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0  # white space is cleaned first
    assert vqa_accuracy("2", ["two"] * 10) == 0.0
    assert vqa_accuracy("Yes", ["yes"] * 10, normalise_unanimous=True) == 1.0
    assert vqa_accuracy("2", ["two"] * 10, normalise_unanimous=True) == 1.0
    # "yes" and "yes " are one string after stripping: still unanimous
    assert vqa_accuracy("Yes", ["yes"] * 9 + ["yes "]) == 0.0


# ----------------------------------------------------------------------------- reference


class OfficialReference:
    """vqaEval.py's rules for one question, written out again from the script (not imported
    from vecomp). Its contraction table holds the official entries for the words drawn below."""

    contractions = {
        "dont": "don't",
        "cant": "can't",
        "youd've": "you'd've",
        "Im": "I'm",
        "somebody'd": "somebodyd",
        "let's": "let's",
        "isnt": "isn't",
    }
    manual_map = {
        "none": "0",
        "zero": "0",
        "one": "1",
        "two": "2",
        "three": "3",
        "four": "4",
        "five": "5",
        "six": "6",
        "seven": "7",
        "eight": "8",
        "nine": "9",
        "ten": "10",
    }
    articles = ["a", "an", "the"]
    period_strip = re.compile(r"(?!<=\d)(\.)(?!\d)")
    comma_strip = re.compile(r"(\d)(\,)(\d)")
    punct = [
        ";",
        r"/",
        "[",
        "]",
        '"',
        "{",
        "}",
        "(",
        ")",
        "=",
        "+",
        "\\",
        "_",
        "-",
        ">",
        "<",
        "@",
        "`",
        ",",
        "?",
        "!",
    ]

    def process_punctuation(self, in_text: str) -> str:
        out_text = in_text
        for p in self.punct:
            if (p + " " in in_text or " " + p in in_text) or (
                re.search(self.comma_strip, in_text) is not None
            ):
                out_text = out_text.replace(p, "")
            else:
                out_text = out_text.replace(p, " ")
        return self.period_strip.sub("", out_text, re.UNICODE)  # sic: the count argument

    def process_digit_article(self, in_text: str) -> str:
        out = []
        for word in in_text.lower().split():
            word = self.manual_map.get(word, word)
            if word not in self.articles:
                out.append(word)
        return " ".join(self.contractions.get(w, w) for w in out)

    def accuracy(self, prediction: str, answers: list[str]) -> float:
        def clean(text):
            return text.replace("\n", " ").replace("\t", " ").strip()

        gts = [clean(a) for a in answers]
        res = clean(prediction)
        if len(set(gts)) > 1:
            gts = [self.process_digit_article(self.process_punctuation(g)) for g in gts]
            res = self.process_digit_article(self.process_punctuation(res))
        accs = []
        for i in range(len(gts)):
            others = [g for j, g in enumerate(gts) if j != i]
            accs.append(min(1, float(sum(g == res for g in others)) / 3))
        return float(sum(accs)) / len(accs)


RAW_ANSWERS = [
    "Two",
    "2",
    "2.",
    "the 2",
    "3",
    "three",
    "Yes",
    "yes",
    "yes!",
    "no",
    "No.",
    "a red circle",
    "red circle",
    "red",
    "dont",
    "don't",
    "cant know",
    "Im",
    "shed",
    "she'd",
    "were",
    "somebody'd",
    "1,000",
    "1000",
    "3.5",
    "x-ray",
    "x ray",
    "white and blue",
    "left/right",
    "(red)",
    " yes\n",
    "\tno",
    "." * 40,
    "." * 8,
    "isnt",
    "youd've",
    "let's",
    "lets",
    "none",
    "0",
    "an apple",
    "apple",
]


def _released(rng: random.Random, reference: OfficialReference) -> list[str]:
    """Ten answers normalised as the released files are, with the real files' tie patterns."""
    pool = [reference.process_digit_article(reference.process_punctuation(a)) for a in RAW_ANSWERS]
    pattern = rng.choice([(10,), (5, 5), (4, 4, 2), (7, 3), (3, 3, 3, 1), (1,) * 10])
    picks = rng.sample(pool, len(pattern))
    answers = [a for a, n in zip(picks, pattern, strict=True) for _ in range(n)]
    rng.shuffle(answers)
    return answers


@pytest.mark.parametrize("released", [True, False], ids=["released", "raw"])
def test_vqa_accuracy_equals_the_official_rules_on_randomised_questions(released: bool) -> None:
    reference, rng = OfficialReference(), random.Random(1 if released else 2)
    for _ in range(3000):
        if released:
            humans = _released(rng, reference)
        else:
            few = RAW_ANSWERS[: rng.randint(1, len(RAW_ANSWERS))]
            humans = [rng.choice(few) for _ in range(10)]
        prediction = rng.choice(RAW_ANSWERS + humans)
        expected = reference.accuracy(prediction, humans)
        assert abs(vqa_accuracy(prediction, humans) - expected) < 1e-9, (prediction, humans)


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
