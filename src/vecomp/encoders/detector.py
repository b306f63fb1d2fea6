"""Region encoders: a torchvision Faster R-CNN's detections and their pooled box features.

Why torchvision's Faster R-CNN: it is the detector family of bottom-up attention, it loads from a
plain state dict (no hub needed, so the offline demo and the paper profile share one loader),
and its modules (transform, backbone, RPN, RoI heads) can be called one by one, so the features of
the final boxes come from the model's own box head instead of surgery on its internals.

Per image: detections after class-agnostic NMS, the ``max_regions`` highest-scoring ones, their
box features ([K, representation size]: 1024 for ResNet-50-FPN) and normalised boxes. An image
with no detection above ``min_score`` gets one whole-image region, so every image has a token.

torchvision and safetensors are imported where they are used: checking a config imports every
encoder module (``factory.check_spec``), and Snakemake checks it at every start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..weights import MissingWeightsError, from_hub, local_path
from .base import WHOLE_IMAGE, EncoderOutput, VisionEncoder
from .registry import register_encoder

if TYPE_CHECKING:
    from torchvision.models.detection import FasterRCNN

CHECKPOINT_CONFIG = "config.json"  # {"arch": ..., "arch_kwargs": {...}} beside model.safetensors
CHECKPOINT_WEIGHTS = "model.safetensors"


def _torchvision_builder(name: str) -> Callable[..., FasterRCNN]:
    """``torchvision.models.detection.<name>``, looked up when a detector is built."""

    def build(**kwargs):
        from torchvision.models import detection

        return getattr(detection, name)(**kwargs)

    return build


TORCHVISION = (  # torchvision's own detectors: their builders take its weights arguments
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
)
ARCHITECTURES: dict[str, Callable[..., FasterRCNN]] = {
    name: _torchvision_builder(name) for name in TORCHVISION
}


def register_architecture(name: str):
    """Make a detector builder ``build(**arch_kwargs)`` loadable by name (the demo's is one)."""

    def decorate(build):
        ARCHITECTURES[name] = build
        return build

    return decorate


def build_detector(arch: str, weights: str | None, arch_kwargs: dict | None = None):
    """A Faster R-CNN with random, torchvision-hub or local (state dict) weights."""
    if arch not in ARCHITECTURES:
        raise MissingWeightsError(f"unknown detector {arch!r}; known: {', '.join(ARCHITECTURES)}")
    kwargs = dict(arch_kwargs or {})
    if weights == "hub":
        with from_hub(f"torchvision detector {arch}", f"torchvision:{arch}:DEFAULT"):
            return ARCHITECTURES[arch](weights="DEFAULT", **kwargs)
    if arch in TORCHVISION:
        kwargs.setdefault("weights", None)
        kwargs.setdefault("weights_backbone", None)
    model = ARCHITECTURES[arch](**kwargs)
    if weights is not None:
        model.load_state_dict(load_state_dict(local_path(weights, f"detector {arch}")))
    return model


def load_state_dict(path: Path) -> dict:
    """A state dict from a checkpoint folder (model.safetensors) or a .safetensors/.pth file."""
    file = path / CHECKPOINT_WEIGHTS if path.is_dir() else path
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(file)
    return torch.load(file, map_location="cpu", weights_only=True)


def save_detector(model: FasterRCNN, folder: Path, arch: str, arch_kwargs: dict) -> None:
    """Write the checkpoint format :func:`build_detector` reads: config.json + model.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, folder / CHECKPOINT_WEIGHTS
    )
    (folder / CHECKPOINT_CONFIG).write_text(json.dumps({"arch": arch, "arch_kwargs": arch_kwargs}))


def _checkpoint_arch(weights: str | None, arch: str | None, arch_kwargs: dict | None):
    """Architecture from the checkpoint folder's config.json when the spec does not give one."""
    if weights not in (None, "hub") and (Path(weights) / CHECKPOINT_CONFIG).is_file():
        saved = json.loads((Path(weights) / CHECKPOINT_CONFIG).read_text())
        return arch or saved["arch"], arch_kwargs if arch_kwargs is not None else saved[
            "arch_kwargs"
        ]
    return arch or "fasterrcnn_resnet50_fpn", arch_kwargs or {}


@register_encoder("torchvision_frcnn")
class FasterRCNNRegionEncoder(VisionEncoder):
    family = "region"

    def __init__(
        self,
        weights: str | None = None,
        arch: str | None = None,
        arch_kwargs: dict | None = None,
        max_regions: int = 36,
        min_score: float = 0.2,
        nms_iou: float = 0.5,
    ):
        arch, arch_kwargs = _checkpoint_arch(weights, arch, arch_kwargs)
        model = build_detector(arch, weights, arch_kwargs)
        heads = model.roi_heads
        heads.score_thresh, heads.detections_per_img = min_score, 4 * max_regions
        dim = heads.box_predictor.cls_score.in_features  # the box head's width, any head
        t = model.transform
        super().__init__(
            dim,
            {
                "library": "torchvision",
                "arch": arch,
                "weights": str(weights),
                "min_size": list(t.min_size),
                "max_size": t.max_size,
                "mean": list(t.image_mean),
                "std": list(t.image_std),
                "max_regions": max_regions,
                "min_score": min_score,
                "nms_iou": nms_iou,
            },
        )
        self.model = model
        self.max_regions, self.nms_iou = max_regions, nms_iou

    def transform(self):
        from torchvision.transforms import v2

        return v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])

    def tensor_transform(self):
        return self.transform()  # PILToTensor passes a tensor through

    def _box_features(self, features, boxes, sizes) -> torch.Tensor:
        pooled = self.model.roi_heads.box_roi_pool(features, boxes, sizes)
        return self.model.roi_heads.box_head(pooled)  # [sum K, dim]

    def _select(self, boxes, scores, size) -> torch.Tensor:
        """Class-agnostic NMS, best ``max_regions``; the whole image if nothing was found."""
        from torchvision.ops import nms

        keep = nms(boxes, scores, self.nms_iou)[: self.max_regions]
        if len(keep) == 0:
            height, width = size
            return torch.tensor([[0.0, 0.0, width, height]], device=boxes.device)
        return boxes[keep]

    def forward(self, images: torch.Tensor | list[torch.Tensor]) -> EncoderOutput:
        """``images``: a [B, 3, H, W] batch or a list of [3, H, W] images of different sizes
        (the detector's transform resizes each and pads them to one batch)."""
        model = self.model
        image_list, _ = model.transform(list(images))
        features = model.backbone(image_list.tensors)
        features = features if isinstance(features, dict) else {"0": features}
        proposals, _ = model.rpn(image_list, features)
        logits, regression = model.roi_heads.box_predictor(
            self._box_features(features, proposals, image_list.image_sizes)
        )
        boxes, scores, _ = model.roi_heads.postprocess_detections(
            logits, regression, proposals, image_list.image_sizes
        )
        chosen = [
            self._select(b, s, size)
            for b, s, size in zip(boxes, scores, image_list.image_sizes, strict=True)
        ]
        feats = self._box_features(features, chosen, image_list.image_sizes).split(
            [len(c) for c in chosen]
        )
        return _pad(feats, chosen, image_list.image_sizes, self.dim)


def _pad(feats, boxes, sizes, dim) -> EncoderOutput:
    """Variable regions per image -> padded [B, K, D] tokens, [B, K, 4] boxes, [B, K] mask."""
    batch, longest = len(feats), max(len(f) for f in feats)
    device = feats[0].device
    tokens = torch.zeros(batch, longest, dim, device=device)
    out_boxes = torch.tensor(WHOLE_IMAGE, device=device).repeat(batch, longest, 1)
    mask = torch.zeros(batch, longest, dtype=torch.bool, device=device)
    for i, (f, b, (h, w)) in enumerate(zip(feats, boxes, sizes, strict=True)):
        scale = torch.tensor([w, h, w, h], dtype=b.dtype, device=device)
        tokens[i, : len(f)] = f
        out_boxes[i, : len(f)] = (b / scale).clamp(0, 1)
        mask[i, : len(f)] = True
    return EncoderOutput(tokens, out_boxes, mask)
