"""The fusion model: one single-stream transformer over text and any subset of vision encoders.

Sequence layout: ``[CLS] text tokens | encoder 1 tokens | encoder 2 tokens | ...``.

- Text: the cached token states of a frozen pretrained language encoder (see ``text.py``),
  projected (Linear + LayerNorm) to the model width, plus the text type embedding.
- Each vision encoder: its own Linear + LayerNorm projection, a learned encoder-type embedding,
  and a position embedding of each token's box ``(x0, y0, x1, y1, area)`` in image coordinates:
  the box geometry of a region, the cell of a grid or patch token (CLS covers the whole image).
- Shared pre-LN transformer layers (the ViT/GPT-2 layout: LayerNorm before attention and
  feed-forward, one final LayerNorm) attend over the joint sequence; a key padding mask hides
  padding, absent encoders and dropped encoders, so a masked encoder cannot influence any other
  token. Pre-LN rather than BERT's post-LN because, trained from scratch, it learns a
  text-conditioned lookup in fewer steps: on the demo's NLVR2 statements ("The left image
  contains a red object.") 89% test accuracy after 8 epochs against 69% for post-LN.
- ``pooled`` is the final [CLS] state, normalised; the task heads live in ``heads.py``.

The language encoder itself is frozen and cached rather than continued over the joint sequence
(the paper's design) so that the whole sweep fits a CPU budget; the fusion layers are trained
from scratch. ``forward(..., attention=True)`` also returns every layer's head-averaged
attention map for the analysis.

VE-dropout: in training, each example drops each encoder's whole token block with probability
``ve_dropout``, and never all of them (one dropped encoder is restored at random). The task model
(``heads.py``) draws the mask once per example and passes it as ``keep``, so both images of an
NLVR2 pair see the same encoders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

BOX_FEATURES = 5  # x0, y0, x1, y1, area


@dataclass(frozen=True)
class FusionConfig:
    encoders: tuple[str, ...]  # the encoder subset, in sequence order
    encoder_dims: dict[str, int]  # feature width of each encoder's tokens
    text_dim: int
    width: int = 128
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    dropout: float = 0.1
    ve_dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"encoders": list(self.encoders)}

    @classmethod
    def from_dict(cls, data: dict) -> FusionConfig:
        return cls(**(data | {"encoders": tuple(data["encoders"])}))


def box_features(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` boxes -> ``[..., 5]`` with the box area appended."""
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return torch.cat([boxes, area[..., None]], dim=-1)


class TokenEmbedding(nn.Module):
    """Project one modality's tokens into the model width, with its type (and position)."""

    def __init__(self, dim: int, width: int, with_boxes: bool, dropout: float) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(dim, width), nn.LayerNorm(width))
        self.type_embedding = nn.Parameter(torch.zeros(width))
        self.position = nn.Linear(BOX_FEATURES, width) if with_boxes else None
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        x = self.project(tokens) + self.type_embedding
        if self.position is not None:
            x = x + self.position(box_features(boxes))
        return self.dropout(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the joint sequence, written out rather than
    ``nn.MultiheadAttention`` so that its head-averaged map is the softmax before dropout.

    Without a map (training, evaluation) it runs torch's fused ``scaled_dot_product_attention``:
    on a GPU it never materialises the ``[B, H, L, L]`` scores, and on a CPU core, at the demo's
    sizes, it is as fast as the written-out softmax (``bench/attention.py``). With a map (the
    analysis) the written-out path computes the same output and returns the map.
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, attention: bool):
        batch, length, width = x.shape
        head_width = width // self.heads
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, head_width).permute(2, 0, 3, 1, 4)
        if attention:
            scores = (q @ k.transpose(-1, -2)) * head_width**-0.5
            weights = scores.masked_fill(padding[:, None, None, :], float("-inf")).softmax(-1)
            mixed, mean_map = self.dropout(weights) @ v, weights.mean(1)
        else:
            visible = ~padding[:, None, None, :]
            dropout = self.dropout.p if self.training else 0.0
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, dropout_p=dropout)
            mean_map = None
        return self.out(mixed.transpose(1, 2).reshape(batch, length, width)), mean_map


class FusionLayer(nn.Module):
    """A pre-LN transformer layer that can return its attention map."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.attention = SelfAttention(width, heads, dropout)
        self.norm1 = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width), nn.Dropout(dropout)
        )
        self.norm2 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, attention: bool):
        attended, weights = self.attention(self.norm1(x), padding, attention)
        x = x + self.dropout(attended)
        return x + self.feed_forward(self.norm2(x)), weights


class FusionModel(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.cls = nn.Parameter(torch.randn(width) * 0.02)
        self.text = TokenEmbedding(config.text_dim, width, with_boxes=False, dropout=config.dropout)
        self.visual = nn.ModuleDict(
            {
                name: TokenEmbedding(config.encoder_dims[name], width, True, config.dropout)
                for name in config.encoders
            }
        )
        self.layers = nn.ModuleList(
            FusionLayer(width, config.heads, config.ffn, config.dropout)
            for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(width)

    def forward(
        self,
        text: dict[str, torch.Tensor],
        visual: dict[str, dict[str, torch.Tensor]],
        keep: torch.Tensor | None = None,
        attention: bool = False,
    ) -> dict:
        """Pooled output ``[B, width]`` (and per-layer attention maps ``[B, L, L]``).

        ``text``: ``tokens [B, T, D]``, ``mask [B, T]``; ``visual[name]``: ``tokens``, ``boxes``,
        ``mask`` for each encoder of the subset; ``keep [B, E]`` (bool, encoder order of the
        config) masks whole encoders, e.g. for inference with an encoder removed.
        """
        batch = text["tokens"].shape[0]
        if keep is None:
            keep = torch.ones(batch, len(self.config.encoders), dtype=torch.bool)
        keep = keep.to(text["tokens"].device)
        parts = [self.cls.expand(batch, 1, -1), self.text(text["tokens"])]
        masks = [torch.ones(batch, 1, dtype=torch.bool, device=keep.device), text["mask"]]
        for e, name in enumerate(self.config.encoders):
            block = visual[name]
            parts.append(self.visual[name](block["tokens"], block["boxes"]))
            masks.append(block["mask"] & keep[:, e : e + 1])
        x, real = torch.cat(parts, dim=1), torch.cat(masks, dim=1)
        maps = []
        for layer in self.layers:
            x, weights = layer(x, ~real, attention)
            maps.append(weights)
        out = {"pooled": self.final_norm(x[:, 0]), "keep": keep}
        if attention:
            out["attention"] = maps
            out["blocks"] = self.block_lengths(text, visual)
        return out

    def block_lengths(self, text, visual) -> dict[str, int]:
        """Length of each block of the sequence, in order (``cls``, ``text``, encoders)."""
        lengths = {"cls": 1, "text": text["tokens"].shape[1]}
        return lengths | {name: visual[name]["tokens"].shape[1] for name in self.config.encoders}


def ve_dropout_mask(batch: int, n: int, p: float, device=None) -> torch.Tensor:
    """``[batch, n]`` keep-mask: each encoder dropped with probability p, never all of them."""
    keep = torch.rand(batch, n, device=device) >= p
    none_kept = ~keep.any(dim=1)
    if none_kept.any():
        restore = torch.randint(n, (int(none_kept.sum()),), device=device)
        keep[none_kept.nonzero().squeeze(1), restore] = True
    return keep
