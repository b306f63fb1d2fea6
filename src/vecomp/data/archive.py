"""Safe, atomic extraction of downloaded archives.

Archives come from the internet, so a member named ``../../.bashrc``, an absolute path or a
symlink to ``/etc`` must never make extraction write outside the target directory.
:func:`extract` checks every member before writing anything, extracts into a temporary sibling
directory and only then swaps it into place, so a refused, corrupt or interrupted extraction
never leaves a half-populated target that later pipeline steps would mistake for complete.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from ..errors import VecompError

# Suffix -> tarfile mode, or "zip". Longest suffixes first so ".tar.gz" wins over ".gz".
_FORMATS: dict[str, str] = {".tar.gz": "r:gz", ".tgz": "r:gz", ".tar": "r:", ".zip": "zip"}
SUPPORTED_SUFFIXES = tuple(_FORMATS)

_DRIVE_RE = re.compile(r"[A-Za-z]:")
_CORRUPTION_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class UnsafeArchiveError(VecompError, ValueError):
    """An archive member could write outside the target; names the archive and the member."""


class CorruptArchiveError(VecompError, ValueError):
    """The archive cannot be read (truncated download, wrong format, bad CRC)."""


class UnsupportedArchiveError(VecompError, ValueError):
    """The file's name ends in no archive suffix this module reads."""


def extract(archive: Path, target: Path) -> Path:
    """Safely extract a .zip, .tar, .tar.gz/.tgz archive into `target` (a directory), return it.

    All members are checked before anything is written (no absolute paths, drive letters,
    ``..`` escaping the target, links pointing outside it or paths through an archived symlink,
    device files). Extraction goes to ``.<target>.tmp-*`` next to ``target`` and is moved onto
    ``target`` only when complete; an existing ``target`` is replaced only then. On any
    failure the temporary directory is removed and ``target`` is left as it was.

    Raises:
        UnsupportedArchiveError: unknown suffix.
        UnsafeArchiveError: a member could escape the target (nothing was written).
        CorruptArchiveError: the archive cannot be read.
        FileNotFoundError / NotADirectoryError: missing archive, or ``target`` is a file.
    """
    archive = Path(archive)
    target = Path(os.path.abspath(target))
    mode = _format_of(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"cannot extract {archive}: no such file")
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"cannot extract {archive} into {target}: not a directory")
    with _corruption_reported(archive):
        if mode == "zip":
            with zipfile.ZipFile(archive) as zf:
                _check_zip(archive, zf)
                _extract_atomically(target, zf.extractall)
        else:
            with tarfile.open(archive, mode) as tf:
                _check_tar(archive, tf.getmembers())
                _extract_atomically(target, lambda tmp: _extract_tar(archive, tf, tmp))
    return target


def _format_of(archive: Path) -> str:
    """The tarfile mode (or "zip") for ``archive``'s suffix."""
    name = archive.name.lower()
    for suffix, mode in _FORMATS.items():
        if name.endswith(suffix):
            return mode
    raise UnsupportedArchiveError(
        f"cannot extract {archive}: unknown archive format; supported suffixes are "
        f"{', '.join(SUPPORTED_SUFFIXES)}"
    )


@contextmanager
def _corruption_reported(archive: Path) -> Iterator[None]:
    """Turn the many exceptions of a damaged archive into one error that names the file."""
    try:
        yield
    except _CORRUPTION_ERRORS as exc:
        raise CorruptArchiveError(
            f"cannot extract {archive}: the archive is corrupt or truncated ({exc}); "
            "delete it and download it again"
        ) from exc


# --------------------------------------------------------------------------- member checks


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    """Refuse zip members that could land outside the target (zipfile writes no symlinks)."""
    for info in zf.infolist():
        _resolve(archive, info.filename, info.filename)


def _check_tar(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """Refuse tar members that could write, or link, outside the target."""
    symlinks = {"/".join(_resolve(archive, m.name, m.name)) for m in members if m.issym()}
    for member in members:
        path = _resolve(archive, member.name, member.name, symlinks=symlinks)
        if member.isdev():
            raise UnsafeArchiveError(
                f"refusing to extract {archive}: member {member.name!r} is a device file or FIFO"
            )
        if member.issym():  # the link target is relative to the link's own directory
            _resolve(archive, member.name, member.linkname, base=path[:-1], symlinks=symlinks)
        elif member.islnk():  # hard link targets are relative to the archive root
            _resolve(archive, member.name, member.linkname, symlinks=symlinks)


def _resolve(
    archive: Path,
    member: str,
    path: str,
    *,
    base: tuple[str, ...] = (),
    symlinks: frozenset[str] | set[str] = frozenset(),
) -> tuple[str, ...]:
    """Resolve ``path`` from ``base`` lexically, refusing anything that could leave the target.

    Refused: absolute paths and drive letters, ``..`` above the target, and descending through
    a member that is itself a symlink -- where that leads is only known once it exists on disk,
    so ``link/..`` or ``link/file`` could land anywhere. Backslashes count as separators.
    """
    posix = path.replace("\\", "/")
    if posix.startswith("/") or _DRIVE_RE.match(posix):
        _refuse(archive, member, f"uses the absolute path {path!r}")
    parts = list(base)
    components = [c for c in posix.split("/") if c not in ("", ".")]
    for i, component in enumerate(components):
        if component != "..":
            parts.append(component)
        elif parts:
            parts.pop()
        else:
            _refuse(archive, member, f"reaches outside the target directory via {path!r}")
        if i < len(components) - 1 and "/".join(parts) in symlinks:
            _refuse(archive, member, f"goes through the archived symlink {'/'.join(parts)!r}")
    return tuple(parts)


def _refuse(archive: Path, member: str, reason: str) -> NoReturn:
    """Raise the error for an unsafe member; nothing has been written when this is called."""
    raise UnsafeArchiveError(f"refusing to extract {archive}: member {member!r} {reason}")


# --------------------------------------------------------------------------- extraction


def _extract_tar(archive: Path, tf: tarfile.TarFile, tmp: Path) -> None:
    """Extract with tarfile's "data" filter as a second line of defence behind our checks."""
    try:
        tf.extractall(tmp, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"refusing to extract {archive}: {exc}") from exc


def _extract_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Run ``write`` into a fresh sibling temp dir, then swap that dir onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would otherwise become the target's mode
        write(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Move ``tmp`` onto ``target``, moving an existing ``target`` aside first and deleting it
    only once the new one is in place (a directory cannot be os.replace'd onto a non-empty one).
    """
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
