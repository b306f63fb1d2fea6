"""Every registered encoder type, with tiny random-init variants of the same model classes."""

from __future__ import annotations

import socket

import pytest
import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
)

from vecomp.encoders.detector import build_detector, save_detector
from vecomp.encoders.factory import create_encoder
from vecomp.encoders.registry import ENCODERS, EncoderSpecError
from vecomp.weights import MissingWeightsError

VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2}


def _hf_folder(tmp_path_factory, name: str, model, size: int) -> str:
    """The model with an image processor that hands it ``size`` px, as a checkpoint's does."""
    folder = tmp_path_factory.mktemp(name)
    model.save_pretrained(folder)
    CLIPImageProcessor(
        image_mean=[0.5] * 3,
        image_std=[0.25] * 3,
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
    ).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, dict]:
    """One tiny spec per case; ``family`` and the expected token count per 32 px image."""
    torch.manual_seed(0)
    clip = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    )
    dino = Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        )
    )
    return {
        "timm_grid": ({"type": "timm_grid", "model": "resnet10t"}, "grid", None, 512),
        "timm_patch": (
            {"type": "timm_patch", "model": "vit_tiny_patch16_224", "model_kwargs": VIT},
            "patch",
            1 + 16,
            64,
        ),
        "hf_clip": (
            {"type": "hf_patch", "model": _hf_folder(tmp_path_factory, "clip", clip, 32)},
            "patch",
            1 + 16,
            32,
        ),
        "hf_dinov2": (
            {
                "type": "hf_patch",  # config says 28 px, its processor serves 42
                "model": _hf_folder(tmp_path_factory, "dino", dino, 42),
            },
            "patch",
            1 + 9,
            32,
        ),
        "frcnn_mini": (
            {
                "type": "torchvision_frcnn",
                "arch": "fasterrcnn_mini",
                "arch_kwargs": {"num_classes": 5, "image_size": 32},
                "max_regions": 6,
                "min_score": 0.0,
            },
            "region",
            None,
            256,
        ),
        "frcnn_resnet50": (
            {
                "type": "torchvision_frcnn",
                "arch": "fasterrcnn_resnet50_fpn",
                "arch_kwargs": {"min_size": 64, "max_size": 64},
                "max_regions": 4,
                "min_score": 0.0,
            },
            "region",
            None,
            1024,
        ),
        "probe_color": ({"type": "attribute_probe", "sees": "color"}, "probe", None, 7),
        "probe_shape": ({"type": "attribute_probe", "sees": "shape"}, "probe", None, 65),
        "probe_position": ({"type": "attribute_probe", "sees": "position"}, "probe", None, 3),
        # imported from files, not computed from images: tests/test_bottom_up.py
        "precomputed": (
            {"type": "precomputed", "files": {"coco": ["x.tsv"]}},
            "region",
            None,
            2048,
        ),
    }


CASES = [
    "timm_grid",
    "timm_patch",
    "hf_clip",
    "hf_dinov2",
    "frcnn_mini",
    "frcnn_resnet50",
    "probe_color",
    "probe_shape",
    "probe_position",
]


def test_every_registered_type_has_a_case(specs):
    create_encoder({"type": "timm_grid", "model": "resnet10t"})  # loads the registry
    assert {spec["type"] for spec, *_ in specs.values()} == set(ENCODERS)


@pytest.mark.parametrize("case", CASES)
def test_tokens_boxes_and_mask(specs, case):
    spec, family, n_tokens, dim = specs[case]
    encoder = create_encoder(spec)
    assert encoder.family == family and encoder.dim == dim
    size = encoder.preprocessing.get("input_size", [3, 32, 32])[1:]
    images = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = encoder(images)
    batch, tokens, width = out.tokens.shape
    assert (batch, width) == (2, dim)
    assert out.boxes.shape == (2, tokens, 4) and out.mask.shape == (2, tokens)
    if n_tokens is not None:
        assert tokens == n_tokens and bool(out.mask.all())
    assert out.mask.any(dim=1).all(), "every image has at least one token"
    real = out.boxes[out.mask]
    assert real.min() >= 0 and real.max() <= 1
    assert (real[:, 2] > real[:, 0]).all() and (real[:, 3] > real[:, 1]).all()
    with torch.no_grad():
        again = encoder(images)
    assert torch.equal(out.tokens, again.tokens), "eval mode must be deterministic"


