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
  token. Pre-LN rather than BERT's post-LN because, trained from scratch, it learned the demo's
  text-conditioned lookups (NLVR2's "The left image contains a red object.") in fewer steps
  when the layout was chosen (2026-11-27; the demo's settings have changed since).
- ``pooled`` is the final [CLS] state, normalised; the task heads live in ``heads.py``.

Two designs share everything above the text side (``FusionConfig.init``):

- **from scratch** (the demo's default): the language encoder is frozen and cached, and the
  fusion layers are trained from scratch, so that the whole sweep fits a CPU budget;
- **LM-initialised** (``init: bert-base-uncased``, the single-stream V+L models of the field:
  VisualBERT, VOLTA's, UNITER-style): the text enters as token ids through the pretrained
  model's own word, position and type embeddings, and the pretrained layers (post-LN, BERT's
  layout; their weights copied in by ``pretrained.py``) run over the joint sequence and are
  fine-tuned. The text's own [CLS] token is the pooled position. ``text_model`` records the
  pretrained architecture, so a checkpoint rebuilds without the pretrained weights.

``forward(..., attention=True)`` also returns every layer's head-averaged attention map for the
analysis.

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
    init: str | None = None  # a pretrained language model continued over the joint sequence
    text_model: dict | None = None  # its architecture (pretrained.architecture): set with init

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


class TextStates(TokenEmbedding):
    """From scratch: a frozen language encoder's cached token states, projected."""

    def __init__(self, dim: int, width: int, dropout: float) -> None:
        super().__init__(dim, width, with_boxes=False, dropout=dropout)

    def forward(self, text: dict[str, torch.Tensor]) -> torch.Tensor:
        return super().forward(text["tokens"])


class TextEmbeddings(nn.Module):
    """LM-initialised: BERT's embeddings of token ids (word + position + type 0, LayerNorm)."""

    def __init__(self, width: int, text_model: dict, dropout: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(text_model["vocab_size"], width)
        self.position_embeddings = nn.Embedding(text_model["max_positions"], width)
        self.token_type_embeddings = nn.Embedding(text_model["type_vocab_size"], width)
        self.norm = nn.LayerNorm(width, eps=text_model["layer_norm_eps"])
        self.dropout = nn.Dropout(dropout)

    def forward(self, text: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = text["ids"]
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings.weight[0]
        return self.dropout(self.norm(x))


ACTIVATIONS = {"gelu": nn.GELU, "gelu_new": lambda: nn.GELU("tanh"), "relu": nn.ReLU}


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

    def __init__(
        self,
        width: int,
        heads: int,
        ffn: int,
        dropout: float,
        activation: str = "gelu",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.attention = SelfAttention(width, heads, dropout)
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, ffn),
            ACTIVATIONS[activation](),
            nn.Linear(ffn, width),
            nn.Dropout(dropout),
        )
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, attention: bool):
        attended, weights = self.attention(self.norm1(x), padding, attention)
        x = x + self.dropout(attended)
        return x + self.feed_forward(self.norm2(x)), weights


class PostLNLayer(FusionLayer):
    """BERT's layer layout (LayerNorm after each residual sum), for pretrained weights."""

    def forward(self, x: torch.Tensor, padding: torch.Tensor, attention: bool):
        attended, weights = self.attention(x, padding, attention)
        x = self.norm1(x + self.dropout(attended))
        return self.norm2(x + self.feed_forward(x)), weights


class FusionModel(nn.Module):
    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        width, lm = config.width, config.text_model
        if lm is None:  # from scratch: a learned [CLS], pre-LN layers, a final LayerNorm
            self.cls = nn.Parameter(torch.randn(width) * 0.02)
            self.text = TextStates(config.text_dim, width, config.dropout)
            layer, options = FusionLayer, {}
        else:  # LM-initialised: the text's own [CLS], BERT's post-LN layers
            self.cls = None
            self.text = TextEmbeddings(width, lm, config.dropout)
            layer, options = (
                PostLNLayer,
                {"activation": lm["activation"], "eps": lm["layer_norm_eps"]},
            )
        self.visual = nn.ModuleDict(
            {
                name: TokenEmbedding(config.encoder_dims[name], width, True, config.dropout)
                for name in config.encoders
            }
        )
        self.layers = nn.ModuleList(
            layer(width, config.heads, config.ffn, config.dropout, **options)
            for _ in range(config.layers)
        )
        # post-LN layers end normalised; pre-LN ones need a final LayerNorm
        self.final_norm = nn.LayerNorm(width) if lm is None else nn.Identity()

    def forward(
        self,
        text: dict[str, torch.Tensor],
        visual: dict[str, dict[str, torch.Tensor]],
        keep: torch.Tensor | None = None,
        attention: bool = False,
    ) -> dict:
        """Pooled output ``[B, width]`` (and per-layer attention maps ``[B, L, L]``).

        ``text``: ``tokens [B, T, D]`` (cached states) or ``ids [B, T]`` (LM-initialised),
        ``mask [B, T]``; ``visual[name]``: ``tokens``, ``boxes``,
        ``mask`` for each encoder of the subset; ``keep [B, E]`` (bool, encoder order of the
        config) masks whole encoders, e.g. for inference with an encoder removed.
        """
        batch = text["mask"].shape[0]
        if keep is None:
            keep = torch.ones(batch, len(self.config.encoders), dtype=torch.bool)
        keep = keep.to(text["mask"].device)
        parts, masks = [self.text(text)], [text["mask"]]
        if self.cls is not None:
            parts.insert(0, self.cls.expand(batch, 1, -1))
            masks.insert(0, torch.ones(batch, 1, dtype=torch.bool, device=keep.device))
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
        """Length of each block of the sequence, in order (``cls``, ``text``, encoders); an
        LM-initialised model's ``cls`` is the text's own first token."""
        lengths = {"cls": 1, "text": text["mask"].shape[1] - (self.cls is None)}
        return lengths | {name: visual[name]["tokens"].shape[1] for name in self.config.encoders}

    def block_masks(self, text, visual, keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """Which positions of each block (as :meth:`block_lengths`) are real tokens: [B, n]."""
        words = text["mask"] if self.cls is not None else text["mask"][:, 1:]
        masks = {"cls": torch.ones_like(text["mask"][:, :1]), "text": words}
        for e, name in enumerate(self.config.encoders):
            masks[name] = visual[name]["mask"] & keep[:, e : e + 1]
        return masks


def ve_dropout_mask(batch: int, n: int, p: float, device=None) -> torch.Tensor:
    """``[batch, n]`` keep-mask: each encoder dropped with probability p, never all of them."""
    keep = torch.rand(batch, n, device=device) >= p
    none_kept = ~keep.any(dim=1)
    if none_kept.any():
        restore = torch.randint(n, (int(none_kept.sum()),), device=device)
        keep[none_kept.nonzero().squeeze(1), restore] = True
    return keep
