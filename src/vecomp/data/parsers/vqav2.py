"""VQAv2: ``v2_OpenEnded_mscoco_{sub}_questions.json`` + ``v2_mscoco_{sub}_annotations.json``.

train2014 is the training split. The official test split is scored only by the evaluation
server, so val2014 is divided by image into dev and test halves (a stable hash of the image id),
as offline VQAv2 studies do; no image lies in both.

A question's label is its annotation's ``multiple_choice_answer`` (the official most frequent
answer, which breaks ties its own way), normalised as the literature's answer vocabularies are;
annotations without one fall back to the most frequent normalised answer. The ten ``answers``
are kept as released, for soft-score targets and VQA accuracy.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

from ...metrics.vqa import majority_answer, normalize_answer
from . import Parsed, field_problem, member, register, stream_items

QUESTIONS = "vqav2/v2_Questions_{}_mscoco.zip"
ANNOTATIONS = "vqav2/v2_Annotations_{}_mscoco.zip"


def val_half(image_id: str) -> str:
    """dev or test for a val2014 image, stable across runs and machines."""
    return "dev" if hashlib.sha1(image_id.encode()).digest()[0] % 2 == 0 else "test"


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _label(annotation: dict, answers: list[str]) -> str:
    official = annotation.get("multiple_choice_answer")
    return normalize_answer(official) if official is not None else majority_answer(answers)


@dataclass(frozen=True, slots=True)
class Annotated:
    """What a question's record takes from its annotation (the annotations file is ~350 MB of
    JSON: each is read, checked and reduced to this as it streams by)."""

    answers: list[str]
    label: str
    question_type: str
    answer_type: str


def _annotated(ann) -> Annotated | str:
    """An annotation reduced to what the records need, or why it cannot be used."""
    problem = (
        "its annotation is not a JSON object"
        if not isinstance(ann, dict)
        else field_problem(ann, ("answers", "answer_type", "question_type"))
    )
    if problem is None and (not isinstance(ann["answers"], list) or not ann["answers"]):
        problem = "'answers' is empty" if ann["answers"] == [] else "'answers' is not a list"
    if problem is None and not all(isinstance(a, dict) and "answer" in a for a in ann["answers"]):
        problem = "an entry of 'answers' has no 'answer'"
    if problem is None and not _is_text(ann.get("multiple_choice_answer", "-")):
        problem = "'multiple_choice_answer' is not a non-empty string"
    if problem:
        return problem
    answers = [sys.intern(str(a["answer"])) for a in ann["answers"]]
    label, types = _label(ann, answers), (ann["question_type"], ann["answer_type"])
    return Annotated(answers, sys.intern(label), *(sys.intern(str(t)) for t in types))


def _annotations(path) -> dict:
    """{question_id: Annotated or the reason it cannot be used}, streamed."""
    return {
        ann.get("question_id") if isinstance(ann, dict) else None: _annotated(ann)
        for ann in stream_items(path, "annotations")
    }


@register("vqav2")
def parse(files) -> Parsed:
    parsed = Parsed()
    for part, sub in (("Train", "train2014"), ("Val", "val2014")):
        q_path = member(files, QUESTIONS.format(part), f"v2_OpenEnded_mscoco_{sub}_questions.json")
        a_path = member(files, ANNOTATIONS.format(part), f"v2_mscoco_{sub}_annotations.json")
        annotations = _annotations(a_path)
        for i, q in enumerate(stream_items(q_path, "questions")):
            where = f"{q_path.name}[{i}]"
            if not isinstance(q, dict):
                parsed.bad("train" if sub == "train2014" else "test", where, "not a JSON object")
                continue
            split = "train" if sub == "train2014" else val_half(str(q.get("image_id")))
            problem = field_problem(q, ("question_id", "image_id", "question"), text=("question",))
            ann = annotations.get(q.get("question_id"))
            if problem is None and ann is None:
                problem = f"question_id {q['question_id']} has no annotation in {a_path.name}"
            if problem is None and isinstance(ann, str):
                problem = ann
            if problem:
                parsed.bad(split, where, problem)
                continue
            parsed.add(
                split,
                {
                    "sample_id": str(q["question_id"]),
                    "image_id": str(q["image_id"]),
                    "text": q["question"],
                    "answers": ann.answers,
                    "answer": ann.label,
                    "question_type": ann.question_type,
                    "answer_type": ann.answer_type,
                },
            )
    return parsed
