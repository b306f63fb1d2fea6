"""What every vision encoder returns, whatever its family.

Tokens come with boxes in normalised image coordinates (x0, y0, x1, y1 in [0, 1]): a detected
region's box, a grid cell's or a patch's box, or the whole image for a CLS token. One geometry
format for all families keeps the feature store and the fusion model's position embedding simple:
a cell's box encodes its 2-D grid position exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from PIL import Image
from torch import nn

WHOLE_IMAGE = (0.0, 0.0, 1.0, 1.0)


@dataclass
class EncoderOutput:
    tokens: torch.Tensor  # [B, T, D]
    boxes: torch.Tensor  # [B, T, 4] (x0, y0, x1, y1) in [0, 1]
    mask: torch.Tensor  # [B, T] bool, True for real tokens (regions vary in number)


class VisionEncoder(nn.Module):
    """A frozen feature extractor. Subclasses set ``family`` and implement ``forward``."""

    family: ClassVar[str]

    def __init__(self, dim: int, preprocessing: dict):
        super().__init__()
        self.dim = dim
        self.preprocessing = preprocessing  # JSON-able; recorded in every feature store

    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> [3, H, W] tensor, as the model's own preprocessing config says."""
        raise NotImplementedError

    def tensor_transform(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """uint8 RGB ``[3, H, W]`` on any device -> what ``transform`` makes of that image, on
        that device (files decoded on a GPU: ``features/decode.py``); None: this encoder's
        images are decoded and transformed on the CPU."""
        return None

    def forward(self, images: torch.Tensor) -> EncoderOutput:  # images [B, 3, H, W]
        raise NotImplementedError


def grid_boxes(rows: int, cols: int) -> torch.Tensor:
    """Boxes of a rows x cols grid in row-major order: [rows * cols, 4]."""
    y0, x0 = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    x0 = x0.flatten().float() / cols
    y0 = y0.flatten().float() / rows
    return torch.stack([x0, y0, x0 + 1 / cols, y0 + 1 / rows], dim=-1)


def with_prefix_boxes(grid: torch.Tensor, n_prefix: int) -> torch.Tensor:
    """Prepend whole-image boxes for prefix tokens (CLS, registers): [n_prefix + G, 4]."""
    prefix = torch.tensor([WHOLE_IMAGE] * n_prefix, dtype=grid.dtype)
    return torch.cat([prefix, grid], dim=0)


def full_mask(batch: int, tokens: int, device) -> torch.Tensor:
    return torch.ones(batch, tokens, dtype=torch.bool, device=device)
