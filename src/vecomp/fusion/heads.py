"""Task heads on the fusion model's pooled output, one class per task kind (``HEADS``).

- ``vqa``: soft-score binary cross-entropy over the answer vocabulary (summed over answers).
- ``classification`` (GQA, SNLI-VE): cross-entropy over the label set.
- ``pair`` (NLVR2): the statement is encoded with each image of the pair; the two pooled outputs
  are concatenated and classified (true/false).
- ``retrieval``: image-text matching, a binary score of (caption, image) trained against sampled
  negatives; plus a light contrastive pair of projections (mean text token, mean kept visual
  token) used only to shortlist candidates when ``rerank_top_k`` is set.

Every head's ``forward`` takes a batch (see ``data.py``) and a ``keep [B, E]`` encoder mask and
returns logits; ``loss`` turns logits and the batch's targets into a scalar.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import index_rows
from .model import FusionConfig, FusionModel, ve_dropout_mask


def _classifier(inputs: int, width: int, outputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, width), nn.GELU(), nn.LayerNorm(width), nn.Linear(width, outputs)
    )


class TaskModel(nn.Module):
    """The fusion model plus one task head; VE-dropout is drawn here, once per example."""

    def __init__(self, config: FusionConfig, outputs: int) -> None:
        super().__init__()
        self.config = config
        self.fusion = FusionModel(config)
        self.head = self.build_head(config.width, outputs)

    def build_head(self, width: int, outputs: int) -> nn.Module:
        return _classifier(width, width, outputs)

    def keep_mask(self, batch: dict, keep: torch.Tensor | None) -> torch.Tensor:
        size, device = batch["text"]["mask"].shape[0], batch["text"]["mask"].device
        n = len(self.config.encoders)
        if keep is None:
            keep = torch.ones(size, n, dtype=torch.bool, device=device)
        if self.training and self.config.ve_dropout > 0 and n > 1:
            keep = keep & ve_dropout_mask(size, n, self.config.ve_dropout, device)
        return keep

    def forward(self, batch: dict, keep: torch.Tensor | None = None) -> torch.Tensor:
        keep = self.keep_mask(batch, keep)
        pooled = self.fusion(batch["text"], batch["visual"], keep)["pooled"]
        return self.head(pooled)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)


class VqaModel(TaskModel):
    def loss(self, logits, targets):
        # mean over the batch of the summed per-answer BCE (the usual VQA objective)
        return F.binary_cross_entropy_with_logits(logits, targets) * targets.shape[1]


class PairModel(TaskModel):
    def build_head(self, width, outputs):
        return _classifier(2 * width, width, outputs)

    def forward(self, batch, keep=None):
        keep = self.keep_mask(batch, keep)  # the same encoders for both images of a pair
        first = self.fusion(batch["text"], batch["visual"], keep)["pooled"]
        second = self.fusion(batch["text"], batch["visual_2"], keep)["pooled"]
        return self.head(torch.cat([first, second], dim=-1))


class RetrievalModel(TaskModel):
    CONTRASTIVE_WEIGHT = 0.5
    TEMPERATURE = 0.1

    def __init__(self, config: FusionConfig, outputs: int) -> None:
        super().__init__(config, 1)
        self.text_embed = nn.Linear(config.width, config.width)
        self.image_embed = nn.Linear(config.width, config.width)

    def forward(self, batch, keep=None):
        return super().forward(batch, keep).squeeze(-1)

    def text_embedding(self, text: dict) -> torch.Tensor:
        """Unimodal caption embedding for the shortlist: the mean projected text token."""
        tokens = self.fusion.text(text)
        return F.normalize(self.text_embed(_masked_mean(tokens, text["mask"])), dim=-1)

    def image_embedding(self, visual: dict, keep: torch.Tensor) -> torch.Tensor:
        """Unimodal image embedding: the mean projected token of the kept encoders."""
        blocks, masks = [], []
        for e, name in enumerate(self.config.encoders):
            block = visual[name]
            blocks.append(self.fusion.visual[name](block["tokens"], block["boxes"]))
            masks.append(block["mask"] & keep[:, e : e + 1])
        image = _masked_mean(torch.cat(blocks, 1), torch.cat(masks, 1))
        return F.normalize(self.image_embed(image), dim=-1)

    def loss(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets)

    def contrastive_loss(self, batch) -> torch.Tensor:
        """In-batch InfoNCE over the positive pairs of a training batch (both directions); its
        VE-dropout mask is drawn apart from the matching head's."""
        positive = batch["targets"] > 0.5
        if positive.sum() < 2:
            return torch.zeros(())
        pairs = index_rows(batch, positive)
        text = self.text_embedding(pairs["text"])
        image = self.image_embedding(pairs["visual"], self.keep_mask(pairs, None))
        similarity = text @ image.T / self.TEMPERATURE
        labels = torch.arange(len(text), device=similarity.device)
        return (F.cross_entropy(similarity, labels) + F.cross_entropy(similarity.T, labels)) / 2


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.float()[..., None]
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1)


HEADS: dict[str, type[TaskModel]] = {
    "vqa": VqaModel,
    "classification": TaskModel,
    "pair": PairModel,
    "retrieval": RetrievalModel,
}


def build_task_model(kind: str, config: FusionConfig, outputs: int) -> TaskModel:
    return HEADS[kind](config, outputs)
