"""Text-only baselines: how far each task can be solved without looking at the image.

For every classification task, on the test split:
- ``chance``: the expected score of guessing uniformly among the answers train shows for the
  item's question type (VQAv2 ``question_type``, GQA ``detailed`` type; the whole label set for
  NLVR2 and SNLI-VE). Under VQA accuracy a wrong guess still earns credit from annotators who
  gave it, so VQAv2's chance sits above 1/|answers|;
- ``majority``: the most frequent train answer of the item's question type;
- ``text_only``: the most frequent train answer for the item's exact text (falling back to the
  type's majority for texts never seen in train) -- the strongest rule that ignores the image.
VQAv2 is scored with VQA accuracy against the ten answers (with the metric options its
``labels.json`` records), the rest with exact match (x100).

For every retrieval task, ``chance``: the expected rSum of a uniformly random ranking of the
test split (no rule can rank images without them), under the hit rule of
``vecomp.metrics.tasks.retrieval_recall``: a text's query hits at K when its image is among the
first K of N images (K/N); an image's query when any of its m captions is among the first K of
T texts (1 - C(T-m, K) / C(T, K)).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from math import comb
from pathlib import Path

import pandas as pd

from ..io import write_json
from ..kinds import get_kind
from ..metrics.tasks import RECALL_AT
from ..metrics.vqa import vqa_accuracy
from .registry import get_task

TYPE_COLUMN = {"vqav2": "question_type", "gqa": "detailed"}


def _most_frequent(answers: pd.Series) -> str:
    counts = Counter(answers)
    return min(counts, key=lambda a: (-counts[a], a))  # ties: alphabetical, reproducible


def _item_scores(task: str, guess: list[str], test: pd.DataFrame, metric: dict) -> list[float]:
    """Score in [0, 1] of one guess per test item under the task's metric."""
    if get_kind(get_task(task).kind).target == "answers":
        answers = test["answers"]
        return [vqa_accuracy(g, a, **metric) for g, a in zip(guess, answers, strict=True)]
    return [float(g == a) for g, a in zip(guess, test["answer"], strict=True)]


def _percent(scores: list[float]) -> float:
    return round(100 * sum(scores) / len(scores), 2)


def _chance(task: str, options: list[list[str]], test: pd.DataFrame, metric: dict) -> float:
    """Mean over items of the mean score over that item's answer options."""
    per_item = [0.0] * len(test)
    for k in range(max(map(len, options))):
        guess = [opts[k] if k < len(opts) else "" for opts in options]
        for i, s in enumerate(_item_scores(task, guess, test, metric)):
            if k < len(options[i]):
                per_item[i] += s / len(options[i])
    return _percent(per_item)


def text_baselines(
    task: str, train: pd.DataFrame, test: pd.DataFrame, metric: dict | None = None
) -> dict[str, float]:
    metric = metric or {}
    column = TYPE_COLUMN.get(task)
    train_type = train[column] if column else pd.Series("all", index=train.index)
    test_type = test[column] if column else pd.Series("all", index=test.index)
    by_type = train.groupby(train_type)["answer"]
    type_majority = by_type.agg(_most_frequent).to_dict()
    type_answers = by_type.agg(lambda a: sorted(set(a))).to_dict()
    by_text = train.groupby("text")["answer"].agg(_most_frequent).to_dict()
    overall = _most_frequent(train["answer"])
    majority = [type_majority.get(t, overall) for t in test_type]
    text_only = [by_text.get(q, m) for q, m in zip(test["text"], majority, strict=True)]
    options = [type_answers.get(t, [overall]) for t in test_type]
    return {
        "chance": _chance(task, options, test, metric),
        "majority": _percent(_item_scores(task, majority, test, metric)),
        "text_only": _percent(_item_scores(task, text_only, test, metric)),
        "test_samples": len(test),
    }


def random_ranking_rsum(test: pd.DataFrame, ks: tuple[int, ...] = RECALL_AT) -> dict:
    """Expected Recall@K of a random ranking in both directions, summed (one row per caption,
    ``image_id`` its image)."""
    captions = test.groupby("image_id").size().to_numpy()
    n_images, n_texts = len(captions), len(test)
    text_to_image = [min(1.0, k / n_images) for k in ks]
    image_to_text = [
        sum(_any_in_first(k, int(m), n_texts) for m in captions) / n_images for k in ks
    ]
    return {
        "chance": round(100 * (sum(text_to_image) + sum(image_to_text)), 2),
        "test_samples": n_texts,
    }


def _any_in_first(k: int, m: int, n: int) -> float:
    """Probability that a random order of ``n`` items has one of ``m`` marked ones in its first
    ``k``."""
    k = min(k, n)
    return 1 - comb(n - m, k) / comb(n, k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp baselines", description=__doc__)
    parser.add_argument(
        "--prepared",
        type=Path,
        nargs="+",
        required=True,
        help="prepared task folders",
    )
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")
    args = parser.parse_args(argv)
    results = {}
    for folder in args.prepared:
        task = folder.name
        test = pd.read_parquet(folder / "test.parquet")
        if not get_kind(get_task(task).kind).has_labels:
            results[task] = random_ranking_rsum(test)
            print(task, results[task])
            continue
        train = pd.read_parquet(folder / "train.parquet")
        metric = json.loads((folder / "labels.json").read_text()).get("metric", {})
        results[task] = text_baselines(task, train, test, metric)
        print(task, results[task])
    write_json(args.out, results)
    return 0
