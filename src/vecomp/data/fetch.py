"""Atomic, verified, resumable downloads of the pipeline's input files.

Every input file goes through :func:`fetch`, which guarantees that a file sitting at its
destination path is complete and matches a known checksum: bytes stream into a ``.part``
sidecar that is renamed into place only after its size and sha256 verify. A crashed or killed
run therefore never leaves a truncated file that later steps would trust, and the next run
resumes the ``.part`` instead of starting over.

Checksums come from the caller (published upstream) or, for files whose checksum was never
published, from a committed :class:`ChecksumLock` that is filled on first download ("trust on
first use"). Later runs -- on other machines, months later -- then detect an upstream file that
silently changed instead of computing results from different data.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

import requests
import urllib3
import yaml
from tqdm import tqdm

from ..errors import VecompError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MANIFEST_LINE_RE = re.compile(r"([0-9a-fA-F]{64}) [ *]?(.+)")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")

# Failures of the network rather than of the request: worth another attempt.
_TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
)

_LOCK_HEADER = """\
# vecomp checksum lock: sha256 and size of downloaded files whose checksum is not published
# upstream. vecomp.data.fetch.fetch records an entry on a file's first download ("trust on
# first use") and verifies every later download against it, so a silently changed upstream
# file is detected. Commit this file. If an upstream file legitimately changed, delete its
# entry (and the local copy) and fetch again.
"""


class DownloadError(VecompError, RuntimeError):
    """A download failed; the message names the URL, the destination and what to do next."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not match the expected sha256 or size (expected vs. actual given)."""


class _TransientError(Exception):
    """A failure worth retrying: connection trouble, timeout, HTTP 5xx/429, truncated body."""


@dataclass(frozen=True)
class _Expected:
    """What the downloaded file must match, and where that expectation came from."""

    sha256: str | None
    size: int | None
    origin: str  # of the sha256
    size_origin: str


# --------------------------------------------------------------------------- checksums


