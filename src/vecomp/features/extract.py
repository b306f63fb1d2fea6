"""Feature extraction: one encoder over one image pool into one sharded store.

Images are read in image-id order by a DataLoader (worker processes, pinned memory on a GPU),
encoded in batches (bf16 autocast on a GPU, fp32 on a CPU) and written to a
:class:`~vecomp.features.store.StoreWriter`. The workers decode and transform the images (PIL),
or, with ``decode="device"`` (``auto`` on a GPU), only read and check the files, which the
encoding device then decodes in batches (``decode.py``). A killed run resumes from its last
complete shard and ends byte-identical to an uninterrupted one. Unreadable images stop the run
with a list of them, or, with ``on_bad_images="skip"``, are recorded in the store's manifest
and left out.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import shutil
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.registry import get_pool
from ..devices import autocast, pick_device
from ..encoders.base import VisionEncoder
from ..encoders.factory import create_encoder
from ..encoders.precomputed import PrecomputedRegions
from ..errors import VecompError
from ..io import write_json
from ..settings import add_setting, existing_path, json_object
from ..weights import weights_hash
from .bottom_up import BadRecordError, BottomUpError, Catalogue, catalogue, tsv_files
from .decode import decode_on_device, file_tensor
from .store import StoreWriter

SHOW_OFFENDERS = 10


class UnreadableImagesError(VecompError):
    pass


class PoolImages(Dataset):
    """(position, image tensor or None, error or None) for each row of a pool index; without a
    ``transform``, the file's bytes (a uint8 tensor) instead of the image, for the encoding
    device to decode.

    An image is encoded only if its bytes are the ones the pool index recorded (``sha256``): a
    file replaced after indexing is an unreadable image like a corrupt one. The file is read
    once, for the checksum and the decoding.
    """

    def __init__(self, paths: list[str], digests: list[str | None], transform):
        self.paths = paths
        self.digests = digests
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            data = Path(self.paths[i]).read_bytes()
            actual = hashlib.sha256(data).hexdigest()
            if actual != self.digests[i]:
                return i, None, _changed(actual, self.digests[i])
            if self.transform is None:
                return i, file_tensor(data), None
            with Image.open(io.BytesIO(data)) as image:
                return i, self.transform(image.convert("RGB")), None
        except Exception as err:  # a corrupt file: reported by the caller, never silently lost
            return i, None, f"{type(err).__name__}: {err}"


def _changed(actual: str, recorded: str | None) -> str:
    return (
        f"the file changed since the pool was indexed (sha256 {actual}, the index records "
        f"{recorded}); rerun `vecomp index-pool` (Snakemake does when the images' archive changes)"
    )


def _collate(items):
    good = [(i, t) for i, t, e in items if e is None]
    bad = [(i, e) for i, _, e in items if e is not None]
    images = _stack([t for _, t in good]) if good else None
    return [i for i, _ in good], images, bad


def _collate_files(items):
    """As ``_collate``, with each file's bytes in place of its image."""
    good = [(i, data) for i, data, e in items if e is None]
    return [i for i, _ in good], [data for _, data in good], [(i, e) for i, _, e in items if e]


def _decoded(positions, files, bad, device, transform):
    """Decode a batch of files on ``device``; files it cannot decode join the unreadable."""
    images, errors = decode_on_device(files, device, transform)
    bad = bad + [(p, e) for p, e in zip(positions, errors, strict=True) if e is not None]
    good = [(p, image) for p, image in zip(positions, images, strict=True) if image is not None]
    stacked = _stack([image for _, image in good]) if good else None
    return [p for p, _ in good], stacked, bad


def device_transform(decode: str, encoder: VisionEncoder, device: torch.device):
    """The encoder's transform for images decoded on the encoding device, or None where the
    workers decode them: decoding on the device is ``decode: device``, or ``auto`` on a GPU."""
    if decode == "cpu" or (decode == "auto" and device.type != "cuda"):
        return None
    transform = encoder.tensor_transform()
    if transform is None and decode == "device":
        raise VecompError(
            f"a {type(encoder).__name__} has no transform for decoded tensors, so its "
            "images cannot be decoded on the device; set features.decode: cpu (or auto)"
        )
    return transform


