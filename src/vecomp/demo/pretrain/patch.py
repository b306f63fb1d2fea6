"""Patch objective: a small timm ViT learns from captions, contrastively (CLIP-style).

Image side: the ViT's pooled tokens (the mean patch token by default), projected. Text side: a
small bag-of-words tower (unigram and bigram counts of the caption -> MLP), its vocabulary taken
from the training captions; bigrams such as "red circle" or "triangle above" let it bind a colour
to a shape and a shape to a relation. Loss: symmetric InfoNCE over the batch with a learnable
temperature. Each epoch pairs every image with one of its ``captions_per_image`` captions
(``captions_for``), drawn afresh. Scenes carry occluders by default, so this encoder's data
differ from the grid and region encoders'.

Spec keys (defaults): ``model`` ("vit_tiny_patch16_224"), ``patch_size`` (8), ``embed_dim`` (128),
``depth`` (4), ``num_heads`` (4), ``global_pool`` ("avg": the image embedding is the mean patch
token; "token": the CLS token), ``proj_dim`` (64, the shared embedding), ``text_width`` (256),
``temperature`` (0.07, initial), ``captions_per_image`` (5), ``seed`` (0), ``image_size`` (64),
``n_train`` (2000), ``n_heldout`` (256), ``epochs`` (8), ``batch_size`` (64), ``lr`` (0.001),
``weight_decay`` (0.05), ``n_objects`` ([1, 5]), ``occluder_prob`` (0.3), ``threads`` (2, part of
the recipe: :mod:`.data`).

Only the ViT is saved (``save_for_hf`` with its size arguments as ``model_args``), loadable as
``{"type": "timm_patch", "model": <model>, "weights": <folder>}``; the encoder hands over all its
tokens (CLS first), whatever ``global_pool``. Held-out metrics: recall@1 and @5 of image->text and
text->image retrieval among ``n_heldout`` images with ``captions_per_image`` captions each (the
COCO protocol); a hit is an item whose captions include the query's word for word, as generic
captions ("A grey cloud covering ...") repeat across images.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..synthetic.captions import captions_for
from ..synthetic.scenes import Scene
from .data import PretrainSpecError, normalize, resolve_spec, save_timm, scene_set, seeded, train

DEFAULTS = {
    "model": "vit_tiny_patch16_224",
    "patch_size": 8,
    "embed_dim": 128,
    "depth": 4,
    "num_heads": 4,
    "global_pool": "avg",
    "proj_dim": 64,
    "text_width": 256,
    "temperature": 0.07,
    "captions_per_image": 5,
    "seed": 0,
    "image_size": 64,
    "n_train": 2000,
    "n_heldout": 256,
    "epochs": 8,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "n_objects": [1, 5],
    "occluder_prob": 0.3,
}
VIT_ARGS = ("patch_size", "embed_dim", "depth", "num_heads", "global_pool")
MAX_LOGIT_SCALE = math.log(100.0)


def tokens(caption: str) -> list[str]:
    """Lower-cased words and word bigrams: "A red circle." -> a, red, circle, a_red, red_circle."""
    words = re.findall(r"[a-z]+", caption.lower())
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]


def build_vocabulary(captions: list[str]) -> dict[str, int]:
    """Every token of the training captions, in sorted order (so the seed fixes the indices)."""
    return {token: i for i, token in enumerate(sorted({t for c in captions for t in tokens(c)}))}


def bags(captions: list[str], vocabulary: dict[str, int]) -> torch.Tensor:
    """[N, V] token frequencies (rows sum to 1; tokens outside the vocabulary are dropped)."""
    out = torch.zeros(len(captions), len(vocabulary))
    for row, caption in enumerate(captions):
        for token, count in Counter(tokens(caption)).items():
            if token in vocabulary:
                out[row, vocabulary[token]] = count
    return out / out.sum(1, keepdim=True).clamp(min=1)


def caption_sets(scenes: list[Scene], spec: dict, split: str, n: int) -> list[list[str]]:
    """``n`` captions per scene, from the patch objective's own caption stream of ``split``."""
    rng = random.Random(f"{spec['seed']}:pretrain:patch:{split}:captions")
    return [captions_for(scene, rng, n) for scene in scenes]


def build_vit(spec: dict) -> nn.Module:
    import timm  # where used: a config check imports this module for its DEFAULTS

    if not timm.is_model(spec["model"]):
        raise PretrainSpecError(f"pretrain patch: timm has no model {spec['model']!r}")
    return timm.create_model(
        spec["model"],
        pretrained=False,
        img_size=spec["image_size"],
        num_classes=0,
        **{k: spec[k] for k in VIT_ARGS},
    )


