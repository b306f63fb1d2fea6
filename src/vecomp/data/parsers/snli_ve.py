"""SNLI-VE: ``snli_ve_{train,dev,test}.jsonl``; the Flickr30k image is the premise.

``sentence1`` (the SNLI text premise) is deliberately not kept: the task is to judge the
hypothesis against the image.
"""

from __future__ import annotations

from ..registry import get_task
from . import Parsed, member, missing_keys, read_jsonl, register

LABELS = get_task("snli_ve").labels


@register("snli_ve")
def parse(files) -> Parsed:
    parsed = Parsed()
    for split in ("train", "dev", "test"):
        path = member(files, f"snli_ve/snli_ve_{split}.jsonl")
        for line, record, error in read_jsonl(path):
            where = f"{path.name}:{line}"
            problem = error or missing_keys(
                record, ("Flickr30K_ID", "sentence2", "gold_label", "pairID")
            )
            if problem is None and record["gold_label"] not in LABELS:
                problem = f"gold_label {record['gold_label']!r} is not one of {', '.join(LABELS)}"
            if problem:
                parsed.bad(split, where, problem)
                continue
            parsed.add(split, {
                "sample_id": record["pairID"],
                "image_id": str(record["Flickr30K_ID"]),
                "text": record["sentence2"],
                "answer": record["gold_label"],
            })  # fmt: skip
    return parsed
