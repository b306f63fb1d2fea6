"""Ten simulated VQA annotators per question, written as the released VQAv2 files write them.

The released answers are normalised already (lower case, digits, no articles or punctuation),
so the annotators write the normalised form; they disagree the way people do (some answer
wrongly, more often on hard questions). Real files also hold questions on which the annotators
split evenly, five against five or four-four-two (about 4% of VQAv2, mostly 5-5), where the
first answer seen is not always the official ``multiple_choice_answer``: those patterns are
planted here too, in shuffled order, so a parser that recomputes a majority is caught.
"""

from __future__ import annotations

import random
from collections import Counter

N_ANNOTATORS = 10
TIE_PATTERNS = {(5, 5): 0.06, (4, 4, 2): 0.02}  # share of questions with each planted split


def _answers(answer: str, wrong: list[str], rng: random.Random) -> list[str]:
    """Ten answers: a planted tie pattern (truth first among the tied), or independent people."""
    roll = rng.random()
    for pattern, share in TIE_PATTERNS.items():
        if roll < share and len(wrong) >= len(pattern) - 1:
            others = rng.sample(wrong, len(pattern) - 1)
            answers = [a for a, n in zip([answer, *others], pattern, strict=True) for _ in range(n)]
            rng.shuffle(answers)
            return answers
        roll -= share
    p_correct = rng.uniform(0.7, 1.0)
    return [
        answer if rng.random() < p_correct or not wrong else rng.choice(wrong)
        for _ in range(N_ANNOTATORS)
    ]


def official_answer(answers: list[str], truth: str) -> str:
    """The most frequent answer; among tied answers the one the question was drawn for (the
    released files break ties their own way, not by first occurrence)."""
    counts = Counter(answers)
    top = max(counts.values())
    tied = sorted(a for a, n in counts.items() if n == top)
    return truth if truth in tied else tied[0]


def annotate(answer: str, space: tuple[str, ...], rng: random.Random) -> tuple[list[dict], str]:
    """Ten answers in the official annotation format (answer, answer_confidence, answer_id), and
    the question's ``multiple_choice_answer``."""
    wrong = [a for a in space if a != answer]
    given = _answers(answer, wrong, rng)
    annotations = []
    for answer_id, text in enumerate(given, start=1):
        weights = (0.85, 0.12, 0.03) if text == answer else (0.5, 0.35, 0.15)
        confidence = rng.choices(("yes", "maybe", "no"), weights)[0]
        annotations.append(
            {"answer": text, "answer_confidence": confidence, "answer_id": answer_id}
        )
    return annotations, official_answer(given, answer)
