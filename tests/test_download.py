"""Where files come from: mirror with SHA256SUMS, manual placement, official URL; the CLI."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import yaml

from vecomp.data import download
from vecomp.data.fetch import ChecksumError, ChecksumLock, DownloadError
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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _locked(tmp_path, key: str, data: bytes):
    """A checksum lock that recorded ``data`` as ``key`` on its first download."""
    lock = ChecksumLock(tmp_path / "checksums.lock.yaml")
    lock.record(key, _sha(data), len(data), "https://publisher.invalid/" + key)
    return lock.path


def test_the_lock_wins_over_a_mirror_whose_sums_were_rewritten_to_match_its_file(tmp_path):
    """A tampered mirror file with a SHA256SUMS rewritten to match it: the lock still holds the
    bytes of the first download, so nothing is accepted, and the message gives both sums."""
    lock = _locked(tmp_path, OFFICIAL, b"questions")
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"tampered")
    before = lock.read_text()
    out = tmp_path / "downloads" / OFFICIAL
    argv = ["--file", OFFICIAL, "--out", str(out), "--mirror", str(mirror), "--lock", str(lock)]
    with pytest.raises(ChecksumError) as err:
        download.main(argv)
    message = str(err.value)
    assert _sha(b"tampered") in message and _sha(b"questions") in message
    assert str(lock) in message and "SHA256SUMS" in message
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
    assert lock.read_text() == before


def test_a_mirror_that_agrees_with_the_lock_is_used(tmp_path):
    lock = _locked(tmp_path, OFFICIAL, b"questions")
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"questions")
    out = tmp_path / "downloads" / OFFICIAL
    argv = ["--file", OFFICIAL, "--out", str(out), "--mirror", str(mirror), "--lock", str(lock)]
    assert download.main(argv) == 0
    assert out.read_bytes() == b"questions"


def test_a_mirror_without_sums_is_checked_against_the_lock(tmp_path):
    lock = _locked(tmp_path, OFFICIAL, b"questions")
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"questionZ")  # same size: only the sum can tell
    (mirror / "SHA256SUMS").unlink()
    out = tmp_path / "downloads" / OFFICIAL
    argv = ["--file", OFFICIAL, "--out", str(out), "--mirror", str(mirror), "--lock", str(lock)]
    with pytest.raises(ChecksumError, match=_sha(b"questions")):
        download.main(argv)
    assert not out.exists()


def test_a_mirror_sum_that_disagrees_with_the_published_one_is_refused(tmp_path):
    published = dataclasses.replace(get_file(OFFICIAL), sha256=_sha(b"questions"))
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"tampered")
    with pytest.raises(ChecksumError) as err:
        download.resolve(published, str(mirror), tmp_path / "manual")
    assert _sha(b"questions") in str(err.value) and _sha(b"tampered") in str(err.value)
    agreeing, _ = _mirror(tmp_path / "second", OFFICIAL, b"questions")
    assert download.resolve(published, str(agreeing), tmp_path / "manual").sha256 == _sha(
        b"questions"
    )


def test_the_synthetic_suite_neither_reads_nor_writes_the_lock(tmp_path):
    """Its bytes are of its own making: a lock of real downloads must not block the demo."""
    lock = _locked(tmp_path, OFFICIAL, b"the publisher's questions")
    before = lock.read_text()
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"synthetic questions")
    out = tmp_path / "downloads" / OFFICIAL
    argv = ["--file", OFFICIAL, "--out", str(out), "--mirror", str(mirror), "--lock", str(lock)]
    assert download.main([*argv, "--synthetic"]) == 0
    assert out.read_bytes() == b"synthetic questions" and lock.read_text() == before
    with pytest.raises(DownloadError, match="give it with --mirror"):
        download.main(["--file", OFFICIAL, "--out", str(out), "--synthetic"])


def test_a_file_with_no_sum_anywhere_is_recorded_in_the_default_lock(tmp_path, monkeypatch):
    mirror, _ = _mirror(tmp_path, OFFICIAL, b"questions")
    (mirror / "SHA256SUMS").unlink()
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "downloads" / OFFICIAL
    assert download.main(["--file", OFFICIAL, "--out", str(out), "--mirror", str(mirror)]) == 0
    recorded = yaml.safe_load((tmp_path / "config" / "checksums.lock.yaml").read_text())
    assert recorded[OFFICIAL]["sha256"] == _sha(b"questions")
