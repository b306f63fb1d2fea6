"""Training and evaluation of fusion runs on toy tasks: learning, resume, determinism, errors."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.cli_args import vecomp_args
from tests.fusion_fixtures import ENCODERS, toy_task
from vecomp import cli
from vecomp.devices import pick_device
from vecomp.errors import VecompError
from vecomp.fusion import train as train_module
from vecomp.fusion.data import AHEAD, TaskData
from vecomp.fusion.evaluate import evaluate
from vecomp.fusion.train import (
    RESUME,
    Run,
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    load_checkpoint,
    train_run,
)

MODEL = {"width": 32, "layers": 2, "heads": 2, "ffn": 64, "dropout": 0.0}
FAST = TrainConfig(epochs=8, batch_size=16, lr=0.01, device="cpu", threads=1)
KINDS = {"gqa": "classification", "vqav2": "vqa", "nlvr2": "pair", "coco_retrieval": "retrieval"}


def _data(paths, task="gqa", encoders=ENCODERS, negatives=1):
    stores = {e: paths["stores"][e] for e in encoders}
    return TaskData(task, paths["prepared"], paths["text"], stores, negatives=negatives)


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    return {
        task: toy_task(tmp_path_factory.mktemp(task), task, kind) for task, kind in KINDS.items()
    }


def _train(toys, tmp_path, task="gqa", encoders=ENCODERS, seed=0, ve_dropout=0.0, config=FAST):
    run = Run(task, tuple(encoders), seed, ve_dropout)
    return train_run(run, _data(toys[task], task, encoders), MODEL, config, tmp_path)


def test_vqa_batches_carry_each_rows_soft_scores_and_nothing_else(toys):
    data = _data(toys["vqav2"], task="vqav2")
    rows = data.split("train").head(3).copy()
    rows["target_ids"] = [[1, 0], [], [0]]  # a question whose answers are all out of vocabulary
    rows["target_scores"] = [[1.0, 0.3], [], [0.6]]
    targets = data.collate(rows)["targets"]
    assert targets.dtype == torch.float32
    assert torch.equal(targets, torch.tensor([[0.3, 1.0], [0.0, 0.0], [0.6, 0.0]]))


def test_a_tiny_run_learns_the_separable_toy(toys, tmp_path):
    metrics = _train(toys, tmp_path)
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["test"]["accuracy"] >= 85  # chance is 50
    for name in ("metrics.json", "predictions.parquet", "masked.csv", "checkpoint.pt"):
        assert (tmp_path / name).exists()
    assert not (tmp_path / RESUME).exists()


def test_masking_hurts_exactly_where_the_planted_information_lives(toys, tmp_path):
    _train(toys, tmp_path)
    masked = pd.read_csv(tmp_path / "masked.csv")
    accuracy = masked[masked.metric == "accuracy"].set_index("kept")["value"]
    assert len(accuracy) == 7  # every non-empty subset of three encoders kept
    full = accuracy["sees_a+sees_b+noise"]
    assert accuracy["sees_a+sees_b"] >= full - 5  # the noise encoder is not needed
    assert accuracy["sees_b+noise"] < full - 20  # without a, the a-questions fail
    assert accuracy["sees_a+noise"] < full - 20
    assert set(masked.columns) == {
        "task",
        "encoders",
        "seed",
        "ve_dropout",
        "matched",
        "kept",
        "masked",
        "metric",
        "value",
    }


@pytest.mark.parametrize("task", ["vqav2", "nlvr2", "coco_retrieval"])
def test_every_task_kind_trains_and_reports_its_official_metrics(toys, tmp_path, task):
    metrics = _train(toys, tmp_path, task, ("sees_a", "sees_b"))
    expected = {
        "vqav2": {"accuracy", "accuracy/yes/no"},
        "nlvr2": {"accuracy", "consistency"},
        "coco_retrieval": {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum"},
    }[task]
    assert set(metrics["test"]) == expected
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    assert len(predictions) == len(pd.read_parquet(toys[task]["prepared"] / "test.parquet"))
    if task == "vqav2":
        assert metrics["test"]["accuracy"] > 75  # a learnable yes/no toy; chance ~ 50


def test_vqa_evaluation_applies_the_metric_options_labels_json_records(toys, tmp_path):
    prepared = tmp_path / "prepared"
    shutil.copytree(toys["vqav2"]["prepared"], prepared)
    label_file = json.loads((prepared / "labels.json").read_text())
    (prepared / "labels.json").write_text(
        json.dumps(label_file | {"metric": {"normalise_unanimous": True}})
    )
    paths = {**toys["vqav2"], "prepared": prepared}
    data = _data(paths, "vqav2", ("sees_a", "sees_b"))
    assert data.metric_options == {"normalise_unanimous": True}
    trainer = Trainer(Run("vqav2", ("sees_a", "sees_b"), 0, 0.0), data, MODEL, FAST)
    trainer.fit()
    # ten annotators agree, each writing the answer as "Yes." / "No.": the official evaluator
    # compares unanimous answers as written (no credit), the recorded option normalises them
    test = data.split("test")
    data.splits["test"] = test.assign(answers=[[f"{a.capitalize()}."] * 10 for a in test.answer])
    relaxed, _ = evaluate(trainer.model, data, "test")
    data.metric_options = {}
    official, _ = evaluate(trainer.model, data, "test")
    assert official["accuracy"] == 0.0
    assert relaxed["accuracy"] > 75


def test_retrieval_shortlist_reranks_only_the_top_k(toys, monkeypatch):
    data = _data(toys["coco_retrieval"], "coco_retrieval", ("sees_a", "sees_b"))
    trainer = Trainer(Run("coco_retrieval", ("sees_a", "sees_b"), 0, 0.0), data, MODEL, FAST)
    trainer.fit()
    n_images, n_texts = 16, 32
    scored = []
    forward = trainer.model.forward

    def counting(batch, keep=None):
        scored.append(len(batch["targets"]) if "targets" in batch else len(keep))
        return forward(batch, keep)

    monkeypatch.setattr(trainer.model, "forward", counting)
    full, _ = trainer.evaluate("test")
    assert sum(scored) == n_images * n_texts  # no k: every pair
    for k in (2, n_images - 1):
        scored.clear()
        trainer.train = TrainConfig(**{**FAST.__dict__, "rerank_top_k": k})
        shortlisted, _ = trainer.evaluate("test")
        assert 0 < sum(scored) <= min((n_images + n_texts) * k, n_images * n_texts - 1)
        assert set(shortlisted) == set(full)
    assert sum(scored) > (n_images + n_texts) * 2  # k = 15 scores more than k = 2 did


def test_retrieval_scores_each_pair_padded_only_to_its_batchs_longest_caption(toys, monkeypatch):
    data = _data(toys["coco_retrieval"], "coco_retrieval", ("sees_a", "sees_b"))
    trainer = Trainer(Run("coco_retrieval", ("sees_a", "sees_b"), 0, 0.0), data, MODEL, FAST)
    trainer.fit()
    model, lengths = trainer.model, []
    forward = model.forward

    def recording(batch, keep=None):
        lengths.append(batch["text"]["mask"].sum(1))
        assert batch["text"]["tokens"].shape[1] == int(lengths[-1].max())  # no padding-only column
        return forward(batch, keep)

    alone, _ = evaluate(model, data, "test", batch_size=1)  # every pair at its own length
    monkeypatch.setattr(model, "forward", recording)
    batched, predictions = evaluate(model, data, "test", batch_size=64)
    assert batched == pytest.approx(alone)
    assert torch.equal(torch.cat(lengths), torch.cat(lengths).sort().values)  # short ones first
    assert len(set(torch.cat(lengths).tolist())) == 2  # the toy's captions have two lengths
    assert len(predictions) == len(data.split("test"))


def test_the_model_of_the_best_dev_epoch_is_the_one_evaluated_on_test(toys, monkeypatch):
    data = _data(toys["gqa"])
    trainer = Trainer(Run("gqa", ENCODERS, 0, 0.0), data, MODEL, FAST)
    curve, states = iter([50.0, 80.0, 60.0, 80.0, 70.0, 65.0, 75.0, 79.0]), []
    evaluate_for_real = trainer.evaluate

    def planted_dev(split, kept=None):
        if split != "dev":
            return evaluate_for_real(split, kept)
        states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        return {"accuracy": next(curve)}, None

    monkeypatch.setattr(trainer, "evaluate", planted_dev)
    trainer.fit()
    assert trainer.best["epoch"] == 2  # the first of the two best epochs
    monkeypatch.setattr(trainer, "evaluate", evaluate_for_real)
    trainer.final_results()
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, states[1][name]), name
    assert not torch.equal(states[1]["fusion.cls"], states[-1]["fusion.cls"])


def test_retrieval_trains_on_each_caption_with_its_image_and_sampled_other_images(toys):
    data = _data(toys["coco_retrieval"], "coco_retrieval", ("sees_a",), negatives=2)
    frame = data.split("train")
    pairs = data._matching_pairs(frame, torch.Generator().manual_seed(0))
    positives, negatives = pairs[pairs.match == 1.0], pairs[pairs.match == 0.0]
    assert len(positives) == len(frame) and len(negatives) == 2 * len(frame)
    assert positives["image_id"].tolist() == frame["image_id"].tolist()
    own = dict(zip(frame["sample_id"], frame["image_id"], strict=True))
    assert (negatives.sample_id.map(own) != negatives.image_id).all()
    assert set(negatives["image_id"]) <= set(frame["image_id"])
    assert negatives["image_id"].nunique() > len(frame["image_id"].unique()) // 2  # spread out
    again = data._matching_pairs(frame, torch.Generator().manual_seed(0))
    assert again.equals(pairs)
    assert data._matching_pairs(frame, None).match.eq(1.0).all()  # evaluation: positives only


def test_same_seed_same_metrics_other_seed_other_model(toys, tmp_path):
    first = _train(toys, tmp_path / "a", ve_dropout=0.3)
    again = _train(toys, tmp_path / "b", ve_dropout=0.3)
    other = _train(toys, tmp_path / "c", seed=1, ve_dropout=0.3)
    assert first == again
    assert first["history"][0]["loss"] != other["history"][0]["loss"]


def test_a_killed_run_resumes_to_the_same_result(toys, tmp_path, monkeypatch):
    uninterrupted = _train(toys, tmp_path / "whole", ve_dropout=0.3)

    calls = {"n": 0}
    real_epoch = Trainer._train_epoch

    def dies_in_epoch_three(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the job is killed mid-training
        return real_epoch(self)

    monkeypatch.setattr(Trainer, "_train_epoch", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        _train(toys, tmp_path / "killed", ve_dropout=0.3)
    assert (tmp_path / "killed" / RESUME).exists()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    monkeypatch.setattr(Trainer, "_train_epoch", real_epoch)
    resumed = _train(toys, tmp_path / "killed", ve_dropout=0.3)
    assert resumed == uninterrupted
    assert not (tmp_path / "killed" / RESUME).exists()


def test_a_resume_file_saved_under_other_settings_is_discarded(toys, tmp_path, capsys):
    uninterrupted = _train(toys, tmp_path / "whole")
    old = TrainConfig(**{**FAST.__dict__, "lr": 0.5})
    trainer = Trainer(Run("gqa", ENCODERS, 0, 0.0), _data(toys["gqa"]), MODEL, old)
    trainer.epoch = 7
    trainer.save_state(tmp_path / "changed" / RESUME)
    resumed = _train(toys, tmp_path / "changed")  # the new settings, from scratch
    assert "saved under other settings: discarded" in capsys.readouterr().out
    assert resumed == uninterrupted


def test_a_resume_file_of_another_run_is_refused(toys, tmp_path):
    trainer = Trainer(Run("gqa", ENCODERS, 0, 0.0), _data(toys["gqa"]), MODEL, FAST)
    trainer.save_state(tmp_path / RESUME)
    with pytest.raises(VecompError, match="belongs to run"):
        _train(toys, tmp_path, seed=1)


def test_a_nan_loss_stops_the_run_naming_the_step_and_writes_nothing(toys, tmp_path, monkeypatch):
    real_loss = train_module.build_task_model

    def nan_after_two_steps(kind, config, outputs):
        model = real_loss(kind, config, outputs)
        steps = {"n": 0}
        loss = model.loss

        def broken(logits, targets):
            steps["n"] += 1
            value = loss(logits, targets)
            return value * float("nan") if steps["n"] == 3 else value

        model.loss = broken
        return model

    monkeypatch.setattr(train_module, "build_task_model", nan_after_two_steps)
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at epoch 1, step 3"):
        _train(toys, tmp_path)
    assert not any(p.name in ("metrics.json", "checkpoint.pt") for p in tmp_path.iterdir())


def test_the_checkpoint_describes_itself_and_rebuilds_the_model(toys, tmp_path):
    metrics = _train(toys, tmp_path, encoders=("sees_a", "sees_b"))
    model, checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["run"] == {
        "task": "gqa",
        "encoders": ("sees_a", "sees_b"),
        "seed": 0,
        "ve_dropout": 0.0,
        "matched": (),
    }
    assert checkpoint["train_config"]["lr"] == FAST.lr
    assert {"vecomp", "torch", "python"} <= set(checkpoint["versions"])
    assert checkpoint["selected_epoch"] == metrics["selected_epoch"]
    data = _data(toys["gqa"], encoders=("sees_a", "sees_b"))
    trainer = Trainer(Run("gqa", ("sees_a", "sees_b"), 0, 0.0), data, MODEL, FAST)
    trainer.model.load_state_dict(model.state_dict())
    assert trainer.evaluate("test")[0] == metrics["test"]


def test_the_cli_trains_a_run_and_rejects_bad_settings(toys, tmp_path, capsys):
    paths = toys["gqa"]
    base = vecomp_args(
        "train",
        task="gqa",
        prepared=paths["prepared"],
        text=paths["text"],
        store=[f"{e}={paths['stores'][e]}" for e in ("sees_a", "sees_b")],
        seed=0,
        model=MODEL,
    )
    settings = json.dumps({"epochs": 2, "batch_size": 16, "device": "cpu", "threads": 1})
    assert cli.main([*base, "--train", settings, "--out", str(tmp_path / "run")]) == 0
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["encoders"] == "sees_a+sees_b" and written["seed"] == 0
    with pytest.raises(SystemExit) as exit_:
        cli.main([*base, "--train", '{"epoch": 2}', "--out", str(tmp_path / "bad")])
    assert exit_.value.code == 2
    assert "argument --train: train: unknown key(s) ['epoch']" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_missing_stores_and_text_stores_get_clear_errors(toys, tmp_path):
    paths = toys["gqa"]
    with pytest.raises(VecompError, match="no text store at"):
        TaskData("gqa", paths["prepared"], tmp_path / "nowhere", {})
    with pytest.raises(VecompError, match="no feature store"):
        TaskData("gqa", paths["prepared"], paths["text"], {"x": tmp_path / "nowhere"})


def test_device_choice_and_schedule():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    rates = [train_module.schedule(s, 100, 0.1) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[-1] < 0.02 and max(rates) == 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_run_under_bf16_learns_the_toy_too(toys, tmp_path):
    metrics = _train(toys, tmp_path, config=TrainConfig(**{**FAST.__dict__, "device": "cuda"}))
    assert metrics["device"].startswith("cuda")
    assert metrics["test"]["accuracy"] >= 85


def test_reruns_write_byte_identical_outputs(toys, tmp_path):
    _train(toys, tmp_path / "a")
    _train(toys, tmp_path / "b")
    for name in ("checkpoint.pt", "predictions.parquet", "masked.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_stores_without_the_task_images_and_unknown_masks_get_clear_errors(toys, tmp_path):
    from tests.fusion_fixtures import _attributes, write_stores

    elsewhere = write_stores(tmp_path, ["other0", "other1"], _attributes(2))
    paths = toys["gqa"]
    with pytest.raises(VecompError, match="no image of this task has features in every"):
        TaskData("gqa", paths["prepared"], paths["text"], elsewhere)
    trainer = Trainer(
        Run("gqa", ("sees_a",), 0, 0.0), _data(paths, encoders=("sees_a",)), MODEL, FAST
    )
    with pytest.raises(VecompError, match="must be a non-empty subset of the model's"):
        trainer.evaluate("test", kept=("sees_b",))


def test_streaming_from_the_stores_trains_like_preloading(toys, tmp_path):
    preloaded = _train(toys, tmp_path / "a")
    streamed_config = TrainConfig(**{**FAST.__dict__, "preload_features": False})
    run = Run("gqa", ENCODERS, 0, 0.0)
    data = TaskData(
        "gqa", toys["gqa"]["prepared"], toys["gqa"]["text"], toys["gqa"]["stores"], preload=False
    )
    assert data.visual.stores and not data.visual.blocks
    streamed = train_run(run, data, MODEL, streamed_config, tmp_path / "b")
    # padding lengths differ, so the two agree up to rounding, which training then amplifies
    first = preloaded["history"][0]["loss"]
    assert streamed["history"][0]["loss"] == pytest.approx(first, rel=1e-3)
    assert streamed["test"]["accuracy"] >= 85 and preloaded["test"]["accuracy"] >= 85


def _streamed(paths, **loader) -> TaskData:
    return TaskData(
        "gqa", paths["prepared"], paths["text"], paths["stores"], preload=False, **loader
    )


def _epoch(data: TaskData, split: str, seed: int | None) -> list[dict]:
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return list(data.batches(split, 16, generator))


def _same_batches(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_batches(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_batches(x, y) for x, y in zip(a, b, strict=True))
    return a.dtype == b.dtype and torch.equal(a, b)


def test_streamed_batches_are_the_same_collated_in_the_loop_ahead_or_in_workers(toys):
    """A thread collates streamed batches ahead of the loop and DataLoader workers may collate
    them instead: the batches, in their order, are those the loop would collate itself."""
    paths = toys["gqa"]
    ahead, workers = _streamed(paths), _streamed(paths, loader_workers=2)
    for split, seed in (("train", 3), ("dev", None)):
        frame = ahead.split(split)
        if seed is not None:
            frame = frame.iloc[
                torch.randperm(len(frame), generator=torch.Generator().manual_seed(seed)).numpy()
            ]
        in_loop = [ahead.collate(frame.iloc[i : i + 16]) for i in range(0, len(frame), 16)]
        assert _same_batches(_epoch(ahead, split, seed), in_loop)
        assert _same_batches(_epoch(workers, split, seed), in_loop)


def test_a_batch_that_fails_ahead_of_the_loop_fails_the_loop_and_stops_the_thread(
    toys, monkeypatch
):
    data, calls = _streamed(toys["gqa"]), []
    collate = TaskData.collate

    def failing(self, rows):
        calls.append(len(calls))
        if len(calls) == 2:
            raise VecompError("the second batch cannot be read")
        return collate(self, rows)

    monkeypatch.setattr(TaskData, "collate", failing)
    batches = data.batches("train", 4, torch.Generator().manual_seed(0))
    next(batches)
    with pytest.raises(VecompError, match="second batch"):
        next(batches)
    assert len(calls) <= 1 + AHEAD  # nothing past what was already queued ahead
    assert next(batches, None) is None  # the pass has ended


def test_loader_workers_train_the_same_run_as_the_loop(toys, tmp_path):
    config = TrainConfig(**{**FAST.__dict__, "epochs": 2, "preload_features": False})
    run = Run("gqa", ENCODERS, 0, 0.0)
    alone = train_run(run, _streamed(toys["gqa"]), MODEL, config, tmp_path / "a")
    workers = _streamed(toys["gqa"], loader_workers=1)
    helped = train_run(run, workers, MODEL, replace(config, loader_workers=1), tmp_path / "b")
    assert helped == alone


def test_a_matched_run_is_widened_to_the_parameter_count_of_the_larger_model(toys, tmp_path):
    paths = toys["gqa"]
    options = dict(
        task="gqa",
        prepared=paths["prepared"],
        text=paths["text"],
        store=[f"sees_a={paths['stores']['sees_a']}"],
        seed=0,
        model=MODEL,
        train={"epochs": 1, "batch_size": 16, "device": "cpu", "threads": 1},
    )
    reference = [f"{e}={paths['stores'][e]}" for e in ENCODERS]
    wide = vecomp_args("train", **options, match_store=reference, out=tmp_path / "wide")
    assert cli.main(wide) == 0
    assert cli.main(vecomp_args("train", **options, out=tmp_path / "narrow")) == 0
    wide, narrow = (
        json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("wide", "narrow")
    )
    full = Trainer(Run("gqa", ENCODERS, 0, 0.0), _data(paths), MODEL, FAST)
    target = sum(p.numel() for p in full.model.parameters())
    assert wide["matched"] and wide["matched_to"] == "+".join(ENCODERS)
    assert wide["reference_parameters"] == target
    off = abs(wide["parameters"] - target) / target  # one width step (2 heads) is ~6% here
    assert off < 0.1 and narrow["parameters"] < target < wide["parameters"] * 1.1
    model, checkpoint = load_checkpoint(tmp_path / "wide" / "checkpoint.pt")
    assert checkpoint["model_config"]["width"] > MODEL["width"]  # it rebuilds at its own width
    masked = pd.read_csv(tmp_path / "wide" / "masked.csv")
    assert masked["matched"].all()


def test_matched_settings_find_the_width_closest_to_the_larger_model():
    from vecomp.fusion.heads import build_task_model
    from vecomp.fusion.model import FusionConfig
    from vecomp.fusion.train import matched_settings, parameter_count

    dims = {"region": 1024, "grid": 2048, "patch": 768}
    base = FusionConfig(("patch",), {"patch": 768}, 384, width=64, heads=4, ffn=128)
    widened, target = matched_settings("classification", 3, base, dims)
    assert widened["width"] % 4 == 0 and widened["ffn"] == 2 * widened["width"]

    def count(width):
        config = FusionConfig(("patch",), {"patch": 768}, 384, width=width, heads=4, ffn=2 * width)
        return parameter_count(build_task_model("classification", config, 3))

    best = abs(count(widened["width"]) - target)
    assert best / target < 0.03
    assert best <= min(abs(count(widened["width"] + d) - target) for d in (-4, 4))


def test_a_feature_store_argument_names_its_encoder():
    from vecomp.fusion.data import store_argument

    assert store_argument("grid=results/features/grid/coco") == (
        "grid",
        Path("results/features/grid/coco"),
    )
    with pytest.raises(argparse.ArgumentTypeError, match="ENCODER=FOLDER"):
        store_argument("results/features/grid/coco")


def test_pair_and_retrieval_models_learn_the_toy_above_what_noise_gives(toys, tmp_path):
    """The planted attributes decide NLVR2's label (both images have it) and which caption
    names an image: reading them must beat the majority label and a model that sees only
    noise, trained the same way in the same test."""
    pair = _train(toys, tmp_path / "pair", "nlvr2", ("sees_a", "sees_b"))["test"]
    test = pd.read_parquet(toys["nlvr2"]["prepared"] / "test.parquet")
    majority = 100 * max(test["label"].mean(), 1 - test["label"].mean())
    assert pair["accuracy"] > (majority + 100) / 2, (pair, majority)  # half its errors gone
    seeing = _train(toys, tmp_path / "seeing", "coco_retrieval", ("sees_a", "sees_b"))["test"]
    blind = _train(toys, tmp_path / "blind", "coco_retrieval", ("noise",))["test"]
    assert seeing["rsum"] > blind["rsum"] + 50, (seeing, blind)
    assert seeing["t2i_r5"] > blind["t2i_r5"], (seeing, blind)
