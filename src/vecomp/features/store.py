"""Feature store: each image's encoder tokens, written once per (encoder, image pool).

Vision encoders turn an image into a variable number of tokens (``tokens [T, D]``) with their
boxes (``boxes [T, 4]``, x0 y0 x1 y1 in [0, 1]). Extraction is the expensive step and training
reads the tokens of random images many times, so they are stored once, in a few large shards
(file systems and DVC crawl with many small files) that are memory-mapped for random access.

A store is a folder::

    shard-00000.safetensors   tokens [N_tok, D] f16, boxes [N_tok, 4] f16, offsets [n + 1] i64
    shard-00001.safetensors   ...
    index.parquet             image_id, shard, start, length (token rows within the shard)
    stats.safetensors         mean [D] f32, std [D] f32, count [] i64 over all tokens
    manifest.json             the caller's ``info`` plus the store's own facts; written last

A folder without ``manifest.json`` is an incomplete store: :class:`FeatureStore` refuses it and
:class:`StoreWriter` resumes it. Every file is byte-identical whether the writer ran once or was
killed and resumed, so DVC sees the same store either way.

Each shard's own facts (image ids, skipped images, shard size, format version) are one JSON
string under the single metadata key ``"vecomp"``: safetensors writes several metadata keys in a
random order per process, which would break byte-identical output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import VecompError
from ..io import atomic_path, write_json

FORMAT_VERSION = 1
STORE_DTYPE = torch.float16
INDEX_NAME = "index.parquet"
STATS_NAME = "stats.safetensors"
MANIFEST_NAME = "manifest.json"
SHARD_GLOB = "shard-*.safetensors"
META_KEY = "vecomp"

_INDEX_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("shard", pa.int64()),
        ("start", pa.int64()),
        ("length", pa.int64()),
    ]
)
_BOX_TOLERANCE = 1e-3  # boxes may overshoot [0, 1] by rounding, not by pixel units
_STD_FLOOR = 1e-6  # normalising a constant dimension gives 0, not inf
_MOMENT_ROWS = 16384  # rows per float64 block when computing statistics (bounded memory)


class StoreError(VecompError):
    """A feature store cannot be written or read as asked; the message says why and what to do."""


class ImageNotFoundError(StoreError, KeyError):
    """An image id that the store does not hold (also a KeyError, for ``except KeyError``)."""

    __str__ = Exception.__str__  # KeyError would quote the whole message


def shard_name(k: int) -> str:
    """File name of shard ``k``; zero-padded so that names sort in shard order."""
    return f"shard-{k:05d}.safetensors"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class _Moments:
    """Count, mean [D] and sum of squared deviations [D] in float64, mergeable across shards.

    Merged with Chan et al.'s pairwise update, which stays accurate when the mean is large
    against the spread (a plain sum of squares would cancel); merging in shard order keeps the
    result bit-identical after a resume.
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> _Moments:
        return cls(0, np.zeros(dim), np.zeros(dim))

    @classmethod
    def of(cls, tokens: torch.Tensor) -> _Moments:
        """Moments of ``tokens [N, D]`` (any float dtype), in blocks of bounded memory."""
        total = cls.empty(tokens.shape[1])
        for start in range(0, tokens.shape[0], _MOMENT_ROWS):
            block = tokens[start : start + _MOMENT_ROWS].to(torch.float64).numpy()
            mean = block.mean(axis=0)
            total = total.merge(cls(len(block), mean, ((block - mean) ** 2).sum(axis=0)))
        return total

    def merge(self, other: _Moments) -> _Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / count)
        return _Moments(count, mean, m2)

    def std(self) -> np.ndarray:
        """Population standard deviation [D] (numpy's default, ddof=0)."""
        return np.sqrt(self.m2 / max(self.count, 1))


