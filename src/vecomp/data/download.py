"""Where each registry file comes from: a mirror, a manual placement, or its publisher, and which
checksum its bytes must match.

- A **mirror** (``data.mirror``) replaces every official URL with ``<mirror>/<key>``; a
  ``SHA256SUMS`` manifest there, when present, must list every file it serves.
- A **manual** file (behind a form or login) is taken from ``<manual_dir>/<key>``; if it is not
  there, the error says where to get it and exactly where to put it.
- Otherwise the official URL.

Which checksum is trusted: the sha256 the registry publishes and the checksum lock's entry
(``data.checksum_lock``, recorded on the first download and committed) are the references; a
mirror's ``SHA256SUMS`` only stands in for a file that has neither, and a mirror sum that
disagrees with a reference stops the download with both values. A file with no sum anywhere is
recorded in the lock on its first download (trust on first use). The synthetic suite's own mirror
(``--synthetic``) serves bytes of its own making: its ``SHA256SUMS`` are its only reference and
the lock is neither read nor written.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

from ..settings import add_setting
from .fetch import ChecksumError, ChecksumLock, DownloadError, fetch, parse_sha256sums
from .registry import RemoteFile, get_file


class ManualFileMissing(DownloadError):
    """A file only a person can obtain has not been placed yet."""


@dataclass(frozen=True)
class Source:
    url: str
    sha256: str | None
    size: int | None
    sha256_from: str  # where ``sha256`` comes from, for error messages


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


def resolve(
    file: RemoteFile, mirror: str | None, manual_dir: Path, synthetic: bool = False
) -> Source:
    if mirror:
        return _mirrored(file, as_url(mirror), synthetic)
    if synthetic:
        raise DownloadError("--synthetic names the synthetic suite's mirror: give it with --mirror")
    if file.manual:
        placed = manual_dir / file.key
        if not placed.exists():
            raise ManualFileMissing(
                f"{file.key} cannot be downloaded automatically. {file.manual}, and place it at "
                f"{placed} (or set data.mirror to a mirror that has it)."
            )
        return Source(placed.resolve().as_uri(), file.sha256, file.size, "the registry")
    return Source(file.url, file.sha256, file.size, "the registry")


def _mirrored(file: RemoteFile, base: str, synthetic: bool) -> Source:
    """``file`` from the mirror at ``base``: the registry's sum, else the mirror's."""
    url, sums = f"{base}/{file.key}", mirror_checksums(base)
    if sums is None:
        return Source(url, None if synthetic else file.sha256, None, "the registry")
    if file.key not in sums:
        raise DownloadError(f"the mirror {base} lists no checksum for {file.key} in SHA256SUMS")
    listed = sums[file.key]
    if synthetic or file.sha256 is None:
        return Source(url, listed, None, f"the mirror's {base}/SHA256SUMS")
    if listed != file.sha256.lower():
        raise ChecksumError(
            f"{file.key}: the mirror's {base}/SHA256SUMS lists sha256 {listed}, but the "
            f"publisher's is {file.sha256} (the registry): the mirror serves other bytes. Use a "
            f"mirror of the published files, or fetch from the publisher (data.mirror: null)."
        )
    return Source(url, file.sha256, None, "the registry")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp download", description=__doc__)
    parser.add_argument("--file", required=True, help="registry key, e.g. vqav2/v2_...zip")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mirror", default=None, help="base URL or folder replacing official URLs")
    add_setting(parser, "--manual-dir", "data.manual_dir", type=Path)
    add_setting(parser, "--lock", "data.checksum_lock", type=Path)
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="the mirror is the synthetic suite's: its SHA256SUMS are the only reference and the "
        "lock is not used",
    )
    add_setting(parser, "--retries", "data.download.retries", type=int)
    add_setting(parser, "--timeout-s", "data.download.timeout_s", type=float)
    args = parser.parse_args(argv)
    file = get_file(args.file)
    source = resolve(file, args.mirror, args.manual_dir, args.synthetic)
    fetch(
        source.url,
        args.out,
        sha256=source.sha256,
        sha256_from=source.sha256_from,
        size=source.size,
        lock=None if args.synthetic else ChecksumLock(args.lock),
        lock_key=file.key,
        retries=args.retries,
        timeout_s=args.timeout_s,
    )
    print(f"{file.key}: {args.out} ({args.out.stat().st_size} bytes, from {source.url})")
    return 0
