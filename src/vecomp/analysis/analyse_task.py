"""Analyses that need the trained models: attention mass per block, and single-encoder ensembles.

``vecomp analyse-task`` runs once per task. It loads the task's data once (every encoder's
store), then every run's checkpoint, and writes two tidy tables under ``--out``:

- ``attention.csv``: for each run and layer, the attention mass that the queries put on each
  block of the sequence (``text``, each encoder; the [CLS] key is counted as ``cls``), averaged
  over heads and over a fixed evaluation sample (the first ``--samples`` test items; for NLVR2
  the left image, for retrieval each caption with its own image). Two query groups: ``text``
  (every real text token, averaged) and ``pooled`` (the [CLS] query the head reads). ``mass`` is
  the raw share of attention (it sums to 1 over blocks); ``per_token`` divides it by the block's
  number of real tokens, so long and short blocks compare.
- ``ensemble.csv``: for every multi-encoder subset and seed, the test metrics of the average of
  that seed's single-encoder models (VE-dropout 0): their probabilities (matching scores for
  retrieval) averaged, then scored with the same evaluator as any run.
- ``similarity.csv``: for every pair of encoders, the linear CKA and mutual k-NN alignment of
  their features (each image's tokens averaged) over the first ``--samples`` distinct test
  images, straight from the stores: no model involved (``similarity.py``).
- ``effective_rank.csv``: for each run and encoder, the effective rank of the encoder's tokens
  after the run's projection into the model width, over the real tokens of those images.
"""

from __future__ import annotations

import argparse
import math
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch
from torch import nn

from ..devices import autocast, pick_device
from ..errors import VecompError
from ..fusion.data import IMAGE_COLUMNS, TaskData, add_task_data_arguments, to_device
from ..fusion.evaluate import evaluate
from ..fusion.train import load_checkpoint
from ..io import atomic_path
from ..kinds import get_kind
from ..settings import add_setting, json_setting
from . import TASK_TABLES
from .similarity import effective_rank, linear_cka, mutual_knn

QUERIES = ("text", "pooled")
NEIGHBOURS = 10  # k of the mutual k-NN alignment (Huh et al. 2024 use 10)
PROBABILITIES = {  # a task kind's outputs as probabilities (``TaskKind.probabilities``)
    "sigmoid": torch.sigmoid,
    "softmax": lambda logits: logits.softmax(-1),
}


# ------------------------------------------------------------------ attention
def _sample_batch(data: TaskData, samples: int) -> dict:
    """The fixed evaluation sample: the first ``samples`` test items (positives for retrieval)."""
    return next(data.batches("test", samples))


def _block_slices(blocks: dict[str, int]) -> dict[str, slice]:
    slices, start = {}, 0
    for name, length in blocks.items():
        slices[name] = slice(start, start + length)
        start += length
    return slices


@torch.no_grad()
def attention_mass(model, batch: dict) -> pd.DataFrame:
    """Rows: layer, query, block, mass, per_token (means over the sample and its text tokens)."""
    out = model.fusion(batch["text"], batch["visual"], attention=True)
    slices = _block_slices(out["blocks"])
    real = model.fusion.block_masks(batch["text"], batch["visual"], out["keep"])
    text_queries = real["text"].float()
    rows = []
    for layer, weights in enumerate(out["attention"], start=1):
        text_rows = weights[:, slices["text"], :]  # [B, T, L]
        for block, keys in slices.items():
            counts = real[block].float().sum(1).clamp(min=1)  # [B]
            on_block = {
                "pooled": weights[:, 0, keys].sum(-1),
                "text": (text_rows[..., keys].sum(-1) * text_queries).sum(1)
                / text_queries.sum(1).clamp(min=1),
            }
            for query in QUERIES:
                mass = on_block[query].float()
                rows.append(
                    {
                        "layer": layer,
                        "query": query,
                        "block": block,
                        "mass": mass.mean().item(),
                        "per_token": (mass / counts).mean().item(),
                    }
                )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ representations
def sample_images(data: TaskData, samples: int) -> dict[str, dict[str, torch.Tensor]]:
    """Every encoder's tokens (as the runs read them) for the first ``samples`` distinct test
    images."""
    test = data.split("test")
    images = dict.fromkeys(i for column in IMAGE_COLUMNS if column in test for i in test[column])
    return data.visual.batch(list(images)[:samples])


