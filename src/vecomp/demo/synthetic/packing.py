"""Byte-reproducible archives: fixed timestamps, owners and order, so a seed gives one checksum."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def json_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def jsonl_bytes(rows) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


class ZipWriter:
    """Add members to a zip with fixed metadata (``with ZipWriter(path) as z: z.add(name, b)``)."""

    def __init__(self, path: Path):
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self._zip.writestr(info, data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()


class TarGzWriter:
    """The same for .tar.gz (gzip header without a timestamp or file name)."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._file, mtime=0)
        self._tar = tarfile.TarFile(fileobj=self._gzip, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._tar.addfile(info, io.BytesIO(data))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._tar.close()
        self._gzip.close()
        self._file.close()


def archive_writer(path: Path):
    """A writer for ``path``'s format (.zip or .tar.gz)."""
    if path.name.endswith(".zip"):
        return ZipWriter(path)
    if path.name.endswith((".tar.gz", ".tgz")):
        return TarGzWriter(path)
    raise ValueError(f"cannot write archive {path.name}: use .zip or .tar.gz")
