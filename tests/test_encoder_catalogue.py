"""The ready encoder entries of config/README.md, built from their real architectures, offline.

Each entry of the README's catalogue is checked by the encoder registry, then built with random
weights: timm and torchvision from their own architecture code (``weights`` dropped), the
transformers checkpoints from configs written here with the published hyperparameters (the
hub's ``config.json`` of each model, as its model card gives it) and saved to a local folder
with the model's image processor. One image goes through each; the token grid and width must be
the ones the published models produce, so a wrong input size, a lost CLS token or a feature map
of the wrong stage fails here rather than on a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from transformers import (
    BitImageProcessor,
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from vecomp.config import validate_config
from vecomp.encoders.factory import create_encoder
from vecomp.settings import SCHEMA

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
VIT_B = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}  # the B in B/16

# name -> (family, tokens per image, width) of the published model at its input size
EXPECTED = {
    "frcnn_r50_fpn": ("region", 36, 1024),  # up to 36: a random detector keeps them all at 0.0
    "frcnn_r50_fpn_v2": ("region", 36, 1024),
    "bottom_up": ("region", None, 2048),  # imported, not computed (tests/test_bottom_up.py)
    "clip_rn50": ("grid", 7 * 7, 2048),
    "resnet50_in1k": ("grid", 7 * 7, 2048),
    "clip_vit_b16": ("patch", 1 + 14 * 14, 768),
    "siglip_b16": ("patch", 14 * 14, 768),
    "dinov2_b14": ("patch", 1 + 16 * 16, 768),
    "clip_vit_b16_timm": ("patch", 1 + 14 * 14, 768),
}


def _clip(folder: Path) -> None:  # openai/clip-vit-base-patch16
    CLIPVisionModel(
        CLIPVisionConfig(
            **VIT_B, intermediate_size=3072, image_size=224, patch_size=16, hidden_act="quick_gelu"
        )
    ).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)  # resize 224 (shortest edge), crop 224


def _siglip(folder: Path) -> None:  # google/siglip-base-patch16-224
    SiglipVisionModel(
        SiglipVisionConfig(**VIT_B, intermediate_size=3072, image_size=224, patch_size=16)
    ).save_pretrained(folder)
    SiglipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)


def _dinov2(folder: Path) -> None:  # facebook/dinov2-base: trained last at 518, served at 224
    Dinov2Model(Dinov2Config(**VIT_B, mlp_ratio=4, patch_size=14, image_size=518)).save_pretrained(
        folder
    )
    BitImageProcessor(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        do_center_crop=True,
        image_mean=IMAGENET[0],
        image_std=IMAGENET[1],
    ).save_pretrained(folder)


HUB_ARCHITECTURES = {
    "openai/clip-vit-base-patch16": _clip,
    "google/siglip-base-patch16-224": _siglip,
    "facebook/dinov2-base": _dinov2,
}


def catalogue() -> dict[str, dict]:
    """The YAML block of config/README.md that lists the ready entries."""
    text = (ROOT / "config" / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]
    (entries,) = [b["encoders"] for b in blocks if isinstance(b, dict) and "encoders" in b]
    return entries


def random_weights(spec: dict, folder: Path) -> dict:
    """The spec built offline: random weights, transformers models from a local folder."""
    spec = {k: v for k, v in spec.items() if k != "weights"}
    if spec["type"] == "hf_patch":
        local = folder / spec["model"].replace("/", "--")
        if not local.exists():
            HUB_ARCHITECTURES[spec["model"]](local)
        spec["model"] = str(local)
    if spec["type"] == "torchvision_frcnn":
        spec["min_score"] = 0.0  # a random detector's scores are ~1/91
    return spec


def test_every_ready_entry_is_a_valid_config():
    entries = catalogue()
    assert set(entries) == set(EXPECTED), "add the entry's expected shape to EXPECTED"
    config = {
        "tasks": {"vqav2": {}, "gqa": {}, "nlvr2": {}},
        "encoders": entries,
        "data": {"source": "official"},
    }
    validate_config(config, SCHEMA)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ready_entry_builds_its_real_architecture(name, tmp_path_factory):
    spec = catalogue()[name]
    family, tokens, width = EXPECTED[name]
    torch.manual_seed(0)
    encoder = create_encoder(random_weights(spec, tmp_path_factory.getbasetemp()))
    assert (encoder.family, encoder.dim) == (family, width)
    if tokens is None:
        return
    image = Image.new("RGB", (640, 480), (120, 90, 60))
    with torch.inference_mode():
        out = encoder(encoder.transform()(image)[None])
    real = int(out.mask[0].sum())
    assert out.tokens.shape[-1] == width
    assert real == tokens if family != "region" else 1 <= real <= tokens
