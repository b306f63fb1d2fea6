"""The fusion model: shapes and masks for every encoder subset, VE-dropout, token pooling."""

from __future__ import annotations

import pytest
import torch

from vecomp.fusion.data import pool_tokens
from vecomp.fusion.heads import HEADS, build_task_model
from vecomp.fusion.model import FusionConfig, FusionModel, ve_dropout_mask
from vecomp.fusion.sweep import encoder_subsets

DIMS = {"region": 12, "grid": 10, "patch": 6}
LENGTHS = {"region": 5, "grid": 4, "patch": 7}


def _config(encoders, **kw) -> FusionConfig:
    return FusionConfig(
        encoders=tuple(encoders), encoder_dims=DIMS, text_dim=9, width=16, heads=2, ffn=32, **kw
    )


def _batch(encoders, size=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = {"tokens": torch.randn(size, 4, 9, generator=g), "mask": torch.ones(size, 4).bool()}
    text["mask"][0, 3] = False
    visual = {}
    for name in encoders:
        n = LENGTHS[name]
        lo = torch.rand(size, n, 2, generator=g) * 0.5
        mask = torch.ones(size, n, dtype=torch.bool)
        mask[1, n - 2 :] = False  # padding
        visual[name] = {
            "tokens": torch.randn(size, n, DIMS[name], generator=g),
            "boxes": torch.cat([lo, lo + 0.5], -1),
            "mask": mask,
        }
    return {"text": text, "visual": visual}


@pytest.mark.parametrize("encoders", encoder_subsets(DIMS))
def test_every_subset_gives_pooled_output_and_attention_maps(encoders):
    model = FusionModel(_config(encoders)).eval()
    batch = _batch(encoders)
    out = model(batch["text"], batch["visual"], attention=True)
    length = 1 + 4 + sum(LENGTHS[e] for e in encoders)
    assert out["pooled"].shape == (3, 16)
    assert len(out["attention"]) == 2
    assert all(a.shape == (3, length, length) for a in out["attention"])
    assert list(out["blocks"]) == ["cls", "text", *encoders]
    # padded tokens receive no attention
    assert out["attention"][0][1, :, length - 2 :].abs().max() == 0
    assert torch.allclose(out["attention"][1].sum(-1), torch.ones(3, length), atol=1e-5)


def test_the_fused_and_the_written_out_attention_give_the_same_output():
    """Training and evaluation run the fused kernel, the analysis the written-out softmax that
    returns the map: both must compute the same model."""
    encoders = ("grid", "region")
    model = FusionModel(_config(encoders)).eval()
    batch = _batch(encoders)
    fused = model(batch["text"], batch["visual"])["pooled"]
    written_out = model(batch["text"], batch["visual"], attention=True)["pooled"]
    assert torch.allclose(fused, written_out, atol=1e-5)


@pytest.mark.parametrize("encoders", [e for e in encoder_subsets(DIMS) if len(e) > 1])
def test_a_masked_encoder_cannot_influence_the_output(encoders):
    model = FusionModel(_config(encoders)).eval()
    batch = _batch(encoders)
    keep = torch.ones(3, len(encoders), dtype=torch.bool)
    keep[:, 0] = False
    before = model(batch["text"], batch["visual"], keep)["pooled"]
    batch["visual"][encoders[0]]["tokens"] = torch.randn_like(
        batch["visual"][encoders[0]]["tokens"]
    )
    after = model(batch["text"], batch["visual"], keep)["pooled"]
    torch.testing.assert_close(before, after)
    unmasked = model(batch["text"], batch["visual"])["pooled"]
    assert not torch.allclose(before, unmasked)


def test_each_encoder_token_carries_its_position_and_its_encoders_type():
    encoders = ("grid", "region")
    model = FusionModel(_config(encoders)).eval()
    batch = _batch(encoders)
    before = model(batch["text"], batch["visual"])["pooled"]
    boxes = batch["visual"]["region"]["boxes"]
    batch["visual"]["region"]["boxes"] = boxes.flip(1)  # the same tokens, other positions
    moved = model(batch["text"], batch["visual"])["pooled"]
    assert not torch.allclose(before, moved)
    batch["visual"]["region"]["boxes"] = boxes
    with torch.no_grad():
        # not a constant: the LayerNorm after the sum would remove a uniform shift
        model.visual["grid"].type_embedding.add_(torch.linspace(-1, 1, 16))
    assert not torch.allclose(before, model(batch["text"], batch["visual"])["pooled"])
    assert set(dict(model.named_parameters())) >= {
        "visual.grid.type_embedding",
        "visual.region.type_embedding",
        "text.type_embedding",
    }


def test_ve_dropout_never_drops_every_encoder():
    torch.manual_seed(0)
    keep = ve_dropout_mask(5000, 3, 0.9)
    assert keep.any(dim=1).all()
    assert 0.05 < keep.float().mean() < 0.5  # still drops most of the time
    assert ve_dropout_mask(100, 3, 0.0).all()


def test_ve_dropout_applies_in_training_only_and_spares_single_encoders():
    torch.manual_seed(0)
    model = build_task_model("classification", _config(("region", "grid"), ve_dropout=0.5), 3)
    batch = _batch(("region", "grid"), size=64)
    model.train()
    assert not model.keep_mask(batch, None).all()
    assert model.keep_mask(batch, None).any(dim=1).all()
    model.eval()
    assert model.keep_mask(batch, None).all()
    single = build_task_model("classification", _config(("grid",), ve_dropout=0.5), 3).train()
    assert single.keep_mask(batch, None).all()


def test_one_ve_dropout_draw_per_example_shared_by_both_images_of_a_pair(monkeypatch):
    torch.manual_seed(0)
    encoders = ("region", "grid")
    model = build_task_model("pair", _config(encoders, ve_dropout=0.5), 2).train()
    batch = _batch(encoders, size=256)
    batch["visual_2"] = _batch(encoders, size=256, seed=1)["visual"]
    seen = []
    forward = model.fusion.forward
    monkeypatch.setattr(
        model.fusion, "forward", lambda *a, **k: seen.append(forward(*a, **k)) or seen[-1]
    )
    model(batch)
    first, second = (out["keep"] for out in seen)
    assert torch.equal(first, second)
    assert first.any(dim=1).all() and not first.all()
    assert 0.55 < first.float().mean() < 0.72  # 1 - p, plus the restored encoder: 0.625


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_every_head_gives_logits_and_a_finite_loss(kind):
    encoders = ("region", "patch")
    model = build_task_model(kind, _config(encoders), 5)
    batch = _batch(encoders, size=4)
    batch["visual_2"] = _batch(encoders, size=4, seed=1)["visual"]
    logits = model(batch)
    targets = {
        "vqa": torch.rand(4, 5),
        "classification": torch.tensor([0, 1, 2, 4]),
        "pair": torch.tensor([0, 1, 2, 4]),
        "retrieval": torch.tensor([1.0, 0.0, 1.0, 0.0]),
    }[kind]
    assert logits.shape == ((4,) if kind == "retrieval" else (4, 5))
    loss = model.loss(logits, targets)
    assert torch.isfinite(loss)
    loss.backward()


def test_vqa_loss_is_the_summed_soft_score_bce_averaged_over_questions():
    model = build_task_model("vqa", _config(("grid",)), 3)
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
    targets = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.6, 0.9]])
    p = torch.sigmoid(logits)
    per_answer = targets * torch.log(p) + (1 - targets) * torch.log(1 - p)
    by_hand = -per_answer.sum(1).mean()
    torch.testing.assert_close(model.loss(logits, targets), by_hand)


