"""Pretraining of the demo's three encoders: outputs, loadability, learning, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from vecomp.demo.pretrain import PRETRAINERS, grid, main, patch, pretrain, region
from vecomp.demo.pretrain.data import (
    PretrainSpecError,
    make_optimizer,
    normalize,
    optimizer_step,
    resolve_spec,
    sample_scenes,
    scene_set,
    seeded,
)
from vecomp.demo.synthetic.scenes import Scene, SceneObject
from vecomp.encoders.factory import create_encoder
from vecomp.errors import VecompError

SMALL = {"n_train": 48, "n_heldout": 16, "epochs": 1, "batch_size": 16}
TINY = {"grid": SMALL, "patch": SMALL, "region": SMALL}
CHECKPOINT_FILES = {"config.json", "model.safetensors"}
# family -> (tokens per image or None when it varies, token size) on 64 px images
TOKENS = {"grid": (4, 512), "patch": (65, 128), "region": (None, 256)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Each objective trained once at a tiny size, through the command line."""
    root = tmp_path_factory.mktemp("encoders")
    for objective, spec in TINY.items():
        out = root / objective
        argv = ["--objective", objective, "--spec", json.dumps(spec), "--out", str(out)]
        assert main(argv) == 0
    return {objective: root / objective for objective in TINY}


@pytest.mark.parametrize("objective", sorted(TINY))
def test_output_folder_holds_checkpoint_metrics_and_spec(trained, objective):
    out = trained[objective]
    assert {p.name for p in out.iterdir()} == CHECKPOINT_FILES | {"metrics.json", "encoder.json"}
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["train_loss"]) == 1 and all(map(math.isfinite, metrics["train_loss"]))
    assert metrics["n_images"] == {"train": 48, "heldout": 16} and metrics["seed"] == 0
    assert metrics["heldout"] and metrics["heldout_at_init"]
    assert not {"seconds", "cpu_seconds"} & set(metrics)  # timings go to the log only
    assert {"python", "torch", "torchvision", "timm"} <= set(metrics["versions"])
    encoder = json.loads((out / "encoder.json").read_text())
    assert encoder["weights"] == str(out)


@pytest.mark.parametrize("objective", sorted(TINY))
def test_checkpoint_loads_as_encoder_of_its_family(trained, objective):
    encoder = create_encoder(json.loads((trained[objective] / "encoder.json").read_text()))
    assert encoder.family == objective
    with torch.no_grad():
        out = encoder(torch.rand(2, 3, 64, 64))
    count, dim = TOKENS[objective]
    assert out.tokens.shape[0] == 2 and out.tokens.shape[2] == dim == encoder.dim
    assert count is None or out.tokens.shape[1] == count
    assert out.mask.any(1).all() and out.boxes.shape == (*out.tokens.shape[:2], 4)
    assert torch.isfinite(out.tokens).all()


@pytest.mark.parametrize("objective", sorted(TINY))
def test_same_seed_gives_identical_checkpoint_bytes(trained, objective, tmp_path):
    again = tmp_path / objective
    pretrain(objective, TINY[objective], again)
    for name in CHECKPOINT_FILES:
        assert (again / name).read_bytes() == (trained[objective] / name).read_bytes(), name


@pytest.mark.parametrize("threads", [1, 3])
def test_training_runs_with_the_specs_threads_and_gives_the_callers_back(
    tmp_path, monkeypatch, threads
):
    seen, train = [], grid.train

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return train(*args, **kwargs)

    monkeypatch.setattr(grid, "train", recording)
    before = torch.get_num_threads()
    metrics = pretrain("grid", {**SMALL, "threads": threads}, tmp_path / "grid")
    assert seen == [threads] and metrics["spec"]["threads"] == threads
    assert torch.get_num_threads() == before
    assert resolve_spec("grid", grid.DEFAULTS, {})["threads"] == 2  # fixed, not the machine's


def test_a_failed_run_leaves_no_output_and_keeps_an_old_one(tmp_path, monkeypatch):
    def crash(spec, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("out of memory")

    monkeypatch.setitem(PRETRAINERS, "grid", crash)
    with pytest.raises(RuntimeError):
        pretrain("grid", {}, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old"
    old.mkdir()
    (old / "marker").write_text("previous run")
    with pytest.raises(RuntimeError):
        pretrain("grid", {}, old)
    assert [p.name for p in tmp_path.iterdir()] == ["old"]
    assert (old / "marker").read_text() == "previous run"


def _losses(loss_fn, params, steps: int = 6, lr: float = 3e-3) -> list[float]:
    optimizer, _ = make_optimizer(params, {"lr": lr, "weight_decay": 0.0}, steps)
    return [optimizer_step(optimizer, loss_fn(), params) for _ in range(steps)]


def test_grid_loss_decreases_on_a_fixed_batch():
    spec = resolve_spec("grid", grid.DEFAULTS, {"n_train": 16})
    batch = scene_set(spec, "grid", "train")
    images, targets = normalize(batch.images), grid.attribute_targets(batch.scenes)
    with seeded(0):
        model = grid.build_model(spec).train()
        losses = _losses(lambda: grid.batch_loss(model, images, targets), list(model.parameters()))
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]


def test_patch_loss_decreases_on_a_fixed_batch():
    spec = resolve_spec("patch", patch.DEFAULTS, {"n_train": 16})
    batch = scene_set(spec, "patch", "train")
    captions = [cs[0] for cs in patch.caption_sets(batch.scenes, spec, "train", 1)]
    vocabulary = patch.build_vocabulary(captions)
    bags = patch.bags(captions, vocabulary)
    images = normalize(batch.images)
    with seeded(0):
        model = patch.ImageTextModel(patch.build_vit(spec), len(vocabulary), spec).train()
        losses = _losses(lambda: model(images, bags), list(model.parameters()), lr=1e-3)
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]


