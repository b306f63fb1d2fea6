"""Attribute probes: encoders that see one kind of information only, by construction.

For the planted-complementarity validation (``config/validation.yaml``): on the synthetic scenes
(flat colours on a flat background), a probe reads the pixels and keeps exactly one kind of
information, so which encoder a task needs is known in advance.

- ``sees: color``: one token per palette colour present in the image (its one-hot code), boxes
  covering the whole image: no shape, no position.
- ``sees: shape``: one token per object, its silhouette scaled into an 8 x 8 square, boxes
  covering the whole image: no colour, no position.
- ``sees: position``: one token per object, its centre (x, y) with its box: no colour, no shape.

Every probe adds one always-present blank token, so an empty image still has one.
Objects are the pixels far from the background and the grey occluder (the occluder hides).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..encoders.base import WHOLE_IMAGE, EncoderOutput, VisionEncoder
from ..encoders.registry import register_encoder
from .synthetic.scenes import BACKGROUND, COLORS, OCCLUDER

FAR = 60 / 255  # an object pixel differs from the background by more than this (per channel)
MIN_PIXELS = 4  # smaller specks (JPEG ringing) are not objects
SILHOUETTE = 8


def _rgb(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32) / 255


def object_pixels(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W] bool: pixels that are neither background nor occluder."""
    pixels = images.permute(0, 2, 3, 1)
    far = [(pixels - _rgb(c)).abs().amax(-1) > FAR for c in (BACKGROUND, OCCLUDER)]
    return far[0] & far[1]


def palette_index(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W] index of the nearest palette colour of every pixel."""
    palette = _rgb(list(COLORS.values()))  # [C, 3]
    pixels = images.permute(0, 2, 3, 1).unsqueeze(-2)  # [B, H, W, 1, 3]
    return (pixels - palette).pow(2).sum(-1).argmin(-1)


def components(mask: torch.Tensor) -> torch.Tensor:
    """[B, H, W] connected-component labels (0 = background) by max-label propagation."""
    batch, height, width = mask.shape
    ids = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, height, width)
    labels = ids.expand(batch, -1, -1) * mask
    while True:
        grown = F.max_pool2d(labels.unsqueeze(1), 3, stride=1, padding=1).squeeze(1) * mask
        if torch.equal(grown, labels):
            return labels.long()
        labels = grown


class AttributeProbe(VisionEncoder):
    family = "probe"

    def __init__(self, sees: str):
        if sees not in SEES:
            raise ValueError(f"sees must be one of {sorted(SEES)}, got {sees!r}")
        dims = {"color": len(COLORS) + 1, "shape": SILHOUETTE**2 + 1, "position": 3}
        super().__init__(dims[sees], {"sees": sees, "scale": "0..1, unresized"})
        self.sees = sees

    def transform(self):
        from torchvision.transforms.functional import pil_to_tensor  # where used: see detector.py

        return lambda image: pil_to_tensor(image).float() / 255

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        return SEES[self.sees](self, images.float())

    def _colors(self, images):
        objects, index = object_pixels(images), palette_index(images)
        counts = F.one_hot(index, len(COLORS)).mul(objects.unsqueeze(-1)).sum((1, 2))  # [B, C]
        codes = torch.eye(len(COLORS) + 1)  # the last row is the blank token
        tokens = codes.expand(len(images), -1, -1)
        present = torch.cat([counts >= MIN_PIXELS, torch.ones(len(images), 1, dtype=torch.bool)], 1)
        return _whole_image(tokens, present)

    def _shapes(self, images):
        """Per object: its silhouette (whole-image box)."""
        tokens, present, _ = self._per_object(images, _silhouette)
        return _whole_image(tokens, present)

    def _positions(self, images):
        """Per object: its centre (x, y), with its box."""
        tokens, present, boxes = self._per_object(images, _centre)
        return EncoderOutput(tokens, boxes, present)

    def _per_object(self, images, describe):
        """tokens [B, T, dim] (one per object, then a blank one), mask and boxes."""
        labels = components(object_pixels(images))
        size = torch.tensor(labels.shape[1:][::-1] * 2, dtype=torch.float32)  # (W, H, W, H)
        found = []
        for image_labels in labels:
            regions = [image_labels == k for k in image_labels.unique() if k > 0]
            regions = [r for r in regions if r.sum() >= MIN_PIXELS]
            found.append([(describe(r), _box(r) / size) for r in regions])
        longest = max(len(f) for f in found) + 1
        tokens = torch.zeros(len(images), longest, self.dim)
        present = torch.zeros(len(images), longest, dtype=torch.bool)
        boxes = torch.tensor(WHOLE_IMAGE).repeat(len(images), longest, 1)
        for b, objects in enumerate(found):
            for t, (features, box) in enumerate(objects):
                tokens[b, t, :-1], boxes[b, t], present[b, t] = features, box, True
            tokens[b, len(objects), -1], present[b, len(objects)] = 1.0, True  # the blank
        return tokens, present, boxes


def _box(region: torch.Tensor) -> torch.Tensor:
    """(x0, y0, x1, y1) of a region, in pixels (x1, y1 exclusive)."""
    rows, cols = region.any(1).nonzero(), region.any(0).nonzero()
    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]).float()


def _centre(region: torch.Tensor) -> torch.Tensor:
    """The region's centre of mass as fractions of the image side (x, y)."""
    rows, cols = region.nonzero().float().mean(0)
    return torch.stack([cols / region.shape[1], rows / region.shape[0]])


def _silhouette(region: torch.Tensor) -> torch.Tensor:
    """An object's pixels cropped to its box and scaled to 8 x 8 (flattened)."""
    x0, y0, x1, y1 = _box(region).long().tolist()
    crop = region[y0:y1, x0:x1].float()
    scaled = F.interpolate(crop[None, None], size=(SILHOUETTE, SILHOUETTE), mode="area")
    return scaled.flatten()


def _whole_image(tokens: torch.Tensor, present: torch.Tensor) -> EncoderOutput:
    boxes = torch.tensor(WHOLE_IMAGE).expand(*tokens.shape[:2], 4)
    return EncoderOutput(tokens, boxes, present)


SEES = {
    "color": AttributeProbe._colors,
    "shape": AttributeProbe._shapes,
    "position": AttributeProbe._positions,
}

register_encoder("attribute_probe")(AttributeProbe)
