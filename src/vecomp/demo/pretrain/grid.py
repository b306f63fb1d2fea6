"""Grid objective: a timm CNN learns which attributes a scene shows (multi-label BCE).

The 13 labels ask, of the visible objects only, "is any of them red?" ... "is any a circle?" ...
"is any large?" (6 colours, 5 shapes, 2 sizes). Predicting them from the pooled last feature map
makes that map carry colour, shape and size evidence where the objects are, and its cells are
what the grid encoder later hands over as tokens (2 x 2 cells of 512 for resnet10t at 64 px).
Scenes have no occluder by default (the patch objective's do), from the grid objective's own
seed stream.

Spec keys (defaults): ``model`` ("resnet10t", any timm CNN with ``features_only``), ``seed`` (0),
``image_size`` (64), ``n_train`` (2000), ``n_heldout`` (512), ``epochs`` (4), ``batch_size``
(64), ``lr`` (0.002), ``weight_decay`` (0.05), ``n_objects`` ([1, 5]), ``occluder_prob`` (0.0),
``threads`` (2, part of the recipe: :mod:`.data`).

Saved with ``timm.models.save_for_hf`` (config.json + model.safetensors, classifier included),
loadable as ``{"type": "timm_grid", "model": <model>, "weights": <folder>}``. Held-out metrics:
mean per-label accuracy and macro average precision, beside the scores of the best constant
predictor and of the untrained network.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..synthetic.scenes import COLORS, SHAPES, SIZES, Scene
from .data import PretrainSpecError, normalize, resolve_spec, save_timm, scene_set, seeded, train

DEFAULTS = {
    "model": "resnet10t",
    "seed": 0,
    "image_size": 64,
    "n_train": 2000,
    "n_heldout": 512,
    "epochs": 4,
    "batch_size": 64,
    "lr": 2e-3,
    "weight_decay": 0.05,
    "n_objects": [1, 5],
    "occluder_prob": 0.0,
}
ATTRIBUTE_KINDS = ("color", "shape", "size")
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    *(("color", c) for c in COLORS),
    *(("shape", s) for s in SHAPES),
    *(("size", s) for s in SIZES),
)


def attribute_targets(scenes: list[Scene]) -> torch.Tensor:
    """[N, 13] float: 1 where a visible object has the attribute (6 colours, 5 shapes, 2 sizes)."""
    rows = []
    for scene in scenes:
        present = {(kind, getattr(o, kind)) for o in scene.visible for kind in ATTRIBUTE_KINDS}
        rows.append([float(attribute in present) for attribute in ATTRIBUTES])
    return torch.tensor(rows, dtype=torch.float32).reshape(len(scenes), len(ATTRIBUTES))


def build_model(spec: dict) -> torch.nn.Module:
    import timm  # where used: a config check imports this module for its DEFAULTS

    if not timm.is_model(spec["model"]):
        raise PretrainSpecError(f"pretrain grid: timm has no model {spec['model']!r}")
    return timm.create_model(spec["model"], pretrained=False, num_classes=len(ATTRIBUTES))


def batch_loss(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the 13 labels; images [B, 3, S, S] normalised, targets [B, 13]."""
    return F.binary_cross_entropy_with_logits(model(images), targets)


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Label logits [N, 13] in eval mode."""
    model.eval()
    return torch.cat([model(chunk) for chunk in images.split(batch_size)])


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """AP of one label: mean precision at the rank of each positive; scores, labels [N]."""
    hits = labels[scores.argsort(descending=True, stable=True)]
    if hits.sum() == 0:
        return float("nan")
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def evaluate(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Held-out accuracy and macro AP of [N, 13] logits against [N, 13] 0/1 targets."""
    accuracy = ((logits > 0).float() == targets).float().mean(0)
    ap = torch.tensor(
        [average_precision(logits[:, j], targets[:, j]) for j in range(targets.shape[1])]
    )
    return {
        "label_accuracy": round(float(accuracy.mean()), 4),
        "macro_ap": round(float(ap.nanmean()), 4),
    }


def baselines(targets: torch.Tensor) -> dict:
    """What knowing only each label's base rate achieves: the floor a trained model must beat."""
    rate = targets.mean(0)
    return {
        "label_accuracy": round(float(torch.maximum(rate, 1 - rate).mean()), 4),
        "macro_ap": round(float(rate[rate > 0].mean()), 4),
    }


def save(model: torch.nn.Module, folder: Path, spec: dict) -> None:
    labels = [f"{kind}:{value}" for kind, value in ATTRIBUTES]
    save_timm(model, folder, spec, model_config={"label_names": labels})


def pretrain(spec: dict | None, folder: Path) -> dict:
    """Train, evaluate and save into ``folder``; the encoder spec (without weights) and metrics."""
    spec = resolve_spec("grid", DEFAULTS, spec)
    train_set, heldout = scene_set(spec, "grid", "train"), scene_set(spec, "grid", "heldout")
    images, targets = normalize(train_set.images), attribute_targets(train_set.scenes)
    heldout_images, heldout_targets = normalize(heldout.images), attribute_targets(heldout.scenes)
    with seeded(spec["seed"], spec["threads"]):
        model = build_model(spec)
        at_init = evaluate(predict(model, heldout_images), heldout_targets)
        losses = train(model, lambda i: batch_loss(model, images[i], targets[i]), len(images), spec)
    save(model, folder, spec)
    metrics = {
        "train_loss": losses,
        "heldout": evaluate(predict(model, heldout_images), heldout_targets),
        "heldout_at_init": at_init,
        "heldout_constant_baseline": baselines(heldout_targets),
    }
    return {
        "encoder": {"type": "timm_grid", "model": spec["model"]},
        "spec": spec,
        "metrics": metrics,
    }