def _stack(images: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """One [B, 3, H, W] tensor when the images share a size (grid and patch encoders resize
    them); else the list: a detector keeps each image's size and its own transform resizes and
    pads them (real pools mix sizes and orientations, e.g. COCO's 640x480 and 480x640)."""
    if all(t.shape == images[0].shape for t in images):
        return torch.stack(images)
    return images


def _fail_on_bad(bad: list[tuple[str, str]], pool: str) -> None:
    listed = "\n".join(f"  {image_id}: {reason}" for image_id, reason in bad[:SHOW_OFFENDERS])
    more = f"\n  ... and {len(bad) - SHOW_OFFENDERS} more" if len(bad) > SHOW_OFFENDERS else ""
    raise UnreadableImagesError(
        f"{len(bad)} unreadable or changed image(s) in pool {pool!r}:\n{listed}{more}\n"
        "Replace the files, or set features.on_bad_images: skip to leave them out (the store's "
        "manifest lists them and training drops their samples)."
    )


def refuse_known_bad(index: pd.DataFrame, on_bad_images: str, pool: str) -> None:
    """Stop before any work when the pool index already lists unreadable images (error mode)."""
    known_bad = [(i, e) for i, e in zip(index.image_id, index.error, strict=True) if pd.notna(e)]
    if known_bad and on_bad_images == "error":
        _fail_on_bad(sorted(known_bad), pool)


def extract_pool(
    encoder: VisionEncoder,
    index: pd.DataFrame,
    writer: StoreWriter,
    *,
    batch_size: int = 64,
    workers: int = 0,
    device: str = "auto",
    decode: str = "auto",
    on_bad_images: str = "error",
    pool: str = "",
) -> None:
    """Encode every image of ``index`` not yet in ``writer`` and add it, in image-id order."""
    index = index.sort_values("image_id", kind="stable")
    refuse_known_bad(index, on_bad_images, pool)
    todo = index[~index.image_id.isin(writer.done)]
    ids, paths = list(todo.image_id), list(todo.path)
    digests = list(todo.sha256.where(todo.sha256.notna(), None))
    run_on = pick_device(device)
    encoder = encoder.to(run_on).eval()
    transform = device_transform(decode, encoder, run_on)
    on_device = transform is not None
    loader = DataLoader(
        PoolImages(paths, digests, None if on_device else encoder.transform()),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate_files if on_device else _collate,
        pin_memory=run_on.type == "cuda" and not on_device,
    )
    with tqdm(total=len(ids), desc=f"extract {pool}", unit="img", disable=None) as bar:
        for positions, images, bad in loader:
            if on_device:
                positions, images, bad = _decoded(positions, images, bad, run_on, transform)
            encoded = _encode(encoder, images, run_on) if images is not None else None
            _write_batch(writer, ids, positions, encoded, bad, on_bad_images, pool)
            bar.update(len(positions) + len(bad))


def import_pool(
    features: Catalogue,
    index: pd.DataFrame,
    writer: StoreWriter,
    *,
    on_bad_images: str = "error",
    pool: str = "",
) -> None:
    """Add every image of ``index`` not yet in ``writer`` from precomputed region features, in
    image-id order (as :func:`extract_pool`). An image the files lack or whose record is
    malformed counts as unreadable: it stops the run, or is skipped and recorded."""
    index = index.sort_values("image_id", kind="stable")
    reasons = {i: e for i, e in zip(index.image_id, index.error, strict=True) if pd.notna(e)}
    absent = f"not in the precomputed feature files ({len(features.files)} file(s))"
    reasons |= {i: absent for i in index.image_id if i not in features.where and i not in reasons}
    if reasons and on_bad_images == "error":
        _fail_on_bad(sorted(reasons.items()), pool)
    todo = [i for i in index.image_id if i not in writer.done]
    for image_id in tqdm(todo, desc=f"import {pool}", unit="img", disable=None):
        if image_id not in reasons:
            try:
                record = features.read(image_id)
            except BadRecordError as err:
                reasons[image_id] = str(err)
        if image_id in reasons:
            if on_bad_images == "error":
                _fail_on_bad([(image_id, reasons[image_id])], pool)
            writer.skip(image_id, reasons[image_id])
            continue
        _check_dim(record, writer.dim, features.describe(features.where[image_id]))
        boxes = torch.from_numpy(record.normalised_boxes())
        writer.add(image_id, torch.from_numpy(record.features), boxes)


def _check_dim(record, dim: int, where: str) -> None:
    found = record.features.shape[1]
    if found != dim:
        raise BottomUpError(
            f"{where}: image {record.image_id} has {found}-dimensional features, the encoder's "
            f"dim is {dim}; set the encoder's `dim: {found}` (and re-run)"
        )


@torch.inference_mode()
def _encode(encoder, images, device):
    if isinstance(images, list):
        images = [image.to(device, non_blocking=True) for image in images]
    else:
        images = images.to(device, non_blocking=True)
    with autocast(device):
        out = encoder(images)
    return out.tokens.float().cpu(), out.boxes.float().cpu(), out.mask.cpu()


def _write_batch(writer, ids, positions, encoded, bad, on_bad_images, pool) -> None:
    """Add the batch's images in pool order; record (or fail on) the unreadable ones."""
    if bad and on_bad_images == "error":
        _fail_on_bad([(ids[i], e) for i, e in bad], pool)
    rows = {p: r for r, p in enumerate(positions)}
    reasons = dict(bad)
    for position in sorted([*rows, *reasons]):
        if position in reasons:
            writer.skip(ids[position], reasons[position])
            continue
        tokens, boxes, mask = (t[rows[position]] for t in encoded)
        writer.add(ids[position], tokens[mask], boxes[mask])


def images_digest(index: pd.DataFrame, pool: str) -> dict:
    """How many images the pool index lists and one sha256 over their ids and file checksums."""
    if "sha256" not in index:
        raise VecompError(
            f"the index of image pool {pool!r} has no sha256 column (an older vecomp made it): "
            "rerun `vecomp index-pool` (Snakemake does so by itself)"
        )
    lines = "".join(
        f"{i}\t{d}\n" for i, d in sorted(zip(index.image_id, index.sha256.fillna(""), strict=True))
    )
    return {"count": len(index), "sha256": hashlib.sha256(lines.encode()).hexdigest()}


def store_info(
    name: str, spec: dict, encoder: VisionEncoder, pool: str, index: pd.DataFrame
) -> dict:
    import timm
    import torchvision
    import transformers

    return {
        "encoder": name,
        "family": encoder.family,
        "spec": spec,
        "weights_hash": weights_hash(spec.get("weights", spec.get("model"))),
        "preprocessing": encoder.preprocessing,
        "pool": pool,
        "images": images_digest(index, pool),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "transformers": transformers.__version__,
        },
    }


