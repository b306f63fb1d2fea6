"""Parsers of the official dataset formats into one common record layout per task.

A parser takes {registry file key: local path} (an extracted folder for archives, the file itself
otherwise) and returns a :class:`Parsed`: records per split (``train``/``dev``/``test``) and the
malformed records it met. Every record has ``sample_id``, ``image_id`` and ``text``; classification
tasks add ``answer``; the rest is task-specific. Register a parser with ``@register("task")``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ijson

from ...errors import VecompError
from ..registry import UnknownNameError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Problem:
    split: str
    where: str  # which record: a file and an index or id
    reason: str
    kind: str = "malformed record"  # what the report counts it under
    sample_id: str | None = None  # set when the record was parsed (it must then be dropped)

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class Parsed:
    records: dict[str, list[dict]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    problems: list[Problem] = field(default_factory=list)

    def add(self, split: str, record: dict) -> None:
        self.records[split].append(record)

    def bad(self, split: str, where: str, reason: str) -> None:
        self.problems.append(Problem(split, where, reason))


class FormatError(VecompError, ValueError):
    """A file that is not in the format its dataset publishes (not one bad record: the file)."""


Parser = Callable[[dict[str, Path]], Parsed]
PARSERS: dict[str, Parser] = {}


def register(task: str) -> Callable[[Parser], Parser]:
    def decorate(fn: Parser) -> Parser:
        PARSERS[task] = fn
        return fn

    return decorate


def get_parser(task: str) -> Parser:
    from . import gqa, karpathy, nlvr2, snli_ve, vqav2  # noqa: F401 - they register themselves

    try:
        return PARSERS[task]
    except KeyError:
        raise UnknownNameError(
            f"no parser for task {task!r}; tasks with parsers: {', '.join(sorted(PARSERS))}"
        ) from None


def member(files: dict[str, Path], key: str, name: str | None = None) -> Path:
    """The file ``name`` inside the extracted archive ``key`` (or the plain file ``key``)."""
    if key not in files:
        raise FormatError(f"the parser needs {key!r} but was given only {sorted(files)}")
    root = files[key]
    if name is None:
        return root
    hits = sorted(root.rglob(name)) if root.is_dir() else []
    if not hits:
        raise FormatError(f"{name} not found inside {root} (extracted from {key})")
    return hits[0]


def read_json(path: Path):
    """A whole (small) JSON file. The official formats' large files are streamed instead
    (``stream_members``, ``stream_items``)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FormatError(f"{path} is not valid JSON: {err}") from err


def _check_top_level_object(path: Path) -> None:
    """Every official format here holds one JSON object; say so before streaming it."""
    with path.open("rb") as handle:
        first = handle.read(4096).lstrip()[:1]
    if first != b"{":
        kinds = {
            b"[": "list",
            b'"': "str",
            b"t": "bool",
            b"f": "bool",
            b"n": "null",
            b"": "nothing",
        }
        kind = kinds.get(first, "a number" if first in b"-0123456789" else f"{first!r}")
        raise FormatError(f"{path} must hold a JSON object at the top level, not {kind}")


def _streamed(path: Path, events) -> Iterator:
    """Values from an ijson iterator, with invalid JSON (anywhere in the file, reported when
    the stream reaches it) as a FormatError naming the file."""
    _check_top_level_object(path)
    with path.open("rb") as handle:
        try:
            yield from events(handle)
        except ijson.JSONError as err:
            raise FormatError(f"{path} is not valid JSON: {err}") from err


def stream_members(path: Path) -> Iterator[tuple[str, object]]:
    """(key, value) of each member of a JSON file's top-level object, one at a time, so that a
    parser holds what it keeps of a GB-sized file (GQA's train questions: ~1.4 GB), not the file.
    The file must be valid JSON to its end; numbers come as int or float."""
    return _streamed(path, lambda handle: ijson.kvitems(handle, "", use_float=True))


def stream_items(path: Path, key: str) -> Iterator[object]:
    """The items of the array under the top-level ``key`` of a JSON file, one at a time (VQAv2's
    annotations, Karpathy's images); none if there is no such array."""
    return _streamed(path, lambda handle: ijson.items(handle, f"{key}.item", use_float=True))


def read_json_object(path: Path) -> dict:
    """A small JSON file whose top level must be an object."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(
            f"{path} must hold a JSON object at the top level, not {type(data).__name__}"
        )
    return data


def read_jsonl(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, record or None, error or None) for each non-empty line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield number, None, f"not valid JSON ({err.msg})"
                continue
            if not isinstance(record, dict):
                yield number, None, "not a JSON object"
                continue
            yield number, record, None


def field_problem(
    record: dict, required: tuple[str, ...], text: tuple[str, ...] = ()
) -> str | None:
    """Why ``record`` cannot be parsed: a ``required`` field is missing (or null), or a ``text``
    field holds something other than a string (a number where the format has text would give
    the tables a column of mixed types); None when neither."""
    absent = [k for k in required if record.get(k) is None]
    if absent:
        return f"missing field(s) {', '.join(absent)}"
    wrong = [
        f"{k} is {type(record[k]).__name__} {record[k]!r}"
        for k in text
        if k in record and not isinstance(record[k], str)
    ]
    return f"field(s) {', '.join(wrong)}, where the format has text" if wrong else None
