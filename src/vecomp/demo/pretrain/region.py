"""Region objective: a mini Faster R-CNN learns to find objects and name colour and shape.

torchvision's own detection losses (RPN objectness and box regression, RoI classification and box
regression) on the ground-truth boxes of the visible objects. A class is a (colour, shape) pair,
1-based, 0 being background: 1 + 6 * 5 = 31 classes, so the box head's features, the region
encoder's tokens, must carry both the object and its attribute, as in bottom-up attention's
Visual Genome training. Scenes have no occluder and up to six objects by default, from the
region objective's own seed stream. At extraction time the encoder runs its own RPN and box head
on each image; it never sees ground-truth boxes of evaluation images.

Spec keys (defaults): ``channels`` (64, backbone width), ``representation`` (256, the box feature
size = token size), ``roi_batch_size`` (32, RoIs sampled per image in training, a quarter of them
positive at most; torchvision's default of 512 drowns the few objects of a 64 px scene in
background RoIs and the colour x shape classes then barely train), ``top_k`` (10, detections
scored by the held-out metric), ``seed`` (0), ``image_size`` (64), ``n_train`` (1500),
``n_heldout`` (256), ``epochs`` (8), ``batch_size`` (32), ``lr`` (0.003), ``weight_decay``
(0.0001), ``n_objects`` ([1, 6]), ``occluder_prob`` (0.0), ``threads`` (2, part of
the recipe: :mod:`.data`).

Saved with :func:`vecomp.encoders.detector.save_detector` (config.json + model.safetensors),
loadable as ``{"type": "torchvision_frcnn", "arch": "fasterrcnn_mini", "weights": <folder>}``.
Held-out metrics: the share of ground-truth objects that one of the ``top_k`` highest-scoring
detections covers at IoU >= 0.5 (class-agnostic), the share of those whose best-overlapping
detection has the right class, and the mean number of detections scoring >= 0.2 (the encoder's
default ``min_score``) per image.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...encoders.detector import save_detector
from ..detector import fasterrcnn_mini
from ..synthetic.scenes import COLORS, SHAPES, Scene, SceneObject
from .data import resolve_spec, scene_set, seeded, train

DEFAULTS = {
    "channels": 64,
    "representation": 256,
    "roi_batch_size": 32,
    "top_k": 10,
    "seed": 0,
    "image_size": 64,
    "n_train": 1500,
    "n_heldout": 256,
    "epochs": 8,
    "batch_size": 32,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "n_objects": [1, 6],
    "occluder_prob": 0.0,
}
ARCH = "fasterrcnn_mini"
CLASSES = ("background", *(f"{c} {s}" for c in COLORS for s in SHAPES))
IOU_MATCH = 0.5
ENCODER_MIN_SCORE = 0.2  # the region encoder's defaults: its regions are what we score
ENCODER_NMS_IOU = 0.5


def object_class(obj: SceneObject) -> int:
    """1 + colour index * 5 + shape index: "red circle" is 1, "orange cross" is 30."""
    return CLASSES.index(obj.name)


def targets_for(scene: Scene, size: int) -> dict[str, torch.Tensor]:
    """torchvision targets: boxes [K, 4] (x0, y0, x1, y1 in pixels), labels [K] int64."""
    visible = scene.visible
    boxes = torch.tensor([o.bbox() for o in visible], dtype=torch.float32).reshape(-1, 4) * size
    labels = torch.tensor([object_class(o) for o in visible], dtype=torch.int64)
    return {"boxes": boxes, "labels": labels}


def arch_kwargs(spec: dict) -> dict:
    """The ``fasterrcnn_mini`` arguments saved with the checkpoint."""
    return {
        "num_classes": len(CLASSES),
        "image_size": spec["image_size"],
        "channels": spec["channels"],
        "representation": spec["representation"],
    }


def build_model(spec: dict):
    model = fasterrcnn_mini(**arch_kwargs(spec))
    model.roi_heads.fg_bg_sampler.batch_size_per_image = spec["roi_batch_size"]  # training only
    return model


def batch_loss(model, images: torch.Tensor, targets: list[dict]) -> torch.Tensor:
    """Sum of torchvision's four detection losses; images [B, 3, S, S] in [0, 1], train mode."""
    return sum(model(list(images), targets).values())


@torch.no_grad()
def detect(model, images: torch.Tensor, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """Eval-mode detections per image (boxes, labels, scores; best first), no score floor."""
    model.eval()
    heads = model.roi_heads
    floor, heads.score_thresh = heads.score_thresh, 0.0
    try:
        return [d for chunk in images.split(batch_size) for d in model(list(chunk))]
    finally:
        heads.score_thresh = floor


def evaluate(detections: list[dict], targets: list[dict], top_k: int) -> dict:
    """Recall at IoU 0.5 among the ``top_k`` best detections, and label accuracy of the matched.

    As the region encoder picks its regions: class-agnostic NMS at IoU 0.5, best scores first.
    """
    from torchvision.ops import box_iou, nms  # where used: a config check imports this module

    found = correct = total = confident = 0
    for det, target in zip(detections, targets, strict=True):
        kept = nms(det["boxes"], det["scores"], ENCODER_NMS_IOU)  # best first, as the encoder
        confident += int((det["scores"][kept] >= ENCODER_MIN_SCORE).sum())
        boxes, labels = det["boxes"][kept[:top_k]], det["labels"][kept[:top_k]]
        total += len(target["labels"])
        if len(boxes) == 0 or len(target["labels"]) == 0:
            continue
        best, which = box_iou(target["boxes"], boxes).max(1)  # per ground-truth object
        hit = best >= IOU_MATCH
        found += int(hit.sum())
        correct += int((labels[which][hit] == target["labels"][hit]).sum())
    return {
        f"recall_iou50_top{top_k}": round(found / max(1, total), 4),
        "label_accuracy_matched": round(correct / max(1, found), 4),
        "detections_per_image_score_0.2": round(confident / max(1, len(targets)), 2),
    }


def pretrain(spec: dict | None, folder: Path) -> dict:
    """Train, evaluate and save into ``folder``; the encoder spec (without weights) and metrics."""
    spec = resolve_spec("region", DEFAULTS, spec)
    size = spec["image_size"]
    train_set, heldout = scene_set(spec, "region", "train"), scene_set(spec, "region", "heldout")
    targets = [targets_for(scene, size) for scene in train_set.scenes]
    heldout_targets = [targets_for(scene, size) for scene in heldout.scenes]
    with seeded(spec["seed"], spec["threads"]):
        model = build_model(spec)
        at_init = evaluate(detect(model, heldout.images), heldout_targets, spec["top_k"])
        losses = train(
            model,
            lambda i: batch_loss(model, train_set.images[i], [targets[j] for j in i.tolist()]),
            len(train_set),
            spec,
        )
    save_detector(model, folder, ARCH, arch_kwargs(spec))
    metrics = {
        "train_loss": losses,
        "heldout": evaluate(detect(model, heldout.images), heldout_targets, spec["top_k"]),
        "heldout_at_init": at_init,
        "classes": list(CLASSES),
    }
    return {
        "encoder": {"type": "torchvision_frcnn", "arch": ARCH},
        "spec": spec,
        "metrics": metrics,
    }
