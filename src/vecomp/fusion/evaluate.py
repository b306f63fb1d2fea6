"""Evaluation of a trained task model on one split, with any of its encoders masked.

``evaluate(model, data, split, kept)`` returns ``(metrics, predictions)``: the task's official
metrics (``vecomp.metrics.tasks``) in percent and one prediction row per sample (per query for
retrieval). ``EVALUATORS`` maps each task kind (``vecomp.kinds``) to its evaluator.

Retrieval scores every (image, caption) pair of the split with the matching head, or, with
``rerank_top_k = k``, only each query's top-k candidates under the contrastive projections (the
rest keep their contrastive score, ranked below every reranked candidate).
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd
import torch

from ..errors import VecompError
from ..metrics.tasks import accuracy, nlvr2_consistency, retrieval_recall, vqa_score
from .data import TaskData, index_rows, to_device
from .heads import TaskModel

RERANKED = 1e4  # added (in float64) to reranked scores: above every shortlisted-out pair


def kept_subsets(encoders) -> list[tuple[str, ...]]:
    """Every non-empty subset of a model's encoders, largest first (the full set first)."""
    return [c for k in range(len(encoders), 0, -1) for c in combinations(encoders, k)]


def _keep_tensor(model: TaskModel, kept, size: int) -> torch.Tensor:
    row = torch.tensor([name in kept for name in model.config.encoders])
    return row.expand(size, -1)


@torch.no_grad()
def _logits(model, data: TaskData, split: str, kept, batch_size: int, device) -> torch.Tensor:
    outputs = []
    for batch in data.batches(split, batch_size):
        batch = to_device(batch, device)
        size = batch["text"]["mask"].shape[0]
        outputs.append(model(batch, _keep_tensor(model, kept, size).to(device)).float().cpu())
    return torch.cat(outputs)


def _evaluate_vqa(model, data, split, kept, batch_size, device, **_):
    frame = data.split(split)
    predicted = _logits(model, data, split, kept, batch_size, device).argmax(-1)
    answers = [data.labels[i] for i in predicted.tolist()]
    metrics = vqa_score(
        answers, list(frame["answers"]), list(frame["answer_type"]), **data.metric_options
    )
    return metrics, pd.DataFrame({"sample_id": frame["sample_id"], "prediction": answers})


def _evaluate_classification(model, data, split, kept, batch_size, device, **_):
    frame = data.split(split)
    predicted = _logits(model, data, split, kept, batch_size, device).argmax(-1).tolist()
    metrics = {"accuracy": accuracy(predicted, frame["label"].tolist())}
    labels = [data.labels[i] for i in predicted]
    return metrics, pd.DataFrame({"sample_id": frame["sample_id"], "prediction": labels})


def _evaluate_pair(model, data, split, kept, batch_size, device, **_):
    """Accuracy, and NLVR2's consistency: the share of statements right on all their pairs."""
    metrics, predictions = _evaluate_classification(model, data, split, kept, batch_size, device)
    frame = data.split(split)
    correct = predictions["prediction"].map(data.labels.index) == frame["label"]
    metrics["consistency"] = nlvr2_consistency(list(frame["group_id"]), list(correct))
    return metrics, predictions


@torch.no_grad()
def _evaluate_retrieval(model, data, split, kept, batch_size, device, rerank_top_k=None):
    frame = data.split(split)
    images = sorted(frame["image_id"].unique())
    text_to_image = pd.Index(images).get_indexer(frame["image_id"])
    text_rows = data.text.rows_of(frame["text"])
    visual = data.visual.batch(images)
    text = data.text.get_batch(text_rows)
    scores, scored = _shortlist(model, text, visual, kept, rerank_top_k, device, batch_size)
    pairs = _by_caption_length(scored.nonzero(), data.text.lengths[text_rows])  # [P, 2]
    matched = []
    for image, txt in (chunk.T for chunk in pairs.split(batch_size)):
        batch = {"text": data.text.get_batch(text_rows[txt]), "visual": index_rows(visual, image)}
        keep = _keep_tensor(model, kept, len(txt)).to(device)
        matched.append(model(to_device(batch, device), keep).float().cpu())
    if matched:
        scores[pairs[:, 0], pairs[:, 1]] = torch.cat(matched).double() + RERANKED
    metrics = retrieval_recall(scores, text_to_image.tolist())
    own = scores[text_to_image, range(len(frame))]
    ranks = (scores >= own).sum(0) - 1  # text -> image, ties against the query as in the metric
    predictions = pd.DataFrame(
        {
            "sample_id": frame["sample_id"],
            "image_rank": ranks.numpy(),
            "image_id": frame["image_id"],
        }
    )
    return metrics, predictions


def _by_caption_length(pairs: torch.Tensor, caption_lengths: torch.Tensor) -> torch.Tensor:
    """``(image, text)`` pairs ordered by their caption's length, so that each batch of the
    matching head is padded only to its own longest caption (a third of the retrieval
    evaluation's tokens were padding: ``bench/README.md``)."""
    return pairs[caption_lengths[pairs[:, 1]].argsort(stable=True)]


def _shortlist(model, text, visual, kept, top_k, device, batch_size):
    """Starting scores [images, texts] (float64) and which pairs the matching head must score."""
    n_images, n_texts = visual[next(iter(visual))]["tokens"].shape[0], text["mask"].shape[0]
    if top_k is None or top_k >= min(n_images, n_texts):
        everything = torch.ones(n_images, n_texts, dtype=torch.bool)
        return torch.zeros(n_images, n_texts, dtype=torch.float64), everything
    keep = _keep_tensor(model, kept, n_images)

    def embed_texts(rows):
        return model.text_embedding(to_device(index_rows(text, rows), device))

    def embed_images(rows):
        return model.image_embedding(to_device(index_rows(visual, rows), device), keep[rows])

    texts = _in_chunks(embed_texts, n_texts, batch_size)
    images = _in_chunks(embed_images, n_images, batch_size)
    similarity = (images @ texts.T).double()
    scored = torch.zeros_like(similarity, dtype=torch.bool)
    scored.scatter_(1, similarity.topk(top_k, dim=1).indices, True)  # image -> texts
    scored.scatter_(0, similarity.topk(top_k, dim=0).indices, True)  # text -> images
    return similarity, scored


def _in_chunks(embed, n: int, batch_size: int) -> torch.Tensor:
    return torch.cat([embed(rows).float().cpu() for rows in torch.arange(n).split(batch_size)])


EVALUATORS = {
    "vqa": _evaluate_vqa,
    "classification": _evaluate_classification,
    "pair": _evaluate_pair,
    "retrieval": _evaluate_retrieval,
}


def evaluate(model, data: TaskData, split: str, kept=None, batch_size=256, device="cpu", **options):
    """Metrics and predictions of ``model`` on ``split``, keeping only the ``kept`` encoders."""
    was_training = model.training
    model.eval()
    kept = tuple(model.config.encoders) if kept is None else tuple(kept)
    unknown = sorted(set(kept) - set(model.config.encoders))
    if unknown or not kept:
        raise VecompError(
            f"kept encoders {list(kept)} must be a non-empty subset of the model's "
            f"{list(model.config.encoders)}"
        )
    try:
        return EVALUATORS[data.kind](model, data, split, kept, batch_size, device, **options)
    finally:
        model.train(was_training)
