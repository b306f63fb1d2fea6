"""Batches for the fusion model: prepared task tables + the text store + feature stores.

A batch is a dict ``{"text": {tokens, mask}, "visual": {encoder: {tokens, boxes, mask}},
"targets": ...}``; NLVR2 batches add ``"visual_2"`` (the second image of each pair). Visual tokens
are normalised with each store's statistics; ``pool_grid[encoder] = g`` average-pools that
encoder's spatial tokens into at most ``g x g`` cells by box centre (tokens covering the whole
image, such as a ViT's CLS, are kept as they are).

Retrieval trains on (caption, image) pairs, each positive followed by ``negatives`` pairs with a
random other image, redrawn each epoch from the run's generator.

Batches read from memory-mapped stores (``preload=False``) are collated ahead of the loop that
consumes them, so the reads overlap the steps: by a thread of the consuming process, or, with
``loader_workers > 0``, by that many DataLoader processes, which also pin them for an
asynchronous copy to a GPU (``pin_memory``). The order and the contents of the batches are the
same either way: every random draw is made in the consuming process, before collation.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data.registry import get_task
from ..errors import VecompError
from ..features.store import FeatureStore
from ..kinds import get_kind
from ..settings import existing_path
from .text import SPLITS, TextStore

WHOLE_IMAGE = 0.98  # a token whose box covers this much of the image is not spatial
IMAGE_COLUMNS = ("image_id", "image_id_2")  # the second image of an NLVR2 pair
AHEAD = 4  # batches collated ahead of the loop, in all (by the thread, or the loader workers)


class TaskDataError(VecompError):
    pass


def to_device(batch, device):
    """A batch (nested dicts of tensors) on ``device``."""
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True)


def index_rows(batch, rows: torch.Tensor):
    """The given rows (indices or a bool mask) of every tensor in a batch."""
    if isinstance(batch, dict):
        return {k: index_rows(v, rows) for k, v in batch.items()}
    return batch[rows]


def pool_tokens(block: dict[str, torch.Tensor], grid: int) -> dict[str, torch.Tensor]:
    """Average the spatial tokens of each image into at most ``grid x grid`` cells."""
    tokens, boxes, mask = block["tokens"], block["boxes"], block["mask"]
    batch, _, dim = tokens.shape
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    spatial = mask & (area < WHOLE_IMAGE)
    fixed = mask & ~spatial
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    cell_xy = (centre * grid).long().clamp(0, grid - 1)
    cell = torch.where(spatial, cell_xy[..., 1] * grid + cell_xy[..., 0], grid * grid)
    slots = grid * grid + 1  # the last slot collects non-spatial tokens and padding
    sums = torch.zeros(batch, slots, dim).scatter_add_(
        1, cell[..., None].expand(-1, -1, dim), tokens
    )
    counts = torch.zeros(batch, slots).scatter_add_(1, cell, spatial.float())
    lows = torch.ones(batch, slots, 2).scatter_reduce_(
        1, cell[..., None].expand(-1, -1, 2), boxes[..., :2], "amin"
    )
    highs = torch.zeros(batch, slots, 2).scatter_reduce_(
        1, cell[..., None].expand(-1, -1, 2), boxes[..., 2:], "amax"
    )
    pooled = sums[:, :-1] / counts[:, :-1, None].clamp_min(1)
    pooled_boxes = torch.cat([lows[:, :-1], highs[:, :-1]], dim=-1)
    occupied = counts[:, :-1] > 0
    n_fixed = int(fixed.sum(1).max())
    order = torch.argsort((~fixed).int(), dim=1, stable=True)[:, :n_fixed]
    take = order[..., None]
    return {
        "tokens": torch.cat([tokens.gather(1, take.expand(-1, -1, dim)), pooled], dim=1),
        "boxes": torch.cat([boxes.gather(1, take.expand(-1, -1, 4)), pooled_boxes], dim=1),
        "mask": torch.cat([fixed.gather(1, order), occupied], dim=1),
    }


class VisualSource:
    """The selected encoders' tokens for a set of images, normalised (and pooled).

    ``preload=True`` reads every image from its stores once, at construction, into one padded
    fp16 tensor per encoder, so a batch is an index and data loading costs little next to
    training (memory: images x tokens x dim x 2 bytes per encoder). ``preload=False`` keeps the
    stores memory-mapped and reads each batch from them: for pools too large for memory.
    """

    CHUNK = 512  # images read from a store at a time when preloading

    def __init__(
        self,
        stores: dict[str, Path],
        image_ids,
        pool_grid: dict[str, int] | None = None,
        preload: bool = True,
    ) -> None:
        self.pool_grid = {k: v for k, v in (pool_grid or {}).items() if k in stores}
        opened = {name: FeatureStore(path, in_memory=preload) for name, path in stores.items()}
        self.dims = {name: store.dim for name, store in opened.items()}
        self.image_ids = [i for i in dict.fromkeys(image_ids) if _in_all(opened, i)]
        if not self.image_ids:
            raise TaskDataError(
                f"no image of this task has features in every selected store ({sorted(stores)}); "
                "extract the features of the task's image pool first"
            )
        self.rows = {image_id: row for row, image_id in enumerate(self.image_ids)}
        self.stores = {} if preload else opened
        self.streamed = not preload
        self.blocks = {
            name: _load_pooled(store, self.image_ids, self.pool_grid.get(name), self.CHUNK)
            for name, store in (opened.items() if preload else ())
        }

    def has(self, image_id: str) -> bool:
        return image_id in self.rows

    def batch(self, image_ids) -> dict[str, dict[str, torch.Tensor]]:
        if self.stores:
            return {name: self._read(name, list(image_ids)) for name in self.stores}
        rows = torch.tensor([self.rows[i] for i in image_ids])
        return {
            name: {
                "tokens": block["tokens"][rows].float(),
                "boxes": block["boxes"][rows],
                "mask": block["mask"][rows],
            }
            for name, block in self.blocks.items()
        }

    def _read(self, name: str, image_ids: list[str]) -> dict[str, torch.Tensor]:
        block = self.stores[name].get_batch(image_ids, normalize=True)
        grid = self.pool_grid.get(name)
        return pool_tokens(block, grid) if grid else block


def _in_all(stores: dict[str, FeatureStore], image_id: str) -> bool:
    return all(image_id in store for store in stores.values())


def _load_pooled(store: FeatureStore, image_ids: list[str], grid: int | None, chunk: int) -> dict:
    """All images of one store, normalised (and pooled), padded to the longest: fp16 tokens."""
    parts = []
    for start in range(0, len(image_ids), chunk):
        block = store.get_batch(image_ids[start : start + chunk], normalize=True)
        parts.append(pool_tokens(block, grid) if grid else block)
    longest = max(p["mask"].shape[1] for p in parts)

    dtypes = {"tokens": torch.float16, "boxes": torch.float32, "mask": torch.bool}
    return {
        key: torch.cat([_pad_tokens(p[key], longest) for p in parts]).to(dtype)
        for key, dtype in dtypes.items()
    }


def _pad_tokens(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad dimension 1 (tokens) of a ``[B, T]`` or ``[B, T, D]`` tensor to ``length``."""
    return F.pad(x, [0, 0] * (x.dim() - 2) + [0, length - x.shape[1]])