def sha256_of(path: Path, chunk: int = _CHUNK) -> str:
    """Return the hex sha256 of ``path``, read in ``chunk``-byte blocks to bound memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_sha256sums(text: str) -> dict[str, str]:
    """Parse a `sha256sum`-style manifest ('<64 hex>  <name>' or '<hex> *<name>' per line, blank
    lines and # comments ignored) into {name: hex}. Malformed lines raise ValueError naming the
    line number.

    Hex digests are returned lower-case so they compare equal to :func:`sha256_of`.
    """
    sums: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _MANIFEST_LINE_RE.fullmatch(line)
        if match is None:
            raise ValueError(
                f"sha256sums line {lineno}: expected '<64 hex digits>  <file name>', got {raw!r}"
            )
        digest, name = match.group(1).lower(), match.group(2)
        if sums.get(name, digest) != digest:
            raise ValueError(
                f"sha256sums line {lineno}: {name!r} is listed twice with different checksums"
            )
        sums[name] = digest
    return sums


def _normalise_sha256(value: str, what: str) -> str:
    """Lower-case a hex sha256, refusing anything that could never match a real digest."""
    digest = value.strip().lower()
    if not _SHA256_RE.fullmatch(digest):
        raise ValueError(f"{what}: {value!r} is not a sha256 hex digest (64 hex digits)")
    return digest


# --------------------------------------------------------------------------- checksum lock


class ChecksumLock:
    """A committed lock-style YAML file recording sha256 + size of files whose checksum was never
    published. Keyed by file name. `get(name) -> dict | None` ({"sha256":..., "size":...,
    "url":...}); `record(name, sha256, size, url)` adds an entry.

    Writes are safe under concurrent processes (fcntl.flock on a sidecar `.lock` file, re-read
    inside the lock, atomic rewrite via temp file + os.replace), keys sorted, a header comment
    saying what the file is. A missing lock file reads as empty.

    An entry is never overwritten: recording a different checksum for a known name raises
    :class:`ChecksumError`, because that is exactly the upstream change the lock exists to catch.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mutex_path = self.path.with_name(self.path.name + ".lock")

    def get(self, name: str) -> dict[str, Any] | None:
        """Return a copy of the entry for ``name``, or None if it was never recorded."""
        entry = self._read().get(name)
        return dict(entry) if entry is not None else None

    def record(self, name: str, sha256: str, size: int, url: str) -> None:
        """Add ``name``'s checksum; a no-op if the same checksum is already recorded."""
        sha256 = _normalise_sha256(sha256, what=f"checksum for {name!r}")
        with self._exclusive():
            entries = self._read()
            old = entries.get(name)
            if old is None:
                entries[name] = {"sha256": sha256, "size": int(size), "url": url}
                self._write(entries)
            elif old.get("sha256") != sha256 or old.get("size") != size:
                raise ChecksumError(
                    f"checksum lock {self.path} already records {name!r} as sha256 "
                    f"{old.get('sha256')}, size {old.get('size')} (from {old.get('url')}), "
                    f"but {url} has sha256 {sha256}, size {size}. If the upstream file "
                    f"legitimately changed, delete the entry for {name!r} and fetch again."
                )

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold an exclusive flock on the sidecar so read-modify-write cycles do not interleave."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._mutex_path.open("a") as mutex:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(mutex, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, Any]]:
        """Load the entries; the file is replaced atomically, so reading needs no lock."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(
                f"checksum lock {self.path} is not valid YAML ({exc}); "
                "fix it or restore it from version control"
            ) from exc
        if data is None:
            return {}
        if not isinstance(data, dict) or not all(
            isinstance(entry, dict) and "sha256" in entry for entry in data.values()
        ):
            raise ValueError(
                f"checksum lock {self.path} must map file names to {{sha256, size, url}} "
                "entries; fix it or restore it from version control"
            )
        return data

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        """Rewrite the file via temp file + os.replace, so readers never see half of it."""
        body = yaml.safe_dump(entries, sort_keys=True, default_flow_style=False)
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(_LOCK_HEADER + body)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class _Job:
    """One fetch call's fixed parameters, shared by the helpers below."""

    url: str
    dest: Path
    local: Path | None  # source path of a file:// URL or plain path; None for http(s)
    retries: int
    backoff_s: float
    timeout_s: float
    progress: bool

    @property
    def part(self) -> Path:
        """Where bytes accumulate until they verify; kept between runs for resuming."""
        return self.dest.with_name(self.dest.name + ".part")


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    sha256_from: str = "the sha256 argument",
    size: int | None = None,
    lock: ChecksumLock | None = None,
    lock_key: str | None = None,
    retries: int = 3,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest` atomically and verified, and return `dest`.

    ``url`` is http(s)://, file:///abs/path or a plain local path. Bytes stream into
    ``<dest>.part`` (resumed if present) and replace ``dest`` only once ``size`` and the
    expected sha256 match, so ``dest`` is always either absent, the old file, or verified.
    The expected sha256 is ``lock``'s entry for ``lock_key`` (default ``dest.name``) or
    ``sha256`` (which ``sha256_from`` names); when both exist they must agree. With neither, the
    download's checksum is recorded in ``lock`` (trust on first use) or, without a lock, the file
    is accepted unverified with a warning. An existing ``dest``
    that verifies is returned without any request; one that does not is re-downloaded.

    Transient failures (connection errors, timeouts, HTTP 5xx/429, truncated transfers) are
    retried up to ``retries`` attempts in total, sleeping ``backoff_s * 2**attempt`` in between;
    the ``.part`` is kept so that a later call resumes it. Two processes must not fetch the same
    ``dest`` at the same time.

    Raises:
        ChecksumError: size or sha256 mismatch (the ``.part`` is deleted), or ``sha256`` and the
            lock's entry disagree (nothing is downloaded).
        DownloadError: any other failure (HTTP 4xx, retries exhausted, I/O error).
        ValueError: malformed arguments (``retries`` < 1, ``sha256`` not 64 hex digits).
    """
    dest = Path(dest)
    if retries < 1:
        raise ValueError(f"retries must be at least 1 (total attempts), got {retries}")
    job = _Job(url, dest, _local_source(url, dest), retries, backoff_s, timeout_s, progress)
    key = lock_key or dest.name
    expected = _expected(sha256, sha256_from, size, lock, key)
    if expected.sha256 is None and lock is None:
        log.warning(
            "no sha256 known for %s and no checksum lock given: %s is unverified", url, dest
        )
    try:
        if expected.sha256 is not None and _verifies(dest, expected):
            log.info("%s already present and verified; not downloading %s", dest, url)
        else:
            _fetch_verified(job, expected, lock, key)
    except OSError as exc:  # disk full, permissions, non-transient request errors, ...
        raise DownloadError(f"could not download {url} to {dest}: {exc}") from exc
    return dest


def _fetch_verified(job: _Job, expected: _Expected, lock: ChecksumLock | None, key: str) -> None:
    """Download into the .part, verify it, record it (first use) and move it onto ``dest``."""
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    resumed = _size_or_zero(job.part) > 0
    try:
        digest = _download_and_verify(job, expected)
    except ChecksumError:
        if not resumed:
            raise
        # A stale .part may hold the start of an older upstream version: one clean restart.
        log.warning("resumed %s did not verify; downloading %s from scratch", job.part, job.url)
        digest = _download_and_verify(job, expected)
    if expected.sha256 is None and lock is not None:
        _record_first_use(lock, key, job, digest)
    os.replace(job.part, job.dest)
    log.info("downloaded %s -> %s (sha256 %s)", job.url, job.dest, digest)


def _download_and_verify(job: _Job, expected: _Expected) -> str:
    """Complete the .part, then verify it; return its sha256."""
    _download(job)
    return _verify_part(job, expected)


def _expected(
    sha256: str | None, sha256_from: str, size: int | None, lock: ChecksumLock | None, key: str
) -> _Expected:
    """What to verify against: the lock's entry, or the given sum; the two must agree."""
    entry = lock.get(key) if lock is not None else None
    given = _normalise_sha256(sha256, what=f"sha256 for {key!r}") if sha256 is not None else None
    if entry is None:
        return _Expected(given, size, sha256_from if given else "nowhere", "the size argument")
    origin = f"checksum lock {lock.path}, entry {key!r}"
    locked = _normalise_sha256(str(entry["sha256"]), what=origin)
    if given is not None and given != locked:
        raise ChecksumError(
            f"{key}: {sha256_from} says sha256 {given}, but the {origin} records {locked}. The "
            f"lock is the reference: the source serves other bytes than were first downloaded. "
            f"If the file really changed upstream, delete its entry from {lock.path} to record "
            f"the new one; otherwise use a source that serves the recorded file."
        )
    if size is not None:
        return _Expected(locked, size, origin, "the size argument")
    return _Expected(locked, entry.get("size"), origin, origin)


def _verifies(path: Path, expected: _Expected) -> bool:
    """True if ``path`` exists and matches; a mismatch is logged because it triggers a download."""
    if not path.is_file():
        return False
    size_ok = expected.size is None or path.stat().st_size == expected.size
    if size_ok and sha256_of(path) == expected.sha256:
        return True
    log.warning("%s exists but does not match its expected checksum; downloading again", path)
    return False


def _verify_part(job: _Job, expected: _Expected) -> str:
    """Check the downloaded size and sha256; delete the .part and raise on mismatch."""
    actual_size = job.part.stat().st_size
    if expected.size is not None and actual_size != expected.size:
        job.part.unlink(missing_ok=True)
        raise ChecksumError(
            f"size mismatch for {job.url} -> {job.dest}: expected {expected.size} bytes (from "
            f"{expected.size_origin}), got {actual_size}. The download was discarded; check the "
            "URL and the expected size."
        )
    digest = sha256_of(job.part)
    if expected.sha256 is not None and digest != expected.sha256:
        job.part.unlink(missing_ok=True)
        raise ChecksumError(
            f"sha256 mismatch for {job.url} -> {job.dest}: expected {expected.sha256} (from "
            f"{expected.origin}), got {digest}. The download was discarded; if the upstream "
            "file legitimately changed, update the expected checksum."
        )
    return digest


def _record_first_use(lock: ChecksumLock, key: str, job: _Job, digest: str) -> None:
    """Record a first download in the lock; if a racing process recorded otherwise, discard."""
    try:
        lock.record(key, digest, job.part.stat().st_size, job.url)
    except ChecksumError:
        job.part.unlink(missing_ok=True)
        raise
    log.info("recorded sha256 %s of %s in %s (trust on first use)", digest, key, lock.path)


def _local_source(url: str, dest: Path) -> Path | None:
    """Return the source path of a file:// URL or plain path; None for http(s) URLs."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "":
        return Path(url)
    if scheme != "file":
        raise DownloadError(
            f"cannot download {url} to {dest}: unsupported URL scheme {scheme!r}; "
            "use http://, https://, file:///absolute/path or a local path"
        )
    if parsed.netloc not in ("", "localhost"):
        raise DownloadError(
            f"cannot download {url} to {dest}: file URLs must name a local path "
            f"(file:///absolute/path), not the host {parsed.netloc!r}"
        )
    return Path(unquote(parsed.path))


def _size_or_zero(path: Path) -> int:
    """Length of ``path`` in bytes, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------- transfer


def _download(job: _Job) -> None:
    """Bring the .part to the full file, retrying transient failures with exponential backoff."""
    last: _TransientError | None = None
    for attempt in range(job.retries):
        if attempt:
            delay = job.backoff_s * 2 ** (attempt - 1)
            log.info(
                "retrying %s in %.2fs (attempt %d of %d) after: %s",
                job.url,
                delay,
                attempt + 1,
                job.retries,
                last,
            )
            time.sleep(delay)
        try:
            if job.local is None:
                _http_transfer(job)
            else:
                _copy_local(job, job.local)
            return
        except _TransientError as exc:
            last = exc
    kept = f" Partial data kept in {job.part}; run again to resume." if job.part.exists() else ""
    raise DownloadError(
        f"giving up on {job.url} -> {job.dest} after {job.retries} attempts; "
        f"last error: {last}.{kept}"
    )


def _http_transfer(job: _Job) -> None:
    """One HTTP attempt: resume the .part with a Range request where the server allows it."""
    offset = _size_or_zero(job.part)
    # identity: we want the bytes the server stores, never a transfer-encoded variant of them.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        log.info("resuming %s at byte %d", job.url, offset)
    try:
        with requests.get(job.url, headers=headers, stream=True, timeout=job.timeout_s) as resp:
            start = _start_offset(resp, offset, job)
            if start is None:
                return
            length = _content_length(resp)
            total = start + length if length is not None else None
            blocks = resp.raw.stream(_CHUNK, decode_content=False)
            written = _write_body(blocks, job, start, total)
    except requests.exceptions.SSLError as exc:
        raise DownloadError(f"TLS error for {job.url} (downloading to {job.dest}): {exc}") from exc
    except _TRANSIENT_EXCEPTIONS as exc:
        raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
    if length is not None and written < length:
        raise _TransientError(f"transfer ended after {written} of {length} bytes")


def _start_offset(resp: requests.Response, offset: int, job: _Job) -> int | None:
    """Where the response body starts in the file; None if the .part is already complete."""
    status = resp.status_code
    if status == 200:
        if offset:
            log.info("%s ignored the range request; downloading from the start", job.url)
        return 0
    if status == 206:
        start, _ = _content_range(resp)
        if start != offset:
            job.part.unlink(missing_ok=True)
            raise _TransientError(
                f"asked for bytes from {offset}, got Content-Range "
                f"{resp.headers.get('Content-Range')!r}; restarting from zero"
            )
        return offset
    if status == 416 and offset:
        _, total = _content_range(resp)
        if total is None or total == offset:
            return None  # nothing left to fetch: verification decides whether it is right
        job.part.unlink(missing_ok=True)
        raise _TransientError(f"{job.part} has {offset} bytes but the file only {total}")
    if status == 429 or status >= 500:
        raise _TransientError(f"HTTP {status} for {job.url}")
    raise DownloadError(f"HTTP {status} for {job.url} (downloading to {job.dest}); check the URL")


def _content_range(resp: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header; None for what it does not say."""
    match = _CONTENT_RANGE_RE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if match is None:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None, int(total) if total != "*" else None)


def _content_length(resp: requests.Response) -> int | None:
    """The announced body length, or None (chunked transfer, missing or bogus header)."""
    value = resp.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _copy_local(job: _Job, source: Path) -> None:
    """Copy a local file into the .part, resuming by seeking past what the .part already has."""
    try:
        total = source.stat().st_size
    except FileNotFoundError:
        raise DownloadError(
            f"cannot download {job.url} to {job.dest}: {source} does not exist; check the path"
        ) from None
    offset = _size_or_zero(job.part)
    if offset > total:
        log.info("%s is longer than %s; starting over", job.part, source)
        offset = 0
    elif offset:
        log.info("resuming copy of %s at byte %d", source, offset)
    with source.open("rb") as fin:
        fin.seek(offset)
        _write_body(iter(lambda: fin.read(_CHUNK), b""), job, offset, total)


def _write_body(blocks: Iterator[bytes], job: _Job, offset: int, total: int | None) -> int:
    """Write ``blocks`` into the .part from ``offset`` on; return the number of bytes written.

    Bytes written before an exception stay in the .part so that the next attempt resumes them.
    """
    written = 0
    with _open_part(job.part, offset) as fh, _progress_bar(job, total, offset) as bar:
        for block in blocks:
            fh.write(block)
            written += len(block)
            bar.update(len(block))
        fh.flush()
        os.fsync(fh.fileno())
    return written


def _open_part(part: Path, offset: int) -> BinaryIO:
    """Open ``part`` for writing at ``offset``: appending for a resume, truncating a restart."""
    if not offset:
        return part.open("wb")
    fh = part.open("r+b")
    fh.truncate(offset)
    fh.seek(offset)
    return fh


def _progress_bar(job: _Job, total: int | None, initial: int) -> tqdm:
    """A byte progress bar on stderr; tqdm hides it when stderr is not a terminal."""
    return tqdm(
        total=total,
        initial=initial,
        desc=job.dest.name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=None if job.progress else True,
    )