def test_pooling_averages_cells_and_keeps_whole_image_tokens():
    # a CLS token covering the image, then a 4 x 4 grid of cells with value = cell index
    cells = torch.arange(16)
    x0, y0 = (cells % 4) / 4, (cells // 4) / 4
    boxes = torch.cat(
        [torch.tensor([[0, 0, 1, 1.0]]), torch.stack([x0, y0, x0 + 0.25, y0 + 0.25], 1)]
    )
    tokens = torch.cat([torch.full((1, 2), -1.0), cells.float()[:, None].expand(16, 2)])
    block = {"tokens": tokens[None], "boxes": boxes[None], "mask": torch.ones(1, 17).bool()}
    out = pool_tokens(block, 2)
    assert out["tokens"].shape == (1, 5, 2) and out["mask"].all()
    assert out["tokens"][0, 0, 0] == -1  # CLS first, untouched
    # the top-left 2 x 2 cell holds grid cells 0, 1, 4, 5
    assert out["tokens"][0, 1, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    torch.testing.assert_close(out["boxes"][0, 1], torch.tensor([0, 0, 0.5, 0.5]))
    torch.testing.assert_close(out["boxes"][0, 4], torch.tensor([0.5, 0.5, 1, 1.0]))


def test_pooling_ignores_padding():
    boxes = torch.tensor([[[0, 0, 0.5, 0.5], [0.5, 0, 1, 0.5], [0, 0, 0.5, 0.5]]])
    block = {
        "tokens": torch.tensor([[[1.0], [3.0], [100.0]]]),
        "boxes": boxes,
        "mask": torch.tensor([[True, True, False]]),
    }
    out = pool_tokens(block, 2)
    assert out["mask"].sum() == 2
    assert out["tokens"][0, out["mask"][0], 0].tolist() == [1.0, 3.0]
