"""Where files come from: mirror with SHA256SUMS, manual placement, official URL; the CLI."""

from __future__ import annotations

import hashlib

import pytest

from vecomp.data import download
from vecomp.data.fetch import ChecksumError, DownloadError
from vecomp.data.registry import FILES, get_file

MANUAL = "nlvr2/train_img.zip"
OFFICIAL = "gqa/questions1.2.zip"


def _mirror(tmp_path, key: str, data: bytes, listed: bool = True):
    path = tmp_path / "mirror" / key
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    name = key if listed else "other/file.zip"
    (tmp_path / "mirror" / "SHA256SUMS").write_text(f"{digest}  {name}\n")
    return tmp_path / "mirror", digest


def test_registry_has_manual_instructions_or_a_url_for_every_file():
    for file in FILES.values():
        assert (file.url is None) == (file.manual is not None), file.key


def test_mirror_replaces_the_url_and_supplies_the_checksum(tmp_path):
    mirror, digest = _mirror(tmp_path, OFFICIAL, b"questions")
    source = download.resolve(get_file(OFFICIAL), str(mirror), tmp_path / "manual")
    assert source.url == f"{mirror.resolve().as_uri()}/{OFFICIAL}"
    assert source.sha256 == digest


def test_mirror_without_the_file_in_its_manifest_is_refused(tmp_path):
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"questions", listed=False)
    with pytest.raises(DownloadError, match="lists no checksum for gqa/questions1.2.zip"):
        download.resolve(get_file(OFFICIAL), str(mirror), tmp_path / "manual")


def test_missing_manual_file_says_where_to_get_it_and_where_to_put_it(tmp_path):
    with pytest.raises(download.ManualFileMissing) as err:
        download.resolve(get_file(MANUAL), None, tmp_path / "manual")
    message = str(err.value)
    assert str(tmp_path / "manual" / MANUAL) in message
    assert "form" in message


def test_placed_manual_file_is_fetched_and_recorded_in_the_lock(tmp_path):
    placed = tmp_path / "manual" / MANUAL
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"nlvr2 images")
    out, lock = tmp_path / "downloads" / MANUAL, tmp_path / "checksums.lock.yaml"
    argv = [
        "--file",
        MANUAL,
        "--out",
        str(out),
        "--manual-dir",
        str(tmp_path / "manual"),
        "--lock",
        str(lock),
    ]
    assert download.main(argv) == 0
    assert out.read_bytes() == b"nlvr2 images"
    assert hashlib.sha256(b"nlvr2 images").hexdigest() in lock.read_text()
    placed.write_bytes(b"other bytes")  # the upstream file silently changed
    out.unlink()
    with pytest.raises(ChecksumError):
        download.main(argv)
    assert not out.exists()


def test_download_cli_through_a_file_mirror(tmp_path):
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"questions")
    out = tmp_path / "downloads" / OFFICIAL
    assert download.main(["--file", OFFICIAL, "--out", str(out), "--mirror", str(mirror)]) == 0
    assert out.read_bytes() == b"questions"


def test_unknown_file_key_lists_the_valid_ones(tmp_path):
    with pytest.raises(KeyError, match="valid files: .*gqa/questions1.2.zip"):
        download.main(["--file", "gqa/nope.zip", "--out", str(tmp_path / "x")])