@pytest.mark.parametrize("case", CASES)
def test_transform_follows_the_models_preprocessing(specs, case):
    from PIL import Image

    encoder = create_encoder(specs[case][0])
    tensor = encoder.transform()(Image.new("RGB", (50, 40), (255, 0, 0)))
    assert tensor.shape[0] == 3
    if "input_size" in encoder.preprocessing:
        assert list(tensor.shape[1:]) == encoder.preprocessing["input_size"][1:]


def test_grid_boxes_tile_the_image():
    from vecomp.encoders.base import grid_boxes

    boxes = grid_boxes(2, 3)
    assert boxes.shape == (6, 4)
    assert torch.allclose(boxes[0], torch.tensor([0, 0, 1 / 3, 0.5]))
    assert torch.allclose(boxes[-1], torch.tensor([2 / 3, 0.5, 1, 1]))


def test_timm_checkpoint_folder_round_trip(tmp_path):
    from timm.models import save_for_hf

    encoder = create_encoder(
        {"type": "timm_patch", "model": "vit_tiny_patch16_224", "model_kwargs": VIT}
    )
    save_for_hf(encoder.net, str(tmp_path), model_args=VIT, safe_serialization=True)
    loaded = create_encoder(
        {"type": "timm_patch", "model": "vit_tiny_patch16_224", "weights": str(tmp_path)}
    )
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(encoder(images).tokens, loaded(images).tokens)
    assert loaded.preprocessing["input_size"] == [3, 32, 32]


def test_detector_checkpoint_folder_round_trip(tmp_path):
    kwargs = {"num_classes": 5, "image_size": 32}
    save_detector(
        build_detector("fasterrcnn_mini", None, kwargs), tmp_path, "fasterrcnn_mini", kwargs
    )
    spec = {"type": "torchvision_frcnn", "weights": str(tmp_path), "min_score": 0.0}
    a, b = create_encoder(spec), create_encoder(spec)
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(images).tokens, b(images).tokens)
    assert a.preprocessing["arch"] == "fasterrcnn_mini"


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "timm_grid", "model": "resnet10t", "weights": "hub"},
        {"type": "hf_patch", "model": "openai/clip-vit-base-patch16"},
        {"type": "torchvision_frcnn", "weights": "hub"},
    ],
)
def test_missing_hub_weights_fail_at_once_naming_the_checkpoint(spec, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-vecomp-cache")
    attempts = []

    def no_network(sock, address):
        attempts.append(address)
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(MissingWeightsError, match="could not load the weights"):
        create_encoder(spec)
    assert len(attempts) <= 1  # no retry loop (bench/missing_weights.py times the failure)


def test_missing_local_weights_name_the_path(tmp_path):
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "nope")):
        create_encoder(
            {"type": "timm_grid", "model": "resnet10t", "weights": str(tmp_path / "nope")}
        )


def test_unknown_type_and_option_list_the_valid_ones():
    with pytest.raises(EncoderSpecError, match="valid types: .*timm_grid"):
        create_encoder({"type": "nope"})
    with pytest.raises(EncoderSpecError, match="has no option.*'depth'.*options: level, model"):
        create_encoder({"type": "timm_grid", "model": "resnet10t", "depth": 3})


def test_paper_profile_classes_build_at_full_size_with_random_weights():
    """The paper's encoders: same classes and sizes, random init (no download)."""
    grid = create_encoder({"type": "timm_grid", "model": "resnet50"})
    patch = create_encoder({"type": "timm_patch", "model": "vit_base_patch16_clip_224"})
    region = create_encoder({"type": "torchvision_frcnn", "arch": "fasterrcnn_resnet50_fpn"})
    assert (grid.dim, patch.dim, region.dim) == (2048, 768, 1024)


def test_weights_hash_covers_weights_and_config_but_not_metrics(tmp_path):
    from vecomp.weights import weights_hash

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    before = weights_hash(str(tmp_path))
    (tmp_path / "metrics.json").write_text('{"seconds": 1.5}')
    assert weights_hash(str(tmp_path)) == before
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert weights_hash(str(tmp_path)) != before
    assert weights_hash("hub") == "hub" and weights_hash(None) == "None"