def test_region_loss_decreases_on_a_fixed_batch():
    spec = resolve_spec("region", region.DEFAULTS, {"n_train": 8})
    batch = scene_set(spec, "region", "train")
    targets = [region.targets_for(scene, 64) for scene in batch.scenes]
    with seeded(0):
        model = region.build_model(spec).train()
        losses = _losses(
            lambda: region.batch_loss(model, batch.images, targets), list(model.parameters())
        )
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]


def test_scenes_come_from_separate_seeded_streams():
    spec = resolve_spec("grid", grid.DEFAULTS, {"n_train": 6, "n_heldout": 4})
    train, heldout = sample_scenes(spec, "grid", "train"), sample_scenes(spec, "grid", "heldout")
    assert train == sample_scenes(spec, "grid", "train")  # deterministic
    assert not {s.objects for s in train} & {s.objects for s in heldout}
    bigger = resolve_spec("grid", grid.DEFAULTS, {"n_train": 9, "n_heldout": 4})
    assert sample_scenes(bigger, "grid", "heldout") == heldout  # held-out set does not move
    assert sample_scenes(spec, "patch", "train") != train  # each objective has its own data
    images = scene_set(spec, "grid", "train").images
    assert images.shape == (6, 3, 64, 64) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def test_labels_follow_the_visible_objects():
    scene = Scene(
        "s",
        (
            SceneObject("circle", "red", "large", 0.25, 0.25),
            SceneObject("cross", "orange", "small", 0.75, 0.75),
            SceneObject("square", "blue", "small", 0.5, 0.5, hidden=True),
        ),
    )
    present = {grid.ATTRIBUTES[i] for i in grid.attribute_targets([scene])[0].nonzero().flatten()}
    assert present == {
        ("color", "red"),
        ("color", "orange"),
        ("shape", "circle"),
        ("shape", "cross"),
        ("size", "large"),
        ("size", "small"),
    }
    target = region.targets_for(scene, 64)
    assert target["labels"].tolist() == [1, len(region.CLASSES) - 1]  # red circle, orange cross
    assert torch.allclose(target["boxes"][0], torch.tensor([7.68, 7.68, 24.32, 24.32]))


def test_spec_errors_are_user_errors():
    with pytest.raises(PretrainSpecError, match="no option"):
        resolve_spec("grid", grid.DEFAULTS, {"epoch": 3})
    with pytest.raises(PretrainSpecError, match="positive integer"):
        resolve_spec("grid", grid.DEFAULTS, {"epochs": 0})
    with pytest.raises(PretrainSpecError, match="threads must be a positive integer"):
        resolve_spec("patch", patch.DEFAULTS, {"threads": 0})
    with pytest.raises(PretrainSpecError, match="roi_batch_size must be a positive integer"):
        resolve_spec("region", region.DEFAULTS, {"roi_batch_size": 1.5})
    with pytest.raises(PretrainSpecError, match="n_objects"):
        resolve_spec("patch", patch.DEFAULTS, {"n_objects": [4, 2]})
    with pytest.raises(PretrainSpecError, match="timm has no model"):
        grid.build_model(resolve_spec("grid", grid.DEFAULTS, {"model": "resnet_nope"}))
    with pytest.raises(VecompError, match="unknown pretraining objective"):
        pretrain("pixels", {}, Path("unused"))
    with pytest.raises(VecompError, match="not valid JSON"):
        main(["--objective", "grid", "--spec", "{epochs: 2}", "--out", "unused"])


# A few hundred scenes and epochs (about 5 s each): enough to leave the random initialisation
# well behind on held-out scenes, in each objective's own held-out measure.
BEATS_INIT = {
    "grid": ({"n_train": 256, "n_heldout": 64, "epochs": 3, "batch_size": 32}, "macro_ap", 0.15),
    "patch": (
        {"n_train": 256, "n_heldout": 64, "epochs": 4, "batch_size": 32},
        "image_to_text_r5",
        0.08,
    ),
    "region": (
        {"n_train": 128, "n_heldout": 32, "epochs": 3, "batch_size": 16},
        "recall_iou50_top10",
        0.2,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("objective", sorted(BEATS_INIT))
def test_pretraining_beats_its_initialisation_on_held_out_scenes(objective, tmp_path):
    spec, measure, margin = BEATS_INIT[objective]
    metrics = pretrain(objective, spec, tmp_path / objective)
    trained, at_init = metrics["heldout"][measure], metrics["heldout_at_init"][measure]
    assert trained > at_init + margin, (measure, trained, at_init)
