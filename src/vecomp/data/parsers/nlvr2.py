"""NLVR2: jsonl files ``train.json``, ``dev.json``, ``test1.json``.

The identifier ``{split}-{set}-{pair}-{sentence}`` names the image pair: its images are
``{split}-{set}-{pair}-img0`` (left) and ``-img1`` (right). ``group_id`` blanks the pair so that
consistency (every pair of one sentence right) can be computed later.
"""

from __future__ import annotations

from ..registry import get_task
from . import Parsed, field_problem, member, read_jsonl, register

SPLIT_FILES = {"train": "train.json", "dev": "dev.json", "test": "test1.json"}
LABELS = get_task("nlvr2").labels


def pair_images(identifier: str) -> tuple[str, str]:
    split, set_id, pair_id, _sentence = identifier.rsplit("-", 3)
    stem = f"{split}-{set_id}-{pair_id}"
    return f"{stem}-img0", f"{stem}-img1"


def group_id(identifier: str) -> str:
    split, set_id, _pair, sentence = identifier.rsplit("-", 3)
    return f"{split}-{set_id}-*-{sentence}"


@register("nlvr2")
def parse(files) -> Parsed:
    parsed = Parsed()
    for split, name in SPLIT_FILES.items():
        path = member(files, f"nlvr2/{name}")
        for line, record, error in read_jsonl(path):
            where = f"{name}:{line}"
            problem = error or field_problem(
                record, ("identifier", "sentence", "label"), text=("identifier", "sentence")
            )
            if problem is None and str(record["label"]) not in LABELS:
                problem = f"label {record['label']!r} is not one of {', '.join(LABELS)}"
            if problem is None and record["identifier"].count("-") < 3:
                problem = f"identifier {record['identifier']!r} is not split-set-pair-sentence"
            if problem:
                parsed.bad(split, where, problem)
                continue
            left, right = pair_images(record["identifier"])
            parsed.add(
                split,
                {
                    "sample_id": record["identifier"],
                    "image_id": left,
                    "image_id_2": right,
                    "text": record["sentence"],
                    "answer": str(record["label"]),
                    "group_id": group_id(record["identifier"]),
                },
            )
    return parsed
