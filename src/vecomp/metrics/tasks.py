"""The official evaluation metrics of the V+L tasks, as pure functions returning percentages.

- ``accuracy``: exact-match accuracy of class indices (GQA, SNLI-VE, NLVR2).
- ``nlvr2_consistency``: NLVR2 consistency as in lil-lab/nlvr (``nlvr2/eval/metrics.py``): the
  share of unique sentences for which every example of that sentence is classified correctly. An
  example's group is its identifier with the pair-id field blanked (``dev-850-0-0`` and
  ``dev-850-1-0`` share a sentence); callers pass that group id.
- ``vqa_score``: the GT-Vision-Lab VQA evaluation (``vqaEval.py``): each prediction gets
  ``vecomp.metrics.vqa.vqa_accuracy`` (the official normalisation where the annotators disagree,
  then for each of the ten human answers min(1, matches among the other nine / 3), averaged),
  the mean over questions overall and per answer type ("yes/no", "number", "other").
- ``retrieval_recall``: image-text retrieval Recall@K (Flickr30K, COCO) in the sense every V+L
  paper reports: the *hit rate* - a query scores 1 if ANY of its ground-truth items is in its top
  K, else 0, averaged over queries. For image->text an image has several captions (typically 5),
  and one of them in the top K suffices; this is torchmetrics' ``retrieval_hit_rate``, not its
  ``retrieval_recall`` (which would give 1/5 for one of five captions retrieved). ``rsum`` is the
  sum of all the recalls.

  Ties are broken against the query: a wrong candidate scoring exactly as high as the best correct
  one ranks ahead of it. The result is thus deterministic, independent of the candidates' order,
  and a scorer that gives everything the same score gets no credit (unless K covers all the wrong
  candidates). torchmetrics instead sorts with an unstable argsort, which leaves ties in an
  unspecified order; without ties both agree exactly. K larger than the number of candidates
  counts every query as a hit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch

from vecomp.errors import VecompError
from vecomp.metrics.vqa import vqa_accuracy

RECALL_AT = (1, 5, 10)  # the Ks of retrieval's Recall@K (rsum sums both directions' six)


def _check_lengths(what: str, a: Sequence, b: Sequence, a_name: str, b_name: str) -> None:
    if len(a) != len(b):
        raise VecompError(
            f"{what}: {a_name} and {b_name} differ in length ({len(a)} vs {len(b)}); "
            "they must have one entry per example"
        )
    if len(a) == 0:
        raise VecompError(f"{what}: no examples given ({a_name} and {b_name} are empty)")


def accuracy(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """Exact-match accuracy in percent."""
    _check_lengths("accuracy", predicted, gold, "predicted", "gold")
    return 100.0 * sum(int(p) == int(g) for p, g in zip(predicted, gold, strict=True)) / len(gold)


def nlvr2_consistency(group_ids: Sequence[str], correct: Sequence[bool]) -> float:
    """Percent of groups (unique sentences) whose examples are all classified correctly."""
    _check_lengths("NLVR2 consistency", group_ids, correct, "group_ids", "correct")
    all_correct: dict[str, bool] = {}
    for group, ok in zip(group_ids, correct, strict=True):
        all_correct[group] = all_correct.get(group, True) and bool(ok)
    return 100.0 * sum(all_correct.values()) / len(all_correct)


def vqa_score(
    predictions: Sequence[str],
    human_answers: Sequence[Sequence[str]],
    answer_types: Sequence[str] | None = None,
    normalise_unanimous: bool = False,
) -> dict[str, float]:
    """VQA accuracy in percent: {"accuracy": overall, "accuracy/<answer type>": per type}.

    ``normalise_unanimous`` departs from the official evaluator (``vecomp.metrics.vqa``).
    """
    _check_lengths("VQA score", predictions, human_answers, "predictions", "human_answers")
    if answer_types is not None and len(answer_types) != len(predictions):
        raise VecompError(
            f"VQA score: answer_types and predictions differ in length ({len(answer_types)} vs "
            f"{len(predictions)}); give one answer type per question or none"
        )
    scores = []
    for i, (pred, answers) in enumerate(zip(predictions, human_answers, strict=True)):
        if isinstance(answers, str) or len(answers) == 0:
            raise VecompError(
                f"VQA score: question {i} needs a list of human answers; got {answers!r}"
            )
        scores.append(vqa_accuracy(pred, answers, normalise_unanimous))
    result = {"accuracy": 100.0 * sum(scores) / len(scores)}
    if answer_types is not None:
        by_type: dict[str, list[float]] = defaultdict(list)
        for answer_type, score in zip(answer_types, scores, strict=True):
            by_type[answer_type].append(score)
        for answer_type, values in by_type.items():
            result[f"accuracy/{answer_type}"] = 100.0 * sum(values) / len(values)
    return result


def _hits(n_ahead: torch.Tensor, ks: Sequence[int]) -> list[float]:
    """Percent of queries with fewer than K wrong candidates ranked ahead of their best item."""
    return [100.0 * (n_ahead < k).double().mean().item() for k in ks]


def retrieval_recall(
    scores: torch.Tensor, text_to_image: Sequence[int], ks: Sequence[int] = RECALL_AT
) -> dict[str, float]:
    """Image->text and text->image Recall@K (hit rate) in percent, plus their sum ``rsum``.

    ``scores[i, j]`` is the similarity of image i and text j (higher = more similar);
    ``text_to_image[j]`` is the index of text j's ground-truth image. Returns ``i2t_r{k}`` and
    ``t2i_r{k}`` for each k in ``ks``, and ``rsum``. See the module docstring for ties.
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise VecompError(
            f"retrieval: scores must be a 2-D [n_images, n_texts] tensor; got {shape}"
        )
    n_images, n_texts = scores.shape
    if n_images == 0 or n_texts == 0:
        raise VecompError(f"retrieval: scores is empty (shape {n_images} x {n_texts})")
    if len(text_to_image) != n_texts:
        raise VecompError(
            f"retrieval: text_to_image has {len(text_to_image)} entries but scores has {n_texts} "
            "texts (columns); give the ground-truth image of every text"
        )
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise VecompError(f"retrieval: every K must be a positive integer; got {list(ks)}")
    if not scores.is_floating_point():
        scores = scores.double()
    if torch.isnan(scores).any():
        raise VecompError("retrieval: scores contain NaN")
    if not isinstance(text_to_image, torch.Tensor):
        text_to_image = list(text_to_image)
    gt_image = torch.as_tensor(text_to_image, dtype=torch.long, device=scores.device)
    if gt_image.dim() != 1:
        raise VecompError(
            f"retrieval: text_to_image must be flat; got shape {tuple(gt_image.shape)}"
        )
    out_of_range = ((gt_image < 0) | (gt_image >= n_images)).nonzero().flatten()
    if len(out_of_range):
        j = out_of_range[0].item()
        raise VecompError(
            f"retrieval: text {j} points to image {gt_image[j].item()}, out of range for "
            f"{n_images} images ({len(out_of_range)} such texts)"
        )
    n_captions = torch.bincount(gt_image, minlength=n_images)
    uncaptioned = (n_captions == 0).nonzero().flatten()
    if len(uncaptioned):
        raise VecompError(
            f"retrieval: image {uncaptioned[0].item()} has no caption in text_to_image "
            f"({len(uncaptioned)} images without one); every image query needs a ground truth"
        )

    is_gt = torch.zeros(n_images, n_texts, dtype=torch.bool, device=scores.device)
    is_gt[gt_image, torch.arange(n_texts, device=scores.device)] = True
    # image -> text: wrong texts scoring at least as high as the image's best caption
    best_caption = scores.masked_fill(~is_gt, float("-inf")).amax(dim=1, keepdim=True)
    i2t_ahead = ((scores >= best_caption) & ~is_gt).sum(dim=1)
    # text -> image: wrong images scoring at least as high as the text's own image
    own_image = scores.gather(0, gt_image.unsqueeze(0))
    t2i_ahead = ((scores >= own_image) & ~is_gt).sum(dim=0)

    result = {f"i2t_r{k}": v for k, v in zip(ks, _hits(i2t_ahead, ks), strict=True)}
    result |= {f"t2i_r{k}": v for k, v in zip(ks, _hits(t2i_ahead, ks), strict=True)}
    result["rsum"] = sum(result.values())
    return result
