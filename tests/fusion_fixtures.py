"""Toy tasks for the fusion tests: prepared tables, a text store and feature stores, all tiny.

Each image has two binary attributes, ``a`` and ``b``. Encoder ``sees_a`` carries ``a`` in its
tokens, encoder ``sees_b`` carries ``b``, encoder ``noise`` carries nothing. A question asks
about one attribute ("what is a?" / "what is b?") and its answer is that attribute, so a model
must read the right encoder for the right question: a separable toy with planted
complementarity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from vecomp.features.store import StoreWriter
from vecomp.fusion.text import write_text_store

ENCODERS = ("sees_a", "sees_b", "noise")
DIM, TEXT_DIM, TOKENS = 8, 6, 4
QUESTIONS = {"what is a?": "a", "what is b?": "b"}
SPLITS = {"train": 256, "dev": 64, "test": 64}


def _attributes(n_images: int) -> torch.Tensor:
    """Balanced and independent: a = i mod 2, b = (i div 2) mod 2."""
    i = torch.arange(n_images)
    return torch.stack([i % 2, i // 2 % 2], 1)


def write_stores(root: Path, image_ids: list[str], attributes: torch.Tensor) -> dict[str, Path]:
    generator = torch.Generator().manual_seed(1)
    stores = {}
    for e, name in enumerate(ENCODERS):
        folder = root / "features" / name
        with StoreWriter(folder, DIM, images_per_shard=64, info={"encoder": name}) as writer:
            for i, image_id in enumerate(image_ids):
                tokens = torch.randn(TOKENS, DIM, generator=generator) * 0.3
                if e < 2:  # the attribute as the sign of the first dimension of every token
                    tokens[:, 0] += 2.0 * attributes[i, e] - 1.0
                cells = torch.arange(TOKENS)
                boxes = torch.stack(
                    [cells % 2 / 2, cells // 2 / 2, cells % 2 / 2 + 0.5, cells // 2 / 2 + 0.5], 1
                ).float()
                writer.add(image_id, tokens, boxes)
        stores[name] = folder
    return stores


def write_texts(root: Path, texts: list[str]) -> Path:
    hidden = torch.randn(len(texts), 3, TEXT_DIM, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([2 + i % 2 for i in range(len(texts))])
    hidden[0::2, 2] = 0  # the shorter (even) texts are zero-padded
    rows = {"hidden": hidden.half()}
    return write_text_store(root / "text", texts, rows, lengths, {"model": "toy"})


def _rows(kind: str, split: str, n: int, image_ids: list[str], attributes) -> pd.DataFrame:
    rows = []
    for k in range(n):
        i, q = k % len(image_ids), k // len(image_ids) % 2  # each image gets both questions
        question = list(QUESTIONS)[q]
        value = int(attributes[i, q])
        rows.append({"sample_id": f"{split}-{k}", "image_id": image_ids[i], "text": question})
        if kind == "vqa":
            answer = ["no", "yes"][value]
            rows[-1] |= {
                "answers": [answer] * 9 + ["no" if value else "yes"],
                "answer": answer,
                "answer_type": "yes/no",
                "question_type": "is",
                "target_ids": [value, 1 - value],
                "target_scores": [1.0, 0.3],
            }
        elif kind == "pair":
            j = (i + 1) % len(image_ids)
            label = int(attributes[i, q] == 1 and attributes[j, q] == 1)
            rows[-1] |= {
                "image_id_2": image_ids[j],
                "label": label,
                "answer": ["False", "True"][label],
                "group_id": f"{split}-{k // 2}-*",
            }
        elif kind == "classification":
            rows[-1] |= {"label": value, "answer": ["zero", "one"][value]}
    return pd.DataFrame(rows)


CAPTIONS = ["a zero b zero", "a zero b one", "a one b zero", "a one b one"]
LABELS = {"vqa": ["no", "yes"], "classification": ["zero", "one"], "pair": ["False", "True"]}


def _retrieval_rows(split: str, image_ids: list[str], attributes) -> pd.DataFrame:
    rows = []
    for i, image_id in enumerate(image_ids):
        caption = CAPTIONS[int(attributes[i, 0]) * 2 + int(attributes[i, 1])]
        for c in range(2):
            rows.append({"sample_id": f"{split}-{i}-{c}", "image_id": image_id, "text": caption})
    return pd.DataFrame(rows)


def toy_task(root: Path, task: str = "gqa", kind: str = "classification") -> dict:
    """Write a toy task under ``root``; returns the paths ``vecomp train`` needs."""
    n_images = 96
    image_ids = [f"img{i}" for i in range(n_images)]
    attributes = _attributes(n_images)
    prepared = root / "prepared" / task
    prepared.mkdir(parents=True)
    texts = set()
    offsets = {"train": (0, 64), "dev": (64, 80), "test": (80, 96)}
    for split, n in SPLITS.items():
        lo, hi = offsets[split]
        ids, attrs = image_ids[lo:hi], attributes[lo:hi]
        if kind == "retrieval":
            frame = _retrieval_rows(split, ids, attrs)
        else:
            frame = _rows(kind, split, n, ids, attrs)
        frame.to_parquet(prepared / f"{split}.parquet", index=False)
        texts |= set(frame["text"])
    labels = {"labels": LABELS.get(kind, []), "task": task}
    (prepared / "labels.json").write_text(json.dumps(labels))
    return {
        "prepared": prepared,
        "text": write_texts(root, sorted(texts)),
        "stores": write_stores(root, image_ids, attributes),
    }
