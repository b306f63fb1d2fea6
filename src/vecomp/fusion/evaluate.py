"""Evaluation of a trained task model on one split, with any of its encoders masked.

``evaluate(model, data, split, kept)`` returns ``(metrics, predictions)``: the task's official
metrics (``vecomp.metrics.tasks``) in percent and one prediction row per sample (per query for
retrieval). ``EVALUATORS`` maps each task kind to its evaluator; ``HEADLINE`` names the metric
used for model selection on dev.

Retrieval scores every (image, caption) pair of the split with the matching head, or, with
``rerank_top_k = k``, only each query's top-k candidates under the contrastive projections (the
rest keep their contrastive score, ranked below every reranked candidate).
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd
import torch

from ..metrics.tasks import accuracy, nlvr2_consistency, retrieval_recall, vqa_score
from .data import TaskData
from .heads import TaskModel

HEADLINE = {
    "vqa": "accuracy",
    "classification": "accuracy",
    "pair": "accuracy",
    "retrieval": "rsum",
}
RERANKED = 1e4  # added to reranked scores so that they rank above every shortlisted-out pair


def kept_subsets(encoders) -> list[tuple[str, ...]]:
    """Every non-empty subset of a model's encoders, largest first (the full set first)."""
    return [c for k in range(len(encoders), 0, -1) for c in combinations(encoders, k)]


def _keep_tensor(model: TaskModel, kept, size: int) -> torch.Tensor:
    row = torch.tensor([name in kept for name in model.config.encoders])
    return row.expand(size, -1)


def _to(batch, device):
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch.to(device)


@torch.no_grad()
def _logits(model, data: TaskData, split: str, kept, batch_size: int, device) -> torch.Tensor:
    outputs = []
    for batch in data.batches(split, batch_size):
        batch = _to(batch, device)
        size = batch["text"]["tokens"].shape[0]
        outputs.append(model(batch, _keep_tensor(model, kept, size).to(device)).float().cpu())
    return torch.cat(outputs)


def _evaluate_vqa(model, data, split, kept, batch_size, device, **_):
    frame = data.split(split)
    predicted = _logits(model, data, split, kept, batch_size, device).argmax(-1)
    answers = [data.labels[i] for i in predicted.tolist()]
    metrics = vqa_score(answers, list(frame["answers"]), list(frame["answer_type"]))
    return metrics, pd.DataFrame({"sample_id": frame["sample_id"], "prediction": answers})


def _evaluate_classification(model, data, split, kept, batch_size, device, **_):
    frame = data.split(split)
    predicted = _logits(model, data, split, kept, batch_size, device).argmax(-1).tolist()
    metrics = {"accuracy": accuracy(predicted, frame["label"].tolist())}
    if data.kind == "pair":
        correct = [p == g for p, g in zip(predicted, frame["label"], strict=True)]
        metrics["consistency"] = nlvr2_consistency(list(frame["group_id"]), correct)
    labels = [data.labels[i] for i in predicted]
    return metrics, pd.DataFrame({"sample_id": frame["sample_id"], "prediction": labels})


@torch.no_grad()
def _evaluate_retrieval(model, data, split, kept, batch_size, device, rerank_top_k=None):
    frame = data.split(split)
    images = sorted(frame["image_id"].unique())
    text_to_image = pd.Index(images).get_indexer(frame["image_id"])
    text = data.text.get_batch(data.text.rows_of(frame["text"]))
    visual = data.visual.batch(images)
    scores, scored = _shortlist(model, text, visual, kept, rerank_top_k, device)
    pairs = scored.nonzero()  # [P, 2] (image, text)
    matched = []
    for start in range(0, len(pairs), batch_size):
        image, txt = pairs[start : start + batch_size].T
        batch = _to({"text": _rows(text, txt), "visual": _rows(visual, image)}, device)
        matched.append(model(batch, _keep_tensor(model, kept, len(txt)).to(device)).float().cpu())
    if matched:
        scores[scored] = torch.cat(matched) + RERANKED
    metrics = retrieval_recall(scores, text_to_image.tolist())
    ranks = (scores > scores[text_to_image, range(len(frame))]).sum(0)  # text -> image rank
    predictions = pd.DataFrame(
        {
            "sample_id": frame["sample_id"],
            "image_rank": ranks.numpy(),
            "image_id": frame["image_id"],
        }
    )
    return metrics, predictions


def _shortlist(model, text, visual, kept, top_k, device):
    """Starting scores [images, texts] and which pairs the matching head must score."""
    n_images, n_texts = visual[next(iter(visual))]["tokens"].shape[0], text["tokens"].shape[0]
    if top_k is None or top_k >= min(n_images, n_texts):
        return torch.zeros(n_images, n_texts), torch.ones(n_images, n_texts, dtype=torch.bool)
    text_embedding, _ = model.embeddings(
        _to(
            {"text": text, "visual": _rows(visual, torch.zeros(n_texts, dtype=torch.long))}, device
        ),
        _keep_tensor(model, kept, n_texts).to(device),
    )
    _, image_embedding = model.embeddings(
        _to(
            {"text": _rows(text, torch.zeros(n_images, dtype=torch.long)), "visual": visual}, device
        ),
        _keep_tensor(model, kept, n_images).to(device),
    )
    similarity = (image_embedding @ text_embedding.T).float().cpu()
    scored = torch.zeros_like(similarity, dtype=torch.bool)
    scored.scatter_(1, similarity.topk(top_k, dim=1).indices, True)  # image -> texts
    scored.scatter_(0, similarity.topk(top_k, dim=0).indices, True)  # text -> images
    return similarity, scored


def _rows(batch, index: torch.Tensor):
    if isinstance(batch, dict):
        return {k: _rows(v, index) for k, v in batch.items()}
    return batch[index]


EVALUATORS = {
    "vqa": _evaluate_vqa,
    "classification": _evaluate_classification,
    "pair": _evaluate_classification,
    "retrieval": _evaluate_retrieval,
}


def evaluate(model, data: TaskData, split: str, kept=None, batch_size=256, device="cpu", **options):
    """Metrics and predictions of ``model`` on ``split``, keeping only the ``kept`` encoders."""
    was_training = model.training
    model.eval()
    kept = tuple(model.config.encoders) if kept is None else tuple(kept)
    try:
        return EVALUATORS[data.kind](model, data, split, kept, batch_size, device, **options)
    finally:
        model.train(was_training)