def similarity_rows(visual: dict[str, dict[str, torch.Tensor]]) -> list[dict]:
    """Linear CKA and mutual k-NN alignment of every pair of encoders' mean-pooled tokens."""
    pooled = {name: _mean_token(block) for name, block in visual.items()}
    images = len(next(iter(pooled.values())))
    k = min(NEIGHBOURS, images - 1)
    return [
        {
            "pair": f"{a}+{b}",
            "cka": linear_cka(pooled[a], pooled[b]),
            "mutual_knn": mutual_knn(pooled[a], pooled[b], k) if k > 0 else float("nan"),
            "images": images,
            "k": k,
        }
        for a, b in combinations(sorted(pooled), 2)
    ]


def _mean_token(block: dict[str, torch.Tensor]) -> torch.Tensor:
    mask = block["mask"].unsqueeze(-1).float()
    return (block["tokens"].float() * mask).sum(1) / mask.sum(1).clamp(min=1)


@torch.no_grad()
def projected_ranks(model, visual: dict[str, dict[str, torch.Tensor]]) -> list[dict]:
    """Per encoder of the run: the effective rank of its real tokens after the projection into
    the model width (before the fusion layers see them)."""
    rows = []
    for name in model.fusion.config.encoders:
        block = visual[name]
        projected = model.fusion.visual[name].project(block["tokens"].float())
        tokens = projected[block["mask"]]
        rows.append(
            {"encoder": name, "effective_rank": effective_rank(tokens), "tokens": len(tokens)}
        )
    return rows


