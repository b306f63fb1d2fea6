"""Region features pre-extracted by the bottom-up-attention detector (Anderson et al. 2018).

The field shares these features as tab-separated files rather than as a checkpoint any current
library loads. One line per image, no header, arrays as base64 of their raw bytes, in one of two
layouts (told apart by the number of fields):

* LXMERT's ``*_obj36.tsv`` (airsplay/lxmert ``src/utils.py``): ``img_id, img_h, img_w,
  objects_id (int64), objects_conf (f32), attrs_id (int64), attrs_conf (f32), num_boxes,
  boxes (f32 [n, 4]), features (f32 [n, D])``; ids such as ``COCO_train2014_000000458752``,
  ``2354786``, ``n336443`` (GQA) or ``train-10171-0-img0`` (NLVR2);
* bottom-up-attention's own ``generate_tsv.py`` files (``trainval_36.zip`` and the 10-100 box
  release, sometimes split as ``*.tsv.0``, ``*.tsv.1``): ``image_id, image_w, image_h,
  num_boxes, boxes, features``; width before height, integer COCO ids.

Both were written by Python 2's ``csv.DictWriter`` (``\\r\\n`` line ends) and boxes are pixel
corners (x0, y0, x1, y1) of the original image. Files hold images in directory order and may
lack some (the generators printed an error and went on): a pool image that no file holds is
reported like an unreadable image. A COCO file is about 20 GB, so files are never loaded whole:
a first pass records where each image's line starts (and each file's sha256), a second reads the
lines of the pool's images in pool order, one at a time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VecompError

LXMERT_FIELDS = (
    "img_id",
    "img_h",
    "img_w",
    "objects_id",
    "objects_conf",
    "attrs_id",
    "attrs_conf",
    "num_boxes",
    "boxes",
    "features",
)
BUTD_FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")
LAYOUTS = {len(fields): fields for fields in (LXMERT_FIELDS, BUTD_FIELDS)}
_NAMES = {
    "img_id": "id",
    "image_id": "id",
    "img_h": "height",
    "image_h": "height",
    "img_w": "width",
    "image_w": "width",
}
_READ_BLOCK = 1 << 20


class BottomUpError(VecompError):
    """The precomputed files cannot be read as bottom-up features; the message says where."""


class BadRecordError(BottomUpError):
    """One image's line is malformed: reported for that image, like an unreadable file."""


@dataclass(frozen=True)
class Record:
    image_id: str
    width: int
    height: int
    boxes: np.ndarray  # [n, 4] float32, pixel corners
    features: np.ndarray  # [n, D] float32

    def normalised_boxes(self) -> np.ndarray:
        """Boxes in [0, 1] image coordinates: x by the width, y by the height, clipped."""
        size = np.array([self.width, self.height, self.width, self.height], dtype=np.float32)
        return np.clip(self.boxes / size, 0.0, 1.0)


