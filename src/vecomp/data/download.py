"""Where each registry file comes from: a mirror, a manual placement, or its publisher.

- A **mirror** (``data.mirror``, or the synthetic suite's own folder) replaces every official URL
  with ``<mirror>/<key>``; its ``SHA256SUMS`` manifest, when present, gives the checksums (a
  mirror serves its own bytes, which need not be the publisher's).
- A **manual** file (behind a form or login) is taken from ``<manual_dir>/<key>``; if it is not
  there, the error says where to get it and exactly where to put it.
- Otherwise the official URL, checked against the published sha256 or the checksum lock.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

from ..settings import add_setting
from .fetch import ChecksumLock, DownloadError, fetch, parse_sha256sums
from .registry import RemoteFile, get_file


class ManualFileMissing(DownloadError):
    """A file only a person can obtain has not been placed yet."""


@dataclass(frozen=True)
class Source:
    url: str
    sha256: str | None
    size: int | None


def as_url(location: str) -> str:
    """A URL for a mirror given as a URL or a (relative) folder."""
    if urlparse(location).scheme in ("http", "https", "file"):
        return location.rstrip("/")
    return Path(location).resolve().as_uri()


def mirror_checksums(mirror_url: str, timeout_s: float = 30.0) -> dict[str, str] | None:
    """The mirror's SHA256SUMS as {key: sha256}, or None when the mirror has none."""
    url = f"{mirror_url}/SHA256SUMS"
    if url.startswith("file://"):
        path = Path(urlparse(url).path)
        return parse_sha256sums(path.read_text()) if path.exists() else None
    response = requests.get(url, timeout=timeout_s)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return parse_sha256sums(response.text)


def resolve(file: RemoteFile, mirror: str | None, manual_dir: Path) -> Source:
    if mirror:
        base = as_url(mirror)
        sums = mirror_checksums(base)
        if sums is not None and file.key not in sums:
            raise DownloadError(f"the mirror {base} lists no checksum for {file.key} in SHA256SUMS")
        return Source(f"{base}/{file.key}", sums.get(file.key) if sums else file.sha256, None)
    if file.manual:
        placed = manual_dir / file.key
        if not placed.exists():
            raise ManualFileMissing(
                f"{file.key} cannot be downloaded automatically. {file.manual}, and place it at "
                f"{placed} (or set data.mirror to a mirror that has it)."
            )
        return Source(placed.resolve().as_uri(), file.sha256, file.size)
    return Source(file.url, file.sha256, file.size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp download", description=__doc__)
    parser.add_argument("--file", required=True, help="registry key, e.g. vqav2/v2_...zip")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mirror", default=None, help="base URL or folder replacing official URLs")
    add_setting(parser, "--manual-dir", "data.manual_dir", type=Path)
    parser.add_argument("--lock", type=Path, default=None, help="checksum lock YAML")
    add_setting(parser, "--retries", "data.download.retries", type=int)
    add_setting(parser, "--timeout-s", "data.download.timeout_s", type=float)
    args = parser.parse_args(argv)
    file = get_file(args.file)
    source = resolve(file, args.mirror, args.manual_dir)
    fetch(
        source.url,
        args.out,
        sha256=source.sha256,
        size=source.size,
        lock=ChecksumLock(args.lock) if args.lock else None,
        lock_key=file.key,
        retries=args.retries,
        timeout_s=args.timeout_s,
    )
    print(f"{file.key}: {args.out} ({args.out.stat().st_size} bytes, from {source.url})")
    return 0