# ------------------------------------------------------------------ ensembles
class Ensemble(nn.Module):
    """Several task models as one: their probabilities averaged. For the retrieval shortlist its
    embeddings concatenate the members' (scaled), so a dot product averages their similarities."""

    def __init__(self, members: list[nn.Module], kind: str, encoders: tuple[str, ...]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.probabilities = PROBABILITIES[get_kind(kind).probabilities]
        self.config = SimpleNamespace(encoders=encoders)
        self._columns = [[encoders.index(e) for e in m.config.encoders] for m in members]
        self._scale = 1 / math.sqrt(len(members))

    def forward(self, batch: dict, keep: torch.Tensor | None = None) -> torch.Tensor:
        outputs = [
            self.probabilities(member(batch, None if keep is None else keep[:, columns]).float())
            for member, columns in zip(self.members, self._columns, strict=True)
        ]
        return torch.stack(outputs).mean(0)

    def text_embedding(self, text: dict) -> torch.Tensor:
        return torch.cat([m.text_embedding(text) for m in self.members], -1) * self._scale

    def image_embedding(self, visual: dict, keep: torch.Tensor) -> torch.Tensor:
        parts = [
            m.image_embedding(visual, keep[:, columns])
            for m, columns in zip(self.members, self._columns, strict=True)
        ]
        return torch.cat(parts, -1) * self._scale


def ensemble_rows(runs: dict, data: TaskData, options: dict, device) -> list[dict]:
    """Test metrics of every multi-encoder subset's single-encoder ensemble, per seed. Only one
    seed's single-encoder models are in memory at a time."""
    singles = {
        (run["encoders"][0], run["seed"]): folder
        for folder, run in runs.items()
        if len(run["encoders"]) == 1 and run["ve_dropout"] == 0
    }
    subsets = {(r["encoders"], r["seed"]) for r in runs.values() if len(r["encoders"]) > 1}
    rows = []
    for seed in sorted({seed for _, seed in subsets}):
        models = {e: load_model(f).to(device) for (e, s), f in singles.items() if s == seed}
        for encoders in sorted(e for e, s in subsets if s == seed):
            if not set(encoders) <= set(models):
                continue  # a single-encoder run is missing (e.g. a partial sweep): no ensemble
            members = [models[e] for e in encoders]
            ensemble = Ensemble(members, data.kind, tuple(encoders))
            metrics, _ = evaluate(ensemble, data, "test", device=device, **options)
            rows += [
                {
                    "task": data.task.name,
                    "encoders": "+".join(encoders),
                    "seed": seed,
                    "metric": m,
                    "value": v,
                }
                for m, v in metrics.items()
            ]
    return rows


# ------------------------------------------------------------------ the job
def load_model(folder: Path):
    return load_checkpoint(folder / "checkpoint.pt")[0]


def describe_runs(folders: list[Path]) -> dict:
    """``{folder: run}`` (task, encoders, seed, ve_dropout, pool_grid, preload) from each
    checkpoint; the models themselves are loaded one at a time where they are used."""
    runs = {}
    for folder in folders:
        path = folder / "checkpoint.pt"
        if not path.exists():
            raise VecompError(f"{folder} has no checkpoint.pt: train that run first")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        run = checkpoint["run"] | {"encoders": tuple(checkpoint["run"]["encoders"])}
        preload = checkpoint["train_config"].get("preload_features", True)
        runs[folder] = run | {"pool_grid": checkpoint["pool_grid"], "preload": preload}
    return runs


def pool_grid_of(runs: dict) -> dict[str, int]:
    """The one feature pooling every run of the task was trained with (an error if they differ)."""
    grid: dict[str, int] = {}
    for folder, run in runs.items():
        for name, size in run["pool_grid"].items():
            if grid.setdefault(name, size) != size:
                raise VecompError(
                    f"{folder} pools {name} to {size}, other runs to {grid[name]}: runs of one "
                    "task must share model.pool_grid; rerun the sweep with one setting"
                )
    return grid


def analyse_task(task, prepared, text, stores, folders, samples, out, options, device) -> None:
    runs = describe_runs(folders)
    # features as the runs read them: the paper profile's stores (every image of the task, three
    # encoders: tens of GB) stay on disk and are read per batch (train.preload_features: false)
    preload = all(run["preload"] for run in runs.values())
    data = TaskData(task, prepared, text, stores, pool_grid_of(runs), preload=preload)
    batch = to_device(_sample_batch(data, samples), device)
    images = to_device(sample_images(data, samples), device)
    attention, ranks = [], []
    with autocast(device):
        for folder, run in runs.items():
            model = load_model(folder).to(device)
            labels = {
                "task": task,
                "encoders": "+".join(run["encoders"]),
                "seed": run["seed"],
                "ve_dropout": run["ve_dropout"],
            }
            attention.append(attention_mass(model, batch).assign(**labels))
            ranks += [labels | row for row in projected_ranks(model, images)]
        ensembles = ensemble_rows(runs, data, options, device)
    run_columns = ["task", "encoders", "seed", "ve_dropout"]
    columns = [*run_columns, "layer", "query", "block"]
    attention = pd.concat(attention, ignore_index=True)
    tables = {
        "attention": attention[[*columns, "mass", "per_token"]].sort_values(columns, kind="stable"),
        "ensemble": pd.DataFrame(
            ensembles, columns=["task", "encoders", "seed", "metric", "value"]
        ).sort_values(["encoders", "seed"], kind="stable"),
        "similarity": pd.DataFrame(
            similarity_rows(images), columns=["pair", "cka", "mutual_knn", "images", "k"]
        ).assign(task=task),
        "effective_rank": pd.DataFrame(ranks).sort_values([*run_columns, "encoder"], kind="stable"),
    }
    for name in TASK_TABLES:
        with atomic_path(out / f"{name}.csv") as tmp:
            tables[name].to_csv(tmp, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp analyse-task", description=__doc__)
    add_task_data_arguments(parser, "ENCODER=FOLDER of a feature store, once per encoder")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders")
    add_setting(parser, "--samples", "analysis.attention_samples", type=int)
    parser.add_argument(
        "--options",
        type=json_setting("train"),
        default={},
        help="JSON: the task's evaluation settings (train.rerank_top_k)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    if args.threads:
        torch.set_num_threads(args.threads)
    stores = dict(args.store)
    analyse_task(
        args.task,
        args.prepared,
        args.text,
        stores,
        args.runs,
        args.samples,
        args.out,
        args.options,
        pick_device(args.device),
    )
    print(f"analysed {len(args.runs)} runs of {args.task} into {args.out}")
    return 0