def _array(text: bytes, dtype, field: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BadRecordError(f"{field} is not base64 ({err})") from err
    if len(raw) % np.dtype(dtype).itemsize:
        raise BadRecordError(f"{field} holds {len(raw)} bytes, not whole {np.dtype(dtype)} values")
    return np.frombuffer(raw, dtype=dtype)


def _count(text: bytes, field: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRecordError(f"{field} is {text[:20]!r}, not an integer") from None
    if value < 1:
        raise BadRecordError(f"{field} is {value}; it must be positive")
    return value


def parse_record(line: bytes) -> Record:
    """One line of either layout -> Record; BadRecordError says what is wrong with it."""
    fields = line.rstrip(b"\r\n").split(b"\t")
    if len(fields) not in LAYOUTS:
        raise BadRecordError(
            f"{len(fields)} tab-separated fields; bottom-up files have {sorted(LAYOUTS)} "
            f"({', '.join(LXMERT_FIELDS)} or {', '.join(BUTD_FIELDS)})"
        )
    named = dict(zip(LAYOUTS[len(fields)], fields, strict=True))
    values = {_NAMES.get(k, k): v for k, v in named.items()}
    n = _count(values["num_boxes"], "num_boxes")
    boxes = _array(values["boxes"], np.float32, "boxes")
    features = _array(values["features"], np.float32, "features")
    if boxes.size != n * 4 or features.size % n or not features.size:
        raise BadRecordError(
            f"num_boxes is {n}, but boxes hold {boxes.size} values (want {n * 4}) and features "
            f"{features.size} (want a positive multiple of {n})"
        )
    if not np.isfinite(boxes).all() or not np.isfinite(features).all():
        raise BadRecordError("boxes or features contain NaN or inf")
    return Record(
        image_id=values["id"].decode(),
        width=_count(values["width"], "image width"),
        height=_count(values["height"], "image height"),
        boxes=boxes.reshape(n, 4).copy(),  # writable: frombuffer's view of the line is not
        features=features.reshape(n, -1).copy(),
    )


def tsv_files(sources: list[Path]) -> list[Path]:
    """The feature files of each source: the file itself, or those under a folder (an
    extracted release): ``*.tsv`` and ``*.tsv.<k>`` (the multi-GPU parts), in name order."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_file():
            files.append(source)
            continue
        found = sorted(p for p in source.rglob("*") if p.is_file() and _is_tsv(p.name))
        if not found:
            raise BottomUpError(
                f"{source}: no bottom-up feature files (*.tsv, *.tsv.0, ...) "
                + ("in this folder" if source.is_dir() else "exist at this path")
                + "; check the encoder's `files` for this pool"
            )
        files += found
    return files


def _is_tsv(name: str) -> bool:
    stem, _, part = name.rpartition(".")
    return name.endswith(".tsv") or (stem.endswith(".tsv") and part.isdigit())


@dataclass(frozen=True)
class Location:
    file: int  # position in Catalogue.files
    offset: int  # byte offset of the line
    length: int  # bytes, line end included
    line: int  # 1-based, for messages


@dataclass
class Catalogue:
    """Where each pool image's line is, and what each file was (path, bytes, sha256)."""

    files: list[Path]
    where: dict[str, Location]
    sources: list[dict]

    def describe(self, location: Location) -> str:
        return f"{self.files[location.file]}, line {location.line}"

    def read(self, image_id: str) -> Record:
        """The record of one image; BadRecordError (naming file and line) if it is malformed."""
        location = self.where[image_id]
        with self.files[location.file].open("rb") as f:
            f.seek(location.offset)
            line = f.read(location.length)
        try:
            record = parse_record(line)
        except BadRecordError as err:
            raise BadRecordError(f"{self.describe(location)}: {err}") from None
        return record


def _lines(path: Path, digest) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of every line, hashing the file's bytes on the way."""
    offset, tail = 0, b""
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
            *complete, tail = (tail + block).split(b"\n")
            for line in complete:
                yield offset, line + b"\n"
                offset += len(line) + 1
    if tail:
        yield offset, tail


def catalogue(files: list[Path], to_pool_id: Callable[[str], str]) -> Catalogue:
    """Scan every file once: each image's line (by pool image id) and each file's sha256.

    An image in two files (or twice in one) must have the same line both times; a line whose id
    the pool cannot read stops the scan, naming it.
    """
    where: dict[str, Location] = {}
    first_line: dict[str, bytes] = {}  # sha256 of each kept line, to compare duplicates
    sources = []
    for k, path in enumerate(files):
        digest = hashlib.sha256()
        size = 0
        for number, (offset, line) in enumerate(_lines(path, digest), start=1):
            size = offset + len(line)
            if not line.strip():
                continue
            raw_id = line.split(b"\t", 1)[0].decode(errors="replace")
            try:
                image_id = to_pool_id(raw_id)
            except ValueError:
                raise BottomUpError(
                    f"{path}, line {number}: image id {raw_id!r} is not an id of this pool's "
                    "images; these features belong to another image pool"
                ) from None
            line_sum = hashlib.sha256(line.rstrip(b"\r\n")).digest()
            if image_id in where:
                if first_line[image_id] != line_sum:
                    raise BottomUpError(
                        f"image {image_id} has two different records: "
                        f"{files[where[image_id].file]}, line {where[image_id].line} and {path}, "
                        f"line {number}; keep one file per image set"
                    )
                continue
            where[image_id] = Location(k, offset, len(line), number)
            first_line[image_id] = line_sum
        sources.append(
            {"path": path.as_posix(), "bytes": size, "sha256": digest.hexdigest(), "images": None}
        )
    counts = np.bincount([loc.file for loc in where.values()], minlength=len(files))
    for source, count in zip(sources, counts, strict=True):
        source["images"] = int(count)
    return Catalogue(files, where, sources)
