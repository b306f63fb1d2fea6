"""Tests for vecomp.data.fetch against a loopback HTTP server that each test starts.

The server can truncate bodies, ignore Range headers and fail with 404/500, and it logs every
request's Range header, so tests assert exactly which bytes were (re)requested.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import multiprocessing
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from vecomp.data.fetch import (
    ChecksumError,
    ChecksumLock,
    DownloadError,
    fetch,
    parse_sha256sums,
    sha256_of,
)

PAYLOAD = bytes(range(256)) * 400  # 102400 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAST = {"backoff_s": 0.001, "timeout_s": 5.0, "progress": False}


# --------------------------------------------------------------------------- loopback server


@dataclass
class Route:
    """How the server answers one path."""

    body: bytes
    status: int = 200  # anything else: always answer with this status and an empty body
    fail_first: int = 0  # answer the first N requests with HTTP 500
    truncate_first: int = 0  # then cut the next N bodies off after half their bytes
    ranges: bool = True  # honour Range headers; False: always answer 200 with everything


@dataclass
class Server:
    """State shared between the test and the handler threads."""

    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    mutex: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, body: bytes, **options: object) -> str:
        self.routes["/" + name] = Route(body, **options)  # type: ignore[arg-type]
        return f"{self.base_url}/{name}"

    def ranges_requested(self, name: str) -> list[str | None]:
        """The Range header of every request for ``name``, in order (None: no header)."""
        with self.mutex:
            return [rng for path, rng in self.log if path == "/" + name]


class _Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0, so each response ends by closing the connection (which truncation needs)."""

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        state: Server = self.server.state  # type: ignore[attr-defined]
        with state.mutex:
            state.log.append((self.path, self.headers.get("Range")))
            count = sum(1 for path, _ in state.log if path == self.path)
            route = state.routes.get(self.path)
        if route is None or route.status != 200:
            self._reply(404 if route is None else route.status, b"")
        elif count <= route.fail_first:
            self._reply(500, b"try again")
        else:
            truncate = count <= route.fail_first + route.truncate_first
            self._serve(route, truncate)

    def _serve(self, route: Route, truncate: bool) -> None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if not (route.ranges and match):
            return self._reply(200, route.body, truncate=truncate)
        start, total = int(match.group(1)), len(route.body)
        if start >= total:
            return self._reply(416, b"", {"Content-Range": f"bytes */{total}"})
        content_range = f"bytes {start}-{total - 1}/{total}"
        self._reply(206, route.body[start:], {"Content-Range": content_range}, truncate)

    def _reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if truncate else body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output clean."""


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = Server(base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy configured in the environment must not intercept loopback requests."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# --------------------------------------------------------------------------- happy paths


def test_http_fetch(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "nested" / "dir" / "data.bin"
    assert fetch(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD), **FAST) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sha256_of(dest) == PAYLOAD_SHA
    assert not _part(dest).exists()
    assert server.ranges_requested("data.bin") == [None]


def test_http_fetch_with_progress_bar(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    fetch(url, tmp_path / "data.bin", sha256=PAYLOAD_SHA, backoff_s=0.001, progress=True)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_file_url_and_plain_path(tmp_path: Path) -> None:
    source = tmp_path / "src dir" / "a.zip"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    for url, name in ((source.as_uri(), "via-uri.zip"), (str(source), "via-path.zip")):
        dest = tmp_path / "out" / name
        fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
        assert dest.read_bytes() == PAYLOAD
        assert not _part(dest).exists()


def test_file_url_resumes_by_seeking(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "a.bin"
    dest.parent.mkdir()
    _part(dest).write_bytes(PAYLOAD[:1000])
    fetch(source.as_uri(), dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD


def test_existing_verified_dest_makes_no_request(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    dest.write_bytes(PAYLOAD)
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert server.ranges_requested("data.bin") == []


def test_existing_corrupt_dest_is_downloaded_again(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"stale")
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges_requested("data.bin") == [None]


def test_unverified_download_warns(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.add("data.bin", PAYLOAD)
    with caplog.at_level(logging.WARNING, logger="vecomp.data.fetch"):
        fetch(url, tmp_path / "data.bin", **FAST)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert "no sha256 known" in caplog.text


# --------------------------------------------------------------------------- resume


def test_truncated_transfer_is_resumed(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD, truncate_first=1)
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, retries=3, **FAST)
    half = len(PAYLOAD) // 2
    assert server.ranges_requested("data.bin") == [None, f"bytes={half}-"]
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()


def test_interrupted_download_requests_only_the_rest(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    _part(dest).write_bytes(PAYLOAD[:1000])
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert server.ranges_requested("data.bin") == ["bytes=1000-"]
    assert dest.read_bytes() == PAYLOAD


def test_server_without_range_support_restarts(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD, ranges=False)
    dest = tmp_path / "data.bin"
    _part(dest).write_bytes(b"x" * 1000)  # garbage: kept only if the restart were wrong
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert server.ranges_requested("data.bin") == ["bytes=1000-"]
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_verified(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    _part(dest).write_bytes(PAYLOAD)
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert server.ranges_requested("data.bin") == [f"bytes={len(PAYLOAD)}-"]
    assert dest.read_bytes() == PAYLOAD


def test_stale_part_that_fails_verification_restarts_once(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    _part(dest).write_bytes(b"x" * 1000)
    fetch(url, dest, sha256=PAYLOAD_SHA, **FAST)
    assert server.ranges_requested("data.bin") == ["bytes=1000-", None]
    assert dest.read_bytes() == PAYLOAD


def test_always_truncated_gives_up_but_keeps_part(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD, truncate_first=99)
    dest = tmp_path / "data.bin"
    with pytest.raises(
        DownloadError, match=r"after 3 attempts; last error: .*IncompleteRead"
    ) as info:
        fetch(url, dest, sha256=PAYLOAD_SHA, retries=3, **FAST)
    assert str(dest) in str(info.value)
    assert len(server.ranges_requested("data.bin")) == 3
    assert not dest.exists()
    kept = _part(dest).read_bytes()
    assert len(PAYLOAD) // 2 < len(kept) < len(PAYLOAD)
    assert PAYLOAD.startswith(kept)


# --------------------------------------------------------------------------- failures


def test_wrong_checksum(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumError, match=f"expected {'0' * 64}.*got {PAYLOAD_SHA}"):
        fetch(url, dest, sha256="0" * 64, **FAST)
    assert not dest.exists()
    assert not _part(dest).exists()


def test_wrong_size(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    with pytest.raises(
        ChecksumError, match=f"expected {len(PAYLOAD) + 1} bytes \\(from the size argument\\), got"
    ):
        fetch(url, dest, sha256=PAYLOAD_SHA, size=len(PAYLOAD) + 1, **FAST)
    assert not dest.exists()
    assert not _part(dest).exists()


def test_404_fails_at_once(server: Server, tmp_path: Path) -> None:
    url = f"{server.base_url}/missing.bin"
    dest = tmp_path / "missing.bin"
    with pytest.raises(DownloadError, match=f"HTTP 404 for {re.escape(url)}"):
        fetch(url, dest, retries=5, **FAST)
    assert server.ranges_requested("missing.bin") == [None]
    assert not dest.exists()
    assert not _part(dest).exists()


def test_500_always_gives_up_after_retries(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD, status=500)
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="after 4 attempts.*HTTP 500"):
        fetch(url, dest, sha256=PAYLOAD_SHA, retries=4, **FAST)
    assert len(server.ranges_requested("data.bin")) == 4
    assert not dest.exists()


def test_500_once_then_success(server: Server, tmp_path: Path) -> None:
    url = server.add("data.bin", PAYLOAD, fail_first=1)
    dest = tmp_path / "data.bin"
    fetch(url, dest, sha256=PAYLOAD_SHA, retries=3, **FAST)
    assert server.ranges_requested("data.bin") == [None, None]
    assert dest.read_bytes() == PAYLOAD


def test_connection_refused_is_retried(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="after 2 attempts.*ConnectionError"):
        fetch(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", retries=2, **FAST)
    assert not (tmp_path / "x.bin").exists()


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        fetch("ftp://127.0.0.1/x.bin", tmp_path / "x.bin", **FAST)


def test_missing_local_source(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="does not exist"):
        fetch((tmp_path / "nope.bin").as_uri(), tmp_path / "out.bin", **FAST)
    assert not (tmp_path / "out.bin").exists()


def test_malformed_sha256_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        fetch("file:///nonexistent", tmp_path / "x", sha256="abc", **FAST)


# --------------------------------------------------------------------------- checksum lock


def test_trust_on_first_use(server: Server, tmp_path: Path) -> None:
    lock = ChecksumLock(tmp_path / "checksums.lock.yaml")
    url = server.add("data.bin", PAYLOAD)
    fetch(url, tmp_path / "a" / "data.bin", lock=lock, **FAST)
    assert lock.get("data.bin") == {"sha256": PAYLOAD_SHA, "size": len(PAYLOAD), "url": url}
    assert lock.path.read_text().startswith("# vecomp checksum lock")

    changed = server.add("changed.bin", b"upstream silently changed")
    dest = tmp_path / "b" / "other.bin"
    with pytest.raises(ChecksumError, match=r"expected .* \(from checksum lock .*'data\.bin'\)"):
        fetch(changed, dest, lock=lock, lock_key="data.bin", **FAST)
    assert not dest.exists()
    assert not _part(dest).exists()
    assert lock.get("data.bin")["sha256"] == PAYLOAD_SHA


def test_lock_entry_skips_download_of_verified_dest(server: Server, tmp_path: Path) -> None:
    lock = ChecksumLock(tmp_path / "checksums.lock.yaml")
    lock.record("data.bin", PAYLOAD_SHA, len(PAYLOAD), "somewhere")
    url = server.add("data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    dest.write_bytes(PAYLOAD)
    fetch(url, dest, lock=lock, **FAST)
    assert server.ranges_requested("data.bin") == []


def test_lock_missing_file_reads_empty_and_refuses_overwrite(tmp_path: Path) -> None:
    lock = ChecksumLock(tmp_path / "sub" / "lock.yaml")
    assert lock.get("a.zip") is None
    lock.record("b.zip", "B" * 64, 2, "file:///b")
    lock.record("a.zip", "a" * 64, 1, "file:///a")
    lock.record("a.zip", "a" * 64, 1, "file:///elsewhere")  # same checksum: a no-op
    with pytest.raises(ChecksumError, match="already records 'a.zip'"):
        lock.record("a.zip", "c" * 64, 1, "file:///a")
    text = lock.path.read_text()
    assert text.index("a.zip:") < text.index("b.zip:")
    assert yaml.safe_load(text) == {
        "a.zip": {"sha256": "a" * 64, "size": 1, "url": "file:///a"},
        "b.zip": {"sha256": "b" * 64, "size": 2, "url": "file:///b"},
    }


def _record_many(lock_path: str, worker: int, count: int, start: object) -> None:
    start.wait(10)  # type: ignore[attr-defined]
    lock = ChecksumLock(Path(lock_path))
    for i in range(count):
        digest = hashlib.sha256(f"{worker}-{i}".encode()).hexdigest()
        lock.record(f"w{worker}-{i:02d}.bin", digest, i, f"file:///w{worker}/{i}")


def test_lock_concurrent_records_keep_all_entries(tmp_path: Path) -> None:
    path = tmp_path / "checksums.lock.yaml"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    workers = [ctx.Process(target=_record_many, args=(str(path), w, 15, start)) for w in range(4)]
    for proc in workers:
        proc.start()
    start.set()
    for proc in workers:
        proc.join(timeout=30)
    assert [proc.exitcode for proc in workers] == [0, 0, 0, 0]
    entries = yaml.safe_load(path.read_text())
    assert len(entries) == 60
    assert list(entries) == sorted(entries)


# --------------------------------------------------------------------------- manifests


def test_parse_sha256sums() -> None:
    text = (
        "# published checksums\n"
        "\n"
        f"{'a' * 64}  images.zip\n"
        f"{'B' * 64} *annotations/train.json\n"
        f"{'c' * 64}  name with spaces.tar.gz\n"
    )
    assert parse_sha256sums(text) == {
        "images.zip": "a" * 64,
        "annotations/train.json": "b" * 64,
        "name with spaces.tar.gz": "c" * 64,
    }


@pytest.mark.parametrize(
    "line", ["abc  short.zip", f"{'g' * 64}  not-hex.zip", f"{'a' * 64}", f"{'a' * 65}  long.zip"]
)
def test_parse_sha256sums_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_sha256sums(f"{'a' * 64}  ok.zip\n{line}\n")


def test_parse_sha256sums_rejects_conflicting_duplicates() -> None:
    with pytest.raises(ValueError, match="line 2.*twice"):
        parse_sha256sums(f"{'a' * 64}  x.zip\n{'b' * 64}  x.zip\n")
