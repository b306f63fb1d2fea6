"""Ten simulated VQA annotators per question, disagreeing the way people do.

Most write the right answer in their own words ("2", "two", "Yes", "a circle", "red."), which the
official answer normalisation must undo; some answer wrongly, more often on hard questions.
"""

from __future__ import annotations

import random

from .words import NUMBER_WORDS, article

N_ANNOTATORS = 10


def _surface(answer: str, rng: random.Random) -> str:
    """One person's way of writing a correct answer."""
    if answer.isdigit() and rng.random() < 0.25:
        return NUMBER_WORDS[int(answer)]
    roll = rng.random()
    if roll < 0.1:
        return answer.capitalize()
    if roll < 0.15:
        return answer + "."
    if roll < 0.2 and not answer.isdigit() and answer not in ("yes", "no"):
        return f"the {answer}" if rng.random() < 0.5 else f"{article(answer)} {answer}"
    return answer


def annotate(answer: str, space: tuple[str, ...], rng: random.Random) -> list[dict]:
    """Ten answers in the official annotation format (answer, answer_confidence, answer_id)."""
    p_correct = rng.uniform(0.7, 1.0)
    wrong = [a for a in space if a != answer]
    answers = []
    for answer_id in range(1, N_ANNOTATORS + 1):
        correct = rng.random() < p_correct or not wrong
        given = _surface(answer if correct else rng.choice(wrong), rng)
        confidence = rng.choices(("yes", "maybe", "no"), (0.85, 0.12, 0.03) if correct else
                                 (0.5, 0.35, 0.15))[0]  # fmt: skip
        answers.append({"answer": given, "answer_confidence": confidence, "answer_id": answer_id})
    return answers