@dataclass(frozen=True)
class _Shard:
    """What the writer knows about one complete shard on disk."""

    file: str
    image_ids: list[str]
    offsets: np.ndarray  # [n_images + 1] int64, token rows
    skipped: list[tuple[str, str]]  # (image_id, reason) reported while this shard was filled
    sha256: str
    moments: _Moments

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_covered(self) -> int:
        """How many images of the caller's order this shard accounts for, skipped ones included."""
        return len(self.image_ids) + len(self.skipped)


class StoreWriter:
    """Writes images in a fixed order into shards of ``images_per_shard`` images.

    Shard k always holds images [k*S, (k+1)*S) of the order the caller feeds, so an interrupted
    run that resumes ends byte-identical to an uninterrupted one.

    Skipped images (:meth:`skip`, e.g. unreadable files) occupy no slot: shard k holds the k-th
    group of S *stored* images, and a skip is recorded in the metadata of the shard being filled
    when it is reported, so it survives a kill together with that shard. Skips reported after the
    last shard is complete are only written to the manifest at :meth:`close`; a killed run
    simply reports them again when it resumes.

    Resume: constructing a writer on a folder without ``manifest.json`` keeps its leading full
    shards, deletes temporary files of a killed run and any shard after them (a short last
    shard is rewritten identically), and reports what is stored in :attr:`done` /
    :attr:`n_done`. The caller skips those leading images of its order and feeds the rest in
    the same order, with the same skips. Call :meth:`add` and :meth:`skip` in pool order.

    Memory: the images of one shard are buffered (S * T * D * 2 bytes of float16 tokens).

    Usable as a context manager: the store is closed only if the block raised nothing, so a
    failed run leaves a resumable folder rather than a store that looks complete.
    """

    def __init__(
        self, folder: Path, dim: int, images_per_shard: int = 1024, info: dict | None = None
    ) -> None:
        self.folder = Path(folder)
        self.dim = int(dim)
        self.images_per_shard = int(images_per_shard)
        self.info = self._copy_info(info or {})
        self._check_arguments()
        self._shards = self._resume()
        self._pending: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self._pending_skips: list[tuple[str, str]] = []
        self._trailing_skips: list[tuple[str, str]] = []
        self._seen = set(self.done)
        self._closed = False

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._closed:
            self.close()

    @property
    def done(self) -> set[str]:
        """Ids (stored or skipped) in complete shards on disk: the caller need not feed them."""
        return {i for s in self._shards for i in [*s.image_ids, *(sid for sid, _ in s.skipped)]}

    @property
    def n_done(self) -> int:
        """How many leading images of the caller's order are complete (skipped ones included)."""
        return sum(s.n_covered for s in self._shards)

    def add(self, image_id: str, tokens, boxes) -> None:
        """Append one image: ``tokens [T, D]`` float, ``boxes [T, 4]`` in [0, 1], T >= 1.

        Torch tensors (any device) or numpy arrays; stored as float16. The shard is written as
        soon as it holds ``images_per_shard`` images.
        """
        self._check_new(image_id)
        tokens16, boxes16 = self._validate(image_id, tokens, boxes)
        self._pending.append((image_id, tokens16, boxes16))
        self._seen.add(image_id)
        if len(self._pending) == self.images_per_shard:
            self._flush()

    def skip(self, image_id: str, reason: str) -> None:
        """Record an image that could not be encoded; the manifest lists it with ``reason``."""
        self._check_new(image_id)
        if not isinstance(reason, str) or not reason:
            raise StoreError(f"skip({image_id!r}): give the reason as a non-empty string")
        self._pending_skips.append((image_id, reason))
        self._seen.add(image_id)

    def close(self) -> Path:
        """Write the last (short) shard, then index, stats and, last of all, the manifest."""
        self._check_open()
        if self._pending:
            self._flush()
        self._trailing_skips = self._pending_skips
        self._pending_skips = []
        if not self._shards:
            raise StoreError(
                f"{self.folder}: no image was stored (all {len(self._trailing_skips)} skipped or "
                "none added); check the image pool and the encoder before writing a store"
            )
        self._write_index()
        moments = self._write_stats()
        write_json(self.folder / MANIFEST_NAME, self._manifest(moments))
        self._closed = True
        return self.folder

    # -- construction and resume ------------------------------------------------------------

    def _copy_info(self, info: dict) -> dict:
        """A deep copy through JSON: what the manifest will hold, fixed now, checked early."""
        try:
            return json.loads(json.dumps(info, sort_keys=True))
        except (TypeError, ValueError) as err:
            raise StoreError(
                f"StoreWriter({self.folder}): info must be JSON-serialisable (str, numbers, "
                f"lists, dicts) because it goes into {MANIFEST_NAME}: {err}"
            ) from err

    def _check_arguments(self) -> None:
        if self.dim < 1 or self.images_per_shard < 1:
            raise StoreError(
                f"StoreWriter({self.folder}): dim ({self.dim}) and images_per_shard "
                f"({self.images_per_shard}) must be positive"
            )
        if (self.folder / MANIFEST_NAME).exists():
            raise StoreError(
                f"{self.folder} is already a complete feature store ({MANIFEST_NAME} exists); "
                "read it with FeatureStore, or delete the folder to write it again"
            )

    def _resume(self) -> list[_Shard]:
        """Clean up after a killed run and return the leading full shards, which are kept."""
        self.folder.mkdir(parents=True, exist_ok=True)
        derived = [self.folder / INDEX_NAME, self.folder / STATS_NAME]  # rewritten by close()
        for leftover in [*self.folder.glob(".*.tmp"), *derived]:
            leftover.unlink(missing_ok=True)
        kept: list[_Shard] = []
        for path in sorted(self.folder.glob(SHARD_GLOB)):
            if path.name == shard_name(len(kept)):
                shard = self._read_shard(path)
                if len(shard.image_ids) == self.images_per_shard:
                    kept.append(shard)
                    continue
            path.unlink()  # a short last shard or one after a gap: rewritten identically
        return kept

    def _read_shard(self, path: Path) -> _Shard:
        try:
            with safe_open(path, framework="pt") as f:
                meta = json.loads((f.metadata() or {})[META_KEY])
                tokens = f.get_tensor("tokens")
                offsets = f.get_tensor("offsets").numpy()
        except (SafetensorError, KeyError, ValueError, OSError) as err:
            raise StoreError(
                f"cannot resume {self.folder}: shard {path.name} is unreadable ({err}); "
                "delete that shard (and later ones) and run again"
            ) from err
        self._check_compatible(path, meta, tokens)
        skipped = [(i, r) for i, r in meta["skipped"]]
        return _Shard(
            path.name, meta["image_ids"], offsets, skipped, _sha256(path), _Moments.of(tokens)
        )

    def _check_compatible(self, path: Path, meta: dict, tokens: torch.Tensor) -> None:
        found = (meta.get("format_version"), meta.get("images_per_shard"), tokens.shape[1])
        wanted = (FORMAT_VERSION, self.images_per_shard, self.dim)
        if found != wanted:
            raise StoreError(
                f"cannot resume {self.folder}: {path.name} has (format_version, images_per_shard,"
                f" dim) = {found}, this writer {wanted}; pass the same settings as the killed "
                "run, or delete the folder to start over"
            )

    # -- adding images ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.folder}: the store is closed; open a new StoreWriter")

    def _check_new(self, image_id: str) -> None:
        self._check_open()
        if not isinstance(image_id, str) or not image_id:
            raise StoreError(f"{self.folder}: image ids must be non-empty str, got {image_id!r}")
        if image_id in self._seen:
            where = "this run"
            if image_id in self.done:
                where = "a complete shard (skip the ids in writer.done when resuming)"
            raise StoreError(f"{self.folder}: image {image_id!r} was already added in {where}")

    def _validate(self, image_id: str, tokens, boxes) -> tuple[torch.Tensor, torch.Tensor]:
        """Check shapes and values; return CPU float16 ``tokens [T, D]`` and ``boxes [T, 4]``."""
        tokens, boxes = torch.as_tensor(tokens).detach(), torch.as_tensor(boxes).detach()
        where = f"{self.folder}: image {image_id!r}"
        if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] != self.dim:
            raise StoreError(
                f"{where}: tokens must be [T, {self.dim}] with T >= 1, got {list(tokens.shape)}"
            )
        if not tokens.is_floating_point():
            raise StoreError(f"{where}: tokens must be floating point, got {tokens.dtype}")
        if tuple(boxes.shape) != (tokens.shape[0], 4):
            raise StoreError(
                f"{where}: boxes must be [T, 4] = [{tokens.shape[0]}, 4] to match the tokens, "
                f"got {list(boxes.shape)}"
            )
        tokens16 = tokens.to("cpu", STORE_DTYPE).contiguous()
        boxes16 = boxes.to("cpu", STORE_DTYPE).contiguous()
        self._check_values(where, tokens, tokens16, boxes16)
        return tokens16, boxes16

    @staticmethod
    def _check_values(where: str, tokens, tokens16, boxes16) -> None:
        if not torch.isfinite(tokens16).all():
            if not torch.isfinite(tokens).all():
                raise StoreError(f"{where}: tokens contain NaN or inf; check the encoder output")
            raise StoreError(
                f"{where}: tokens exceed the float16 range (max |x| = "
                f"{tokens.abs().max().item():.3g} > 65504); rescale the encoder's output"
            )
        lo, hi = boxes16.min().item(), boxes16.max().item()
        if lo < -_BOX_TOLERANCE or hi > 1 + _BOX_TOLERANCE:
            raise StoreError(
                f"{where}: boxes must be normalised to [0, 1], found values in [{lo:.3g}, "
                f"{hi:.3g}]; divide x by the image width and y by its height, and clip"
            )

    def _flush(self) -> None:
        """Write the pending images as the next shard: temp name first, renamed when complete."""
        ids = [image_id for image_id, _, _ in self._pending]
        tokens = torch.cat([t for _, t, _ in self._pending])
        boxes = torch.cat([b for _, _, b in self._pending])
        lengths = torch.tensor([len(t) for _, t, _ in self._pending], dtype=torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
        meta = {
            "format_version": FORMAT_VERSION,
            "images_per_shard": self.images_per_shard,
            "image_ids": ids,
            "skipped": self._pending_skips,
        }
        name = shard_name(len(self._shards))
        with atomic_path(self.folder / name) as tmp:
            tensors = {"tokens": tokens, "boxes": boxes, "offsets": offsets}
            save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta, sort_keys=True)})
            digest = _sha256(tmp)
        shard = _Shard(
            name, ids, offsets.numpy(), list(self._pending_skips), digest, _Moments.of(tokens)
        )
        self._shards.append(shard)
        self._pending, self._pending_skips = [], []

    # -- closing ----------------------------------------------------------------------------

    def _write_index(self) -> None:
        rows: dict[str, list] = {"image_id": [], "shard": [], "start": [], "length": []}
        for k, shard in enumerate(self._shards):
            rows["image_id"] += shard.image_ids
            rows["shard"] += [k] * len(shard.image_ids)
            rows["start"] += shard.offsets[:-1].tolist()
            rows["length"] += np.diff(shard.offsets).tolist()
        with atomic_path(self.folder / INDEX_NAME) as tmp:
            pq.write_table(pa.table(rows, schema=_INDEX_SCHEMA), tmp)

    def _write_stats(self) -> _Moments:
        moments = _Moments.empty(self.dim)
        for shard in self._shards:
            moments = moments.merge(shard.moments)
        tensors = {
            "mean": torch.from_numpy(moments.mean.astype(np.float32)),
            "std": torch.from_numpy(moments.std().astype(np.float32)),
            "count": torch.tensor(moments.count, dtype=torch.int64),
        }
        with atomic_path(self.folder / STATS_NAME) as tmp:
            save_file(tensors, tmp)
        return moments

    def _manifest(self, moments: _Moments) -> dict[str, Any]:
        lengths = np.concatenate([np.diff(s.offsets) for s in self._shards])
        skipped = [s for shard in self._shards for s in shard.skipped] + self._trailing_skips
        return {
            "format": "vecomp-feature-store",
            "format_version": FORMAT_VERSION,
            "dtype": "float16",
            "dim": self.dim,
            "images_per_shard": self.images_per_shard,
            "n_images": int(len(lengths)),
            "n_tokens": int(moments.count),
            "tokens_per_image": {
                "min": int(lengths.min()),
                "max": int(lengths.max()),
                "mean": float(lengths.mean()),
            },
            "shards": [
                {
                    "file": s.file,
                    "n_images": len(s.image_ids),
                    "n_tokens": s.n_tokens,
                    "sha256": s.sha256,
                }
                for s in self._shards
            ],
            "skipped": [{"image_id": i, "reason": r} for i, r in skipped],
            "info": self.info,
        }


