"""GQA balanced questions: ``{train,val,testdev}_balanced_questions.json`` in questions1.2.zip.

``train_balanced_questions.json`` is ~1.4 GB of JSON (943k questions, each with its program and
annotations): it is streamed question by question, keeping only each record, whose repeated
strings are interned (``bench/prepare_memory.py`` measures the peak).
"""

from __future__ import annotations

import sys

from . import Parsed, field_problem, member, register, stream_members

SPLIT_FILES = {"train": "train", "dev": "val", "test": "testdev"}
FIELDS = ("imageId", "question", "answer")  # required, and text


def _shared(value) -> str:
    """One copy of each of the many repeated strings (answers, types, image ids)."""
    return sys.intern(str(value))


@register("gqa")
def parse(files) -> Parsed:
    parsed = Parsed()
    for split, name in SPLIT_FILES.items():
        path = member(files, "gqa/questions1.2.zip", f"{name}_balanced_questions.json")
        for qid, q in stream_members(path):
            where = f"{path.name}[{qid!r}]"
            problem = (
                "not a JSON object"
                if not isinstance(q, dict)
                else field_problem(q, FIELDS, text=FIELDS)
            )
            if problem:
                parsed.bad(split, where, problem)
                continue
            types = q.get("types")
            if not isinstance(types, dict):
                types = {}
            parsed.add(
                split,
                {
                    "sample_id": qid,
                    "image_id": _shared(q["imageId"]),
                    "text": q["question"],
                    "answer": _shared(q["answer"]),
                    "structural": _shared(types.get("structural", "")),
                    "semantic": _shared(types.get("semantic", "")),
                    "detailed": _shared(types.get("detailed", "")),
                },
            )
    return parsed