class ImageTextModel(nn.Module):
    """The ViT and the text tower, mapping both into one ``proj_dim`` space."""

    def __init__(self, vit: nn.Module, vocabulary_size: int, spec: dict):
        super().__init__()
        self.vit = vit
        self.image_proj = nn.Linear(vit.num_features, spec["proj_dim"])
        self.text = nn.Sequential(
            nn.Linear(vocabulary_size, spec["text_width"]),
            nn.GELU(),
            nn.Linear(spec["text_width"], spec["proj_dim"]),
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / spec["temperature"])))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] normalised -> unit vectors [B, proj_dim] (from the pooled tokens)."""
        return F.normalize(self.image_proj(self.vit(images)), dim=-1)

    def encode_texts(self, bags: torch.Tensor) -> torch.Tensor:
        """[B, V] bags of tokens -> unit vectors [B, proj_dim]."""
        return F.normalize(self.text(bags), dim=-1)

    def forward(self, images: torch.Tensor, bags: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE: pair i is the positive of row i and of column i of [B, B] logits."""
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        logits = scale * self.encode_images(images) @ self.encode_texts(bags).T
        target = torch.arange(len(images))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def caption_matches(image_captions: list[list[str]]) -> tuple[list[str], torch.Tensor]:
    """All captions flattened [N * C], and [N, N * C] bool: caption j is word for word one of
    image i's (its own, or a generic one such as "A grey cloud covering ..." that it shares)."""
    flat = [c for cs in image_captions for c in cs]
    ids = {c: i for i, c in enumerate(dict.fromkeys(flat))}
    caption_ids = torch.tensor([ids[c] for c in flat])  # [N * C]
    image_ids = caption_ids.view(len(image_captions), -1)  # [N, C]
    return flat, (image_ids[:, :, None] == caption_ids[None, None, :]).any(1)


def recall(hits: torch.Tensor, ranked: torch.Tensor, k: int) -> float:
    """Share of queries with a hit among their ``k`` best; hits [Q, M] bool, ranked [Q, M]."""
    return round(float(hits.gather(1, ranked[:, :k]).any(1).float().mean()), 4)


@torch.no_grad()
def retrieval(
    model: ImageTextModel,
    images: torch.Tensor,
    image_captions: list[list[str]],
    vocabulary: dict[str, int],
) -> dict:
    """Recall@1 and @5 both ways, COCO-style: N images [N, 3, S, S], C captions each."""
    model.eval()
    captions, matches = caption_matches(image_captions)  # matches [N, N * C]
    sims = model.encode_images(images) @ model.encode_texts(bags(captions, vocabulary)).T
    to_text, to_image = sims.argsort(1, descending=True), sims.T.argsort(1, descending=True)
    return {
        "image_to_text_r1": recall(matches, to_text, 1),
        "image_to_text_r5": recall(matches, to_text, 5),
        "text_to_image_r1": recall(matches.T, to_image, 1),
        "text_to_image_r5": recall(matches.T, to_image, 5),
        "chance_r1": round(float(matches.float().mean()), 4),
    }


def save(vit: nn.Module, folder: Path, spec: dict) -> None:
    """The ViT alone, with the arguments that rebuild its shape."""
    model_args = {"img_size": spec["image_size"], **{k: spec[k] for k in VIT_ARGS}}
    save_timm(vit, folder, spec, model_args=model_args)


def pretrain(spec: dict | None, folder: Path) -> dict:
    """Train, evaluate and save into ``folder``; the encoder spec (without weights) and metrics."""
    spec = resolve_spec("patch", DEFAULTS, spec)
    train_set, heldout = scene_set(spec, "patch", "train"), scene_set(spec, "patch", "heldout")
    train_captions = caption_sets(train_set.scenes, spec, "train", spec["captions_per_image"])
    vocabulary = build_vocabulary([c for cs in train_captions for c in cs])
    train_bags = torch.stack([bags(cs, vocabulary) for cs in train_captions])  # [N, C, V]
    heldout_captions = caption_sets(heldout.scenes, spec, "heldout", spec["captions_per_image"])
    images, heldout_images = normalize(train_set.images), normalize(heldout.images)
    with seeded(spec["seed"], spec["threads"]):
        model = ImageTextModel(build_vit(spec), len(vocabulary), spec)
        at_init = retrieval(model, heldout_images, heldout_captions, vocabulary)
        pick = torch.Generator().manual_seed(spec["seed"] + 1)

        def batch_loss(indices: torch.Tensor) -> torch.Tensor:
            choice = torch.randint(train_bags.shape[1], (len(indices),), generator=pick)
            return model(images[indices], train_bags[indices, choice])

        losses = train(model, batch_loss, len(images), spec)
    save(model.vit, folder, spec)
    metrics = {
        "train_loss": losses,
        "heldout": retrieval(model, heldout_images, heldout_captions, vocabulary),
        "heldout_at_init": at_init,
        "vocabulary_size": len(vocabulary),
        "temperature": round(float(1.0 / model.logit_scale.detach().exp()), 4),
    }
    return {
        "encoder": {"type": "timm_patch", "model": spec["model"]},
        "spec": spec,
        "metrics": metrics,
    }