class FeatureStore:
    """Random access by image id; memory-mapped (safetensors safe_open) or fully in RAM.

    Memory-mapped mode opens each shard lazily, once per process, and reads only the rows of the
    requested image; the page cache does the rest. ``in_memory=True`` loads every shard (as
    float16) up front, for stores that fit in RAM and many passes over them. A store pickles
    without its open files, so DataLoader workers open their own.

    A consumer never trusts bytes that differ from what the writer recorded: each shard is
    checked when it is first opened (``check=True``): its sha256 against the manifest, its width
    against the manifest's ``dim``, its values for NaN and inf. That is one read of the shard,
    which the page cache then serves to the reads that follow (bench/store_check.py measures it).
    """

    def __init__(self, folder: Path, in_memory: bool = False, check: bool = True) -> None:
        self.folder = Path(folder)
        self.in_memory = in_memory
        self.check = check
        self.manifest = self._read_manifest()
        self.dim: int = int(self.manifest["dim"])
        self._paths = [self.folder / s["file"] for s in self.manifest["shards"]]
        self._check_shards_exist()
        self.image_ids, self._locations = self._read_index()
        self._mean, self._std = self._read_stats()
        self._sources: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._handles: dict[int, Any] = {}
        if in_memory:
            self._load_all()

    def __len__(self) -> int:
        return len(self.image_ids)

    def __contains__(self, image_id) -> bool:
        return image_id in self._locations

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.folder)!r}, {len(self)} images, dim={self.dim})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if not self.in_memory:
            state["_sources"], state["_handles"] = {}, {}
        return state

    def get(self, image_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[T, D]`` and boxes ``[T, 4]`` of one image, as float32."""
        tokens, boxes = self._rows(image_id)
        return tokens.float(), boxes.float()

    def get_batch(
        self, image_ids: list[str], max_tokens: int | None = None, normalize: bool = False
    ) -> dict[str, torch.Tensor]:
        """Stack images padded to the longest one: the fusion model's visual input.

        Returns ``tokens [B, T, D]`` float32, ``boxes [B, T, 4]`` float32 and ``mask [B, T]``
        bool (True = real token); padding is zero. ``max_tokens`` keeps each image's first
        ``max_tokens`` tokens (encoders emit the most important ones first: CLS, top-scoring
        regions) and reads no more. ``normalize`` applies ``(x - mean) / std`` from the store's
        statistics to real tokens, so that encoders of very different scales can be mixed.
        """
        if max_tokens is not None and max_tokens < 1:
            raise StoreError(f"get_batch: max_tokens must be >= 1 or None, got {max_tokens}")
        if not image_ids:
            raise StoreError(f"get_batch: no image ids given ({self.folder})")
        shards, starts, lengths = self._locate(image_ids, max_tokens)
        mask = torch.arange(int(lengths.max())) < lengths[:, None]  # [B, T]
        padding = (~mask).flatten().nonzero().squeeze(1)  # positions in the flat [B * T]
        rows = (starts[:, None] + torch.arange(mask.shape[1])).flatten().index_fill(0, padding, 0)
        tokens, boxes = self._gather(shards.repeat_interleave(mask.shape[1]), rows)  # [B * T, .]
        if normalize:
            tokens.sub_(self._mean).div_(self._std.clamp_min(_STD_FLOOR))
        tokens, boxes = tokens.index_fill_(0, padding, 0.0), boxes.index_fill_(0, padding, 0.0)
        tokens = tokens.view(*mask.shape, self.dim)  # [B, T, D], zero where ~mask
        boxes = boxes.view(*mask.shape, 4)
        return {"tokens": tokens, "boxes": boxes, "mask": mask}

    def _gather(self, shards: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """float32 tokens ``[N, D]`` and boxes ``[N, 4]`` of token ``rows[i]`` of shard
        ``shards[i]``: one ``index_select`` per shard (a batch-level read: bench/store_read.py)."""
        parts = [(k, (shards == k).nonzero().squeeze(1)) for k in shards.unique().tolist()]
        if len(parts) == 1:
            source_tokens, source_boxes = self._source(parts[0][0])
            return source_tokens.index_select(0, rows).float(), source_boxes.index_select(
                0, rows
            ).float()
        tokens, boxes = torch.empty(len(rows), self.dim), torch.empty(len(rows), 4)
        for k, where in parts:
            source_tokens, source_boxes = self._source(k)
            tokens.index_copy_(0, where, source_tokens.index_select(0, rows[where]).float())
            boxes.index_copy_(0, where, source_boxes.index_select(0, rows[where]).float())
        return tokens, boxes

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension ``mean [D]`` and population ``std [D]`` (float32) over all tokens."""
        return self._mean.clone(), self._std.clone()

    def verify(self) -> int:
        """Check every shard now, as a consuming run checks each one when it first opens it
        (sha256 against the manifest, width against ``dim``, NaN/inf); returns the bytes read."""
        was, self.check = self.check, True
        try:
            for k in range(len(self._paths)):
                self._open(k)
        finally:
            self.check = was
        return sum(path.stat().st_size for path in self._paths)

    def _verify_shard(self, k: int) -> None:
        path, recorded = self._paths[k], self.manifest["shards"][k]["sha256"]
        if not path.is_file():
            raise StoreError(f"{self.folder}: shard {path.name} is missing; {self._rebuild}")
        actual = _sha256(path)
        if actual != recorded:
            raise StoreError(
                f"{self.folder}: shard {path.name} is not the shard that was written (sha256 "
                f"{actual}, {MANIFEST_NAME} records {recorded}); {self._rebuild}"
            )

    @property
    def _rebuild(self) -> str:
        return (
            f"restore it (`dvc checkout {self.folder}`) or rebuild the store (delete "
            f"{self.folder} and rerun the pipeline)"
        )

    # -- opening ----------------------------------------------------------------------------

    def _read_manifest(self) -> dict:
        path = self.folder / MANIFEST_NAME
        if not self.folder.is_dir():
            raise StoreError(f"no feature store at {self.folder}; run the feature extraction")
        if not path.is_file() and not any(self.folder.glob(SHARD_GLOB)):
            raise StoreError(
                f"{self.folder} is not a feature store (no {MANIFEST_NAME}, no shards): pass "
                "the folder `vecomp extract-features --out` wrote"
            )
        if not path.is_file():
            raise StoreError(
                f"{self.folder} is not a complete feature store (no {MANIFEST_NAME}): its "
                "writer did not finish; run the extraction again (it resumes where it stopped)"
            )
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise StoreError(f"{path} is not JSON ({err}); {self._rebuild}") from None
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{path}: format_version {version!r}, this code reads {FORMAT_VERSION}; "
                "rebuild the store with this version of vecomp"
            )
        return manifest

    def _check_shards_exist(self) -> None:
        for path in [*self._paths, self.folder / INDEX_NAME, self.folder / STATS_NAME]:
            if not path.is_file():
                raise StoreError(
                    f"{self.folder}: {path.name} is missing although {MANIFEST_NAME} lists it; "
                    "restore it (e.g. `dvc checkout`) or rebuild the store"
                )

    def _read_index(self) -> tuple[list[str], dict[str, tuple[int, int, int]]]:
        table = pq.read_table(self.folder / INDEX_NAME)
        ids = table.column("image_id").to_pylist()
        columns = (table.column(c).to_pylist() for c in ("shard", "start", "length"))
        locations = dict(zip(ids, zip(*columns, strict=True), strict=True))
        if len(locations) != self.manifest["n_images"]:
            raise StoreError(
                f"{self.folder}: {INDEX_NAME} has {len(locations)} distinct images, "
                f"{MANIFEST_NAME} says {self.manifest['n_images']}; rebuild the store"
            )
        return ids, locations

    def _read_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        stats = load_file(self.folder / STATS_NAME)
        return stats["mean"], stats["std"]

    def _load_all(self) -> None:
        """Copy every shard out of its memory map into RAM and close the files."""
        for k in range(len(self._paths)):
            tokens, boxes = self._open(k)
            self._sources[k] = (tokens.clone(), boxes.clone())
        self._handles.clear()

    def _open(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Shard k's float16 ``tokens [N_tok, D]`` and ``boxes [N_tok, 4]`` as views of the file.

        safetensors' torch backend memory-maps the file, so ``get_tensor`` copies nothing and
        slicing a view reads only that image's pages. A ``get()`` this way is ~3x faster than
        with ``get_slice(...)[a:b]``, whose per-call overhead dominates small reads (measured
        with bench/store_read.py, safetensors 0.8).
        """
        path = self._paths[k]
        if self.check:
            self._verify_shard(k)
        try:
            handle = safe_open(path, framework="pt")
            tokens, boxes = handle.get_tensor("tokens"), handle.get_tensor("boxes")
        except (SafetensorError, OSError) as err:
            raise StoreError(
                f"{self.folder}: shard {path.name} cannot be read ({err}); {self._rebuild}"
            ) from None
        if tokens.dim() != 2 or tokens.shape[1] != self.dim:
            raise StoreError(
                f"{self.folder}: shard {path.name} holds tokens of shape {list(tokens.shape)}, "
                f"{MANIFEST_NAME} says dim {self.dim}; {self._rebuild}"
            )
        if self.check and not torch.isfinite(tokens).all():
            raise StoreError(
                f"{self.folder}: shard {path.name} holds NaN or infinite values; {self._rebuild}"
            )
        self._handles[k] = handle
        return tokens, boxes

    def _source(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Shard k's tensors: loaded at construction (in memory) or opened on first use."""
        source = self._sources.get(k)
        if source is None:
            source = self._sources[k] = self._open(k)
        return source

    def _location(self, image_id: str) -> tuple[int, int, int]:
        """(shard, first token row, token count) of one image."""
        location = self._locations.get(image_id)
        if location is None:
            raise ImageNotFoundError(
                f"image {image_id!r} is not in the feature store {self.folder} ({len(self)} "
                "images); check that the store was built for this image pool"
            )
        return location

    def _locate(self, image_ids: list[str], limit: int | None) -> tuple[torch.Tensor, ...]:
        """Shard ``[B]``, first row ``[B]`` and token count ``[B]`` (at most ``limit``)."""
        shards, starts, lengths = torch.tensor([self._location(i) for i in image_ids]).unbind(1)
        return shards, starts, lengths if limit is None else lengths.clamp_max(limit)

    def _rows(self, image_id: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The float16 ``tokens [T, D]`` and ``boxes [T, 4]`` of one image."""
        k, start, length = self._location(image_id)
        tokens, boxes = self._source(k)
        return tokens[start : start + length], boxes[start : start + length]
