"""Tests for vecomp.data.archive: round trips, refusal of unsafe members, atomicity."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from vecomp.data.archive import CorruptArchiveError, UnsafeArchiveError, extract

FILES = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)), "sub/deeper/c.txt": b"gamma"}


def _make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _make_tar(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]]) -> Path:
    mode = "w:gz" if path.name.endswith(("gz", "tgz")) else "w"
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, data)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory holding the archive and the target; its parent shows escapes."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_zip_round_trip(work: Path) -> None:
    archive = _make_zip(work / "data.zip", FILES)
    out = extract(archive, work / "out")
    assert out == work / "out"
    assert _tree(out) == FILES
    assert sorted(p.name for p in work.iterdir()) == ["data.zip", "out"]


@pytest.mark.parametrize("name", ["data.tar.gz", "data.tgz", "data.tar"])
def test_tar_round_trip_with_internal_symlink(work: Path, name: str) -> None:
    members = [_file_member(n, d) for n, d in FILES.items()]
    members.append(_link_member("sub/link.txt", "../a.txt"))
    archive = _make_tar(work / name, members)
    out = extract(archive, work / "out")
    assert (out / "sub/link.txt").is_symlink()
    assert (out / "sub/link.txt").read_bytes() == FILES["a.txt"]
    assert _tree(out) == {**FILES, "sub/link.txt": FILES["a.txt"]}


def test_existing_target_is_replaced_only_after_success(work: Path) -> None:
    target = work / "out"
    (target / "stale").mkdir(parents=True)
    (target / "stale/old.txt").write_text("old")
    extract(_make_zip(work / "data.zip", FILES), target)
    assert _tree(target) == FILES
    assert sorted(p.name for p in work.iterdir()) == ["data.zip", "out"]


UNSAFE_ARCHIVES: dict[str, Callable[[Path], Path]] = {
    "zip-dotdot": lambda d: _make_zip(d / "x.zip", {"ok.txt": b"1", "../evil": b"x"}),
    "zip-absolute": lambda d: _make_zip(d / "x.zip", {"/etc/x": b"x"}),
    "zip-backslash": lambda d: _make_zip(d / "x.zip", {"..\\..\\evil": b"x"}),
    "zip-drive": lambda d: _make_zip(d / "x.zip", {"C:/evil": b"x"}),
    "tar-dotdot": lambda d: _make_tar(d / "x.tar.gz", [_file_member("a/../../evil", b"x")]),
    "tar-absolute": lambda d: _make_tar(d / "x.tar", [_file_member("/etc/x", b"x")]),
    "tar-symlink-absolute": lambda d: _make_tar(
        d / "x.tar.gz", [_link_member("passwd", "/etc/passwd")]
    ),
    "tar-symlink-dir-escape": lambda d: _make_tar(
        d / "x.tar.gz", [_link_member("escape", "../.."), _file_member("escape/evil", b"x")]
    ),
    "tar-write-through-inner-symlink": lambda d: _make_tar(
        d / "x.tar",
        [_link_member("here", "."), _link_member("here/up", ".."), _file_member("up/evil", b"x")],
    ),
    "tar-hardlink-outside": lambda d: _make_tar(
        d / "x.tar", [_link_member("hard", "../evil", tarfile.LNKTYPE)]
    ),
    "tar-device": lambda d: _make_tar(d / "x.tar", [_link_member("dev", "", tarfile.CHRTYPE)]),
}


@pytest.mark.parametrize("build", UNSAFE_ARCHIVES.values(), ids=UNSAFE_ARCHIVES.keys())
def test_unsafe_members_refused_before_writing(
    tmp_path: Path, work: Path, build: Callable[[Path], Path]
) -> None:
    archive = build(work)
    with pytest.raises(UnsafeArchiveError, match="refusing to extract .*member"):
        extract(archive, work / "out")
    assert [p.name for p in work.iterdir()] == [archive.name]
    assert [p.name for p in tmp_path.iterdir()] == ["work"]


def test_unsafe_error_names_archive_and_member(work: Path) -> None:
    archive = _make_zip(work / "x.zip", {"../evil": b"x"})
    with pytest.raises(UnsafeArchiveError) as info:
        extract(archive, work / "out")
    assert str(archive) in str(info.value)
    assert "'../evil'" in str(info.value)


def test_corrupt_zip(work: Path) -> None:
    archive = work / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip file")
    with pytest.raises(CorruptArchiveError, match="broken.zip"):
        extract(archive, work / "out")
    assert [p.name for p in work.iterdir()] == ["broken.zip"]


def test_truncated_tar_gz(work: Path) -> None:
    archive = _make_tar(work / "x.tar.gz", [_file_member("big", bytes(range(256)) * 4000)])
    archive.write_bytes(archive.read_bytes()[:500])
    with pytest.raises(CorruptArchiveError, match="x.tar.gz"):
        extract(archive, work / "out")
    assert [p.name for p in work.iterdir()] == ["x.tar.gz"]


def test_failure_during_extraction_leaves_old_target(work: Path) -> None:
    """A bad CRC surfaces only while writing: the temp dir goes and the old target stays."""
    archive = work / "crc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("good.txt", b"good")
        zf.writestr("bad.txt", b"PAYLOAD-PAYLOAD")
    raw = archive.read_bytes()
    archive.write_bytes(raw.replace(b"PAYLOAD-PAYLOAD", b"PAYLOAD-CORRUPT"))
    (work / "out").mkdir()
    (work / "out/old.txt").write_text("old")
    with pytest.raises(CorruptArchiveError, match="crc.zip"):
        extract(archive, work / "out")
    assert _tree(work / "out") == {"old.txt": b"old"}
    assert sorted(p.name for p in work.iterdir()) == ["crc.zip", "out"]


def test_unknown_format(work: Path) -> None:
    archive = work / "data.rar"
    archive.write_bytes(b"whatever")
    with pytest.raises(ValueError, match=r"data\.rar.*\.tar\.gz, \.tgz, \.tar, \.zip"):
        extract(archive, work / "out")


def test_missing_archive(work: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.zip"):
        extract(work / "nope.zip", work / "out")
