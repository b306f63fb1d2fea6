"""SNLI-VE: ``snli_ve_{train,dev,test}.jsonl``; the Flickr30k image is the premise.

The image id comes in two spellings, both accepted: the original necla-ml/SNLI-VE generator
(before April 2020) wrote ``"Flikr30kID": "2248275918.jpg"`` (sic, with the file extension),
its later versions and most copies ``"Flickr30K_ID": "2248275918"``. Either becomes the Flickr30k
image id without extension. ``sentence1`` (the SNLI text premise) is deliberately not kept: the
task is to judge the hypothesis against the image.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ..registry import get_task
from . import Parsed, field_problem, member, read_jsonl, register

LABELS = get_task("snli_ve").labels
IMAGE_KEYS = ("Flickr30K_ID", "Flikr30kID")  # later generator, original generator (sic)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_id(record: dict) -> str | None:
    """The Flickr30k image id under either key, without a file extension."""
    value = next((record[k] for k in IMAGE_KEYS if record.get(k) is not None), None)
    if value is None:
        return None
    path = PurePosixPath(str(value))
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else str(value)


@register("snli_ve")
def parse(files) -> Parsed:
    parsed = Parsed()
    for split in ("train", "dev", "test"):
        path = member(files, f"snli_ve/snli_ve_{split}.jsonl")
        for line, record, error in read_jsonl(path):
            where = f"{path.name}:{line}"
            problem = error or field_problem(
                record, ("sentence2", "gold_label", "pairID"), text=("sentence2", "pairID")
            )
            if problem is None and image_id(record) is None:
                problem = f"missing field(s) {' or '.join(IMAGE_KEYS)}"
            if problem is None and record["gold_label"] not in LABELS:
                problem = f"gold_label {record['gold_label']!r} is not one of {', '.join(LABELS)}"
            if problem:
                parsed.bad(split, where, problem)
                continue
            parsed.add(
                split,
                {
                    "sample_id": record["pairID"],
                    "image_id": image_id(record),
                    "text": record["sentence2"],
                    "answer": record["gold_label"],
                },
            )
    return parsed