FINGERPRINT = "extraction.json"


def start_or_resume(folder: Path, info: dict) -> None:
    """Resume only a run of the same extraction; anything else starts from an empty folder.

    The store's shards do not record which encoder made them from which images, so the
    extraction's identity (encoder spec, weights hash, preprocessing, pool, and a digest of the
    pool's image ids and file checksums) is kept beside them: a rerun after a config, weights or
    image change must not reuse the old run's shards (new pixels under old image ids included),
    and a complete store is recomputed only when asked to run again.
    """
    identity = {k: v for k, v in info.items() if k != "versions"}
    marker = folder / FINGERPRINT
    same_run = marker.exists() and json.loads(marker.read_text()) == identity
    if folder.exists() and (not same_run or (folder / "manifest.json").exists()):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(marker, identity)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp extract-features", description=__doc__)
    parser.add_argument("--encoder", required=True, help="encoder name (the config key)")
    parser.add_argument(
        "--spec", type=json_object, required=True, help="encoder spec as JSON ({type: ..., ...})"
    )
    parser.add_argument("--pool", required=True)
    parser.add_argument("--pool-index", type=existing_path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="store folder")
    add_setting(parser, "--batch-size", "features.batch_size", type=int)
    add_setting(parser, "--workers", "features.workers", type=int)
    add_setting(parser, "--images-per-shard", "features.images_per_shard", type=int)
    add_setting(parser, "--device", "features.device")
    add_setting(parser, "--decode", "features.decode")
    add_setting(parser, "--on-bad-images", "features.on_bad_images")
    parser.add_argument(
        "--sources", type=Path, nargs="+", default=[], help="a precomputed encoder's files"
    )
    args = parser.parse_args(argv)
    spec = args.spec
    torch.manual_seed(0)
    encoder = create_encoder(spec)
    index = pd.read_parquet(args.pool_index)
    info = store_info(args.encoder, spec, encoder, args.pool, index)
    features = None
    if isinstance(encoder, PrecomputedRegions):  # imported from its files, not computed
        encoder.sources(args.pool)  # a pool the spec forgot: say so before reading anything
        features = catalogue(tsv_files(args.sources), get_pool(args.pool).image_id)
        info["sources"] = features.sources
    if features is None:
        refuse_known_bad(index, args.on_bad_images, args.pool)  # before the folder is touched
    start_or_resume(args.out, info)
    try:
        with StoreWriter(args.out, encoder.dim, args.images_per_shard, info) as writer:
            options = {"on_bad_images": args.on_bad_images, "pool": args.pool}
            if features is not None:
                import_pool(features, index, writer, **options)
            else:
                extract_pool(
                    encoder,
                    index,
                    writer,
                    batch_size=args.batch_size,
                    workers=args.workers,
                    device=args.device,
                    decode=args.decode,
                    **options,
                )
    except VecompError:
        if not any(args.out.glob("shard-*")):  # nothing a rerun could resume from: no debris
            shutil.rmtree(args.out)
        raise
    print(f"{args.encoder}/{args.pool}: {len(index)} images -> {args.out}")
    return 0
