"""Patch encoders from transformers vision models (CLIP, SigLIP, DINOv2, ViT).

``model`` is a hub id or a local folder saved with ``save_pretrained``; the image size, patch
size, mean and std come from the checkpoint's own config and image processor. The input size is
the one the image processor hands the model (its crop, else its resize): DINOv2's config says
518 px, the size it was trained at last, while its processor crops 224 px, as the literature
extracts it; the whole image is squashed to that size (no crop), so a token's box is its cell.
transformers and torchvision are imported where they are used (see ``detector.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..weights import from_hub, local_path
from .base import EncoderOutput, VisionEncoder, full_mask, grid_boxes, with_prefix_boxes
from .registry import register_encoder


def _load(model: str):
    """(vision model, image processor) from a local folder or the hub."""
    from transformers import AutoImageProcessor, AutoModel

    source = str(local_path(model, "transformers model")) if Path(model).exists() else model
    with from_hub(f"transformers model {model}", model):
        net = AutoModel.from_pretrained(source)
        processor = AutoImageProcessor.from_pretrained(source)
    return getattr(net, "vision_model", net), processor


def processor_size(processor) -> int | None:
    """The square size the processor gives the model: its crop when it crops, else its resize."""
    crops = getattr(processor, "do_center_crop", False)
    size = dict(getattr(processor, "crop_size" if crops else "size", None) or {})
    if size.get("height") and size["height"] == size.get("width"):
        return int(size["height"])
    return size.get("shortest_edge")


@register_encoder("hf_patch")
class HFPatchEncoder(VisionEncoder):
    family = "patch"

    def __init__(self, model: str):
        net, processor = _load(model)
        config = net.config
        size = processor_size(processor) or config.image_size
        super().__init__(
            config.hidden_size,
            {
                "library": "transformers",
                "model": model,
                "input_size": [3, size, size],
                "mean": list(processor.image_mean),
                "std": list(processor.image_std),
                "interpolation": "bicubic",
                "crop_mode": "squash",
            },
        )
        self.net = net
        self.grid = size // config.patch_size

    def transform(self):
        from torchvision.transforms import v2

        size = self.preprocessing["input_size"][1:]
        return v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.preprocessing["mean"], self.preprocessing["std"]),
            ]
        )

    def tensor_transform(self):
        return self.transform()  # resizes a uint8 tensor already (PILToTensor passes it through)

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        tokens = self.net(pixel_values=images).last_hidden_state  # [B, prefix + g*g, D]
        prefix = tokens.shape[1] - self.grid * self.grid
        boxes = with_prefix_boxes(grid_boxes(self.grid, self.grid), prefix).to(tokens)
        batch = tokens.shape[0]
        return EncoderOutput(
            tokens, boxes.expand(batch, -1, -1), full_mask(batch, tokens.shape[1], tokens.device)
        )
