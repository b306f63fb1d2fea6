"""Karpathy splits (``dataset_coco.json``, ``dataset_flickr30k.json`` in caption_datasets.zip).

One record per caption. ``restval`` joins train, as is standard; ``val`` is dev.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from . import Parsed, field_problem, member, register, stream_items

SPLITS = {"train": "train", "restval": "train", "val": "dev", "test": "test"}


def _image_id(image: dict) -> str:
    if "cocoid" in image:
        return str(image["cocoid"])
    return PurePosixPath(image["filename"]).stem


def _parse(files, dataset: str) -> Parsed:
    path = member(files, "karpathy/caption_datasets.zip", f"dataset_{dataset}.json")
    parsed = Parsed()
    for i, image in enumerate(stream_items(path, "images")):  # ~170 MB for COCO: streamed
        where = f"{path.name}[images][{i}]"
        if not isinstance(image, dict):
            parsed.bad("train", where, "not a JSON object")
            continue
        split = SPLITS.get(image.get("split"))
        if split is None:
            parsed.bad("train", where, f"split {image.get('split')!r} is not one of {list(SPLITS)}")
            continue
        if "filename" not in image or not image.get("sentences"):
            parsed.bad(split, where, "missing filename or sentences")
            continue
        for sentence in image["sentences"]:
            problem = (
                field_problem(sentence, ("raw", "sentid"), text=("raw",))
                if isinstance(sentence, dict)
                else "a sentence that is not a JSON object"
            )
            if problem:
                parsed.bad(split, where, f"sentence: {problem}")
                continue
            parsed.add(
                split,
                {
                    "sample_id": str(sentence["sentid"]),
                    "image_id": _image_id(image),
                    "text": sentence["raw"].strip(),
                },
            )
    return parsed


@register("coco_retrieval")
def parse_coco(files) -> Parsed:
    return _parse(files, "coco")


@register("flickr30k_retrieval")
def parse_flickr30k(files) -> Parsed:
    return _parse(files, "flickr30k")
