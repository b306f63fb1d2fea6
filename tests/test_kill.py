"""kill -9 at several points of an extraction, a download and a training run, then a rerun:
the result must be the bytes of an uninterrupted run, with nothing of the killed run left over.

Each command runs as a cluster job runs it (`vecomp ...` in its own process). A watcher polls
what the process has written (shards, the download's ``.part``, the training log) and sends
SIGKILL the moment a kill point is reached, so the points are states of the work, not times.
About 70 s on two cores (marked slow: it starts 17 processes).
"""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_args import vecomp_args
from tests.fixture_files import write_image_pool
from tests.fusion_fixtures import toy_task
from tests.workflow_helpers import tool_env, tree_digest

pytestmark = pytest.mark.slow

GQA_QUESTIONS = "gqa/questions1.2.zip"
PATCH = {
    "type": "timm_patch",
    "model": "vit_tiny_patch16_224",
    "model_kwargs": {"img_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2},
}


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(["vecomp", *argv], cwd=cwd, env=tool_env(), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-3000:]


def _kill_when(argv: list[str], cwd: Path, reached: Callable[[str], bool]) -> None:
    """Start `vecomp argv`; SIGKILL it as soon as ``reached(output so far)`` holds."""
    log = cwd / "killed.log"
    env = tool_env() | {"PYTHONUNBUFFERED": "1"}  # its log as it happens
    with log.open("w") as out:
        process = subprocess.Popen(
            ["vecomp", *argv], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while not reached(log.read_text()):
        finished = process.poll() is not None
        assert not finished, f"finished before the kill point:\n{log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def _leftovers(folder: Path) -> list[str]:
    """Temporary files of an interrupted atomic write, anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if re.search(r"\.tmp$|\.part$|^\.", p.name))


# ----------------------------------------------------------------------------- extraction


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """60 images: enough work that every kill point falls inside the run."""
    return write_image_pool(tmp_path_factory.mktemp("pool"), 60)


def _shards(store: Path, at_least: int) -> Callable[[str], bool]:
    return lambda _: len(list(store.glob("shard-*.safetensors"))) >= at_least


def _started(store: Path) -> Callable[[str], bool]:
    return lambda _: (store / "extraction.json").exists()


def _extract(pool: Path, out: Path) -> list[str]:
    options = dict(spec=PATCH, pool="gqa", pool_index=pool, out=out)
    return vecomp_args(
        "extract-features", encoder="patch", batch_size=1, images_per_shard=4, **options
    )


@pytest.fixture(scope="module")
def uninterrupted_store(pool, tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("reference")
    _run(_extract(pool, work / "store"), work)
    return tree_digest(work / "store")


@pytest.mark.parametrize("point", ["started", "one shard", "five shards"])
def test_a_killed_extraction_reruns_to_the_bytes_of_an_uninterrupted_one(
    pool, uninterrupted_store, tmp_path, point
):
    store = tmp_path / "store"
    reached = {"started": _started(store), "one shard": _shards(store, 1)}
    reached["five shards"] = _shards(store, 5)
    _kill_when(_extract(pool, store), tmp_path, reached[point])
    assert not (store / "manifest.json").exists()
    _run(_extract(pool, store), tmp_path)
    assert tree_digest(store) == uninterrupted_store
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------- download

BODY = hashlib.sha256(b"seed").digest() * 262144  # 8 MiB: the downloader writes 1 MiB blocks
CHUNK = 65536


class _SlowMirror(http.server.BaseHTTPRequestHandler):
    """A mirror serving GQA's questions slowly (with Range), and its SHA256SUMS."""

    def do_GET(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        if self.path == "/SHA256SUMS":
            return self._reply(200, f"{hashlib.sha256(BODY).hexdigest()}  {GQA_QUESTIONS}\n")
        start = int(re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "bytes=0-"))[1])
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        for offset in range(start, len(BODY), CHUNK):
            self.wfile.write(BODY[offset : offset + CHUNK])
            self.wfile.flush()
            time.sleep(0.01)

    def _reply(self, status: int, text: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output clean."""


@pytest.fixture
def mirror(monkeypatch) -> Iterator[str]:
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowMirror)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("fraction", [0.25, 0.6])
def test_a_killed_download_resumes_to_the_published_bytes(mirror, tmp_path, fraction):
    out = tmp_path / "downloads" / GQA_QUESTIONS
    part = out.with_name(out.name + ".part")
    argv = vecomp_args("download", file=GQA_QUESTIONS, out=out, mirror=mirror)
    grown = lambda _: part.exists() and part.stat().st_size >= fraction * len(BODY)  # noqa: E731
    _kill_when(argv, tmp_path, grown)
    assert not out.exists() and 0 < part.stat().st_size < len(BODY)
    _run(argv, tmp_path)
    assert out.read_bytes() == BODY
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> dict:
    return toy_task(tmp_path_factory.mktemp("toy"), "gqa", "classification")


def _train(task: dict, out: Path) -> list[str]:
    stores = [f"{e}={task['stores'][e]}" for e in ("sees_a", "sees_b")]
    settings = {"epochs": 4, "batch_size": 4, "device": "cpu", "threads": 1}
    model = {"width": 32, "layers": 2, "heads": 2, "ffn": 64}
    options = dict(prepared=task["prepared"], text=task["text"], store=stores, out=out)
    return vecomp_args("train", task="gqa", seed=0, model=model, train=settings, **options)


@pytest.fixture(scope="module")
def uninterrupted_run(task, tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("reference")
    _run(_train(task, work / "run"), work)
    return tree_digest(work / "run")


@pytest.mark.parametrize("point", ["epoch 1:", "epoch 3:"])
def test_a_killed_training_run_reruns_to_the_bytes_of_an_uninterrupted_one(
    task, uninterrupted_run, tmp_path, point
):
    """Killed after its first epoch, and after its third of four."""
    _kill_when(_train(task, tmp_path / "run"), tmp_path, lambda log: point in log)
    assert not (tmp_path / "run" / "metrics.json").exists()
    _run(_train(task, tmp_path / "run"), tmp_path)
    assert tree_digest(tmp_path / "run") == uninterrupted_run
    assert _leftovers(tmp_path) == []