def _prepared_labels(prepared: Path, task: str) -> dict:
    """The labels.json of ``vecomp prepare``'s folder for ``task``; refuse any other folder."""
    missing = [
        n for n in ("labels.json", *(f"{s}.parquet" for s in SPLITS)) if not (prepared / n).exists()
    ]
    if missing:
        raise TaskDataError(
            f"{prepared} is not a prepared task folder (no {', '.join(missing)}); give the folder "
            f"`vecomp prepare --task {task}` wrote (results/prepared/{task})"
        )
    labels = json.loads((prepared / "labels.json").read_text())
    if labels.get("task") != task:
        raise TaskDataError(
            f"{prepared} holds the prepared tables of task {labels.get('task')!r}, not {task!r}: "
            f"give --task {labels.get('task')} or the folder of {task} (results/prepared/{task})"
        )
    return labels


class TaskData:
    """One task's splits with the means to batch them for the fusion model."""

    def __init__(
        self,
        task: str,
        prepared: Path,
        text_store: Path,
        stores: dict[str, Path],
        pool_grid: dict[str, int] | None = None,
        negatives: int = 1,
        preload: bool = True,
        loader_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.task = get_task(task)
        self.negatives = negatives
        self.loader_workers, self.pin_memory = loader_workers, pin_memory
        self.kind = self.task.kind
        self.target = get_kind(self.kind).target
        self.prepared = Path(prepared)
        label_file = _prepared_labels(self.prepared, task)
        self.text = TextStore(text_store)
        self.tables = {s: pd.read_parquet(self.prepared / f"{s}.parquet") for s in SPLITS}
        image_ids = [i for t in self.tables.values() for c in IMAGE_COLUMNS if c in t for i in t[c]]
        self.visual = VisualSource(stores, image_ids, pool_grid, preload)
        self.labels = label_file["labels"]
        self.metric_options = label_file.get("metric", {})  # how prepare says to score the task
        self.splits: dict[str, pd.DataFrame] = {}
        self.dropped: dict[str, int] = {}

    def split(self, name: str) -> pd.DataFrame:
        """A split's rows whose images every selected store holds (others counted in dropped)."""
        if name not in self.splits:
            frame = self.tables[name]
            ok = np.ones(len(frame), dtype=bool)
            for column in (c for c in IMAGE_COLUMNS if c in frame):
                ok &= frame[column].map(self.visual.has).to_numpy(dtype=bool)
            if not ok.any():
                raise TaskDataError(
                    f"{self.task.name}/{name}: no sample has features in every selected store; "
                    "extract the features of this task's image pool first"
                )
            self.dropped[name] = int((~ok).sum())
            self.splits[name] = frame[ok].reset_index(drop=True)
        return self.splits[name]

    # ------------------------------------------------------------------ batches
    def batches(
        self, split: str, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[dict]:
        """Batches of a split, shuffled when a generator is given (training)."""
        frame = self.split(split)
        if self.target == "match":
            frame = self._matching_pairs(frame, generator)
        order = torch.randperm(len(frame), generator=generator) if generator else None
        rows = frame if order is None else frame.iloc[order.numpy()]
        chunks = _Chunks(self, rows, batch_size)
        if self.loader_workers:
            yield from DataLoader(
                chunks,
                batch_size=None,  # each item is already a batch
                num_workers=self.loader_workers,
                pin_memory=self.pin_memory,
                prefetch_factor=max(1, AHEAD // self.loader_workers),  # paper batches: 0.2-0.7 GB
            )
        elif self.visual.streamed:  # reads overlap the steps (bench/train_throughput.py)
            yield from _collated_ahead(chunks, AHEAD)
        else:  # an index into memory: cheaper than handing batches between threads
            yield from (chunks[i] for i in range(len(chunks)))

    def collate(self, rows: pd.DataFrame) -> dict:
        batch = {
            "text": self.text.get_batch(self.text.rows_of(rows["text"])),
            "visual": self.visual.batch(list(rows["image_id"])),
            "targets": TARGETS[self.kind](self, rows),
        }
        if "image_id_2" in rows:
            batch["visual_2"] = self.visual.batch(list(rows["image_id_2"]))
        return batch

    def _matching_pairs(self, frame: pd.DataFrame, generator) -> pd.DataFrame:
        positives = frame.assign(match=1.0)
        if generator is None:
            return positives
        images = frame["image_id"].unique()
        own = pd.Index(images).get_indexer(frame["image_id"])
        negatives = []
        for _ in range(self.negatives):
            pick = torch.randint(len(images) - 1, (len(frame),), generator=generator).numpy()
            other = images[pick + (pick >= own)]  # any image but the caption's own
            negatives.append(frame.assign(image_id=other, match=0.0))
        return pd.concat([positives, *negatives], ignore_index=True)


class _Chunks(Dataset):
    """One pass's batches: item ``i`` collates rows ``[i * size, (i + 1) * size)``."""

    def __init__(self, data: TaskData, rows: pd.DataFrame, size: int) -> None:
        self.data, self.rows, self.size = data, rows, size

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.size)

    def __getitem__(self, i: int) -> dict:
        return self.data.collate(self.rows.iloc[i * self.size : (i + 1) * self.size])


def _collated_ahead(chunks: _Chunks, depth: int) -> Iterator[dict]:
    """``chunks`` in order, while one thread collates up to ``depth`` batches ahead."""
    indices = iter(range(len(chunks)))
    with ThreadPoolExecutor(max_workers=1) as thread:
        pending = deque(thread.submit(chunks.__getitem__, i) for i in islice(indices, depth))
        try:
            while pending:
                batch = pending.popleft().result()
                pending.extend(thread.submit(chunks.__getitem__, i) for i in islice(indices, 1))
                yield batch
        finally:  # the consumer stopped early or a batch failed: collate no more
            for future in pending:
                future.cancel()


def _soft_targets(data: TaskData, rows: pd.DataFrame) -> torch.Tensor:
    """``[rows, labels]`` soft scores, written in one indexed assignment (a loop over the rows
    cost VQAv2 training 3% of its epoch on a CPU: ``bench/train_throughput.py``)."""
    ids = [np.asarray(i, dtype=np.int64) for i in rows["target_ids"]]
    scores = [np.asarray(s, dtype=np.float32) for s in rows["target_scores"]]
    row = np.repeat(np.arange(len(ids)), [len(i) for i in ids])
    targets = torch.zeros(len(rows), len(data.labels))
    targets[torch.from_numpy(row), torch.from_numpy(np.concatenate(ids))] = torch.from_numpy(
        np.concatenate(scores)
    )
    return targets


def _class_targets(data: TaskData, rows: pd.DataFrame) -> torch.Tensor:
    return torch.tensor(rows["label"].to_numpy(), dtype=torch.long)


def _match_targets(data: TaskData, rows: pd.DataFrame) -> torch.Tensor:
    matches = rows["match"].to_numpy() if "match" in rows else np.ones(len(rows))
    return torch.tensor(matches, dtype=torch.float32)


TARGETS = {
    "vqa": _soft_targets,
    "classification": _class_targets,
    "pair": _class_targets,
    "retrieval": _match_targets,
}


def store_argument(text: str) -> tuple[str, Path]:
    """Parse one ``ENCODER=FOLDER`` command-line value."""
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"a feature store is ENCODER=FOLDER, got {text!r}")
    return name, Path(path)


def add_task_data_arguments(parser: argparse.ArgumentParser, store_help: str) -> None:
    """The options that locate one task's data (what ``TaskData`` reads), for a command line."""
    parser.add_argument("--task", required=True)
    parser.add_argument(
        "--prepared", type=existing_path, required=True, help="results/prepared/<task>"
    )
    parser.add_argument("--text", type=existing_path, required=True, help="the task's text store")
    parser.add_argument(
        "--store", type=store_argument, action="append", required=True, help=store_help
    )
