"""Which package code a ``vecomp`` command runs: the import closure of its module.

Snakemake hashes it into every rule's params (``code_hash``), so editing a module reruns
exactly the jobs whose commands import it, and ``tests/test_provenance.py`` checks that each
DVC stage's ``deps`` name the same files. The closure is found statically (``ast``), so
nothing heavy is imported: every ``import`` anywhere in a module counts, including those
inside functions, and importing a module runs its packages' ``__init__.py`` files too.
Third-party code is pinned by the environment, not tracked here. ``cli.py`` itself only
dispatches, but what it runs before every command (``cpu_kernels.py``) is part of each.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

from .cli import COMMANDS

PACKAGE = "vecomp"
SOURCE = Path(__file__).resolve().parent  # src/vecomp


def module_file(module: str, source: Path = SOURCE) -> Path | None:
    """The file of a ``vecomp`` module (a package's ``__init__.py``), or None if none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = source.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, source: Path) -> str:
    parts = path.relative_to(source).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def imported_modules(path: Path, source: Path = SOURCE) -> set[str]:
    """The ``vecomp`` modules one file imports (``from x import y`` counts ``x.y`` when ``y``
    is a module). Relative imports resolve against the file's package."""
    name = _module_name(path, source)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = _imported_names(path.read_text(), str(path), package)
    return {m for m in found if module_file(m, source) is not None}


@cache  # by the text: the closures of the 16 commands share most of their modules
def _imported_names(text: str, filename: str, package: str) -> frozenset[str]:
    found = set()
    for node in ast.walk(ast.parse(text, filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    anchor = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join(anchor + ([module] if module else []))


def _with_parents(module: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(module: str, source: Path = SOURCE) -> tuple[Path, ...]:
    """Every package file that importing ``module`` runs, sorted."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in _with_parents(todo.pop()):
            if name in seen or module_file(name, source) is None:
                continue
            seen.add(name)
            todo.extend(imported_modules(module_file(name, source), source))
    return tuple(sorted(module_file(m, source) for m in seen))


def command_module(command: str) -> str:
    if command not in COMMANDS:
        raise KeyError(f"no vecomp command {command!r}; known: {', '.join(COMMANDS)}")
    return COMMANDS[command][0].partition(":")[0]


def command_code(command: str, source: Path = SOURCE) -> tuple[Path, ...]:
    """The package files ``vecomp <command>`` runs: its module's closure, and what the entry
    point runs before every command (the CPU kernel pin), less the dispatch table itself."""
    entry = set(closure("vecomp.cli", source)) - {module_file("vecomp.cli", source)}
    return tuple(sorted(entry | set(closure(command_module(command), source))))


def code_hash(command: str, source: Path = SOURCE) -> str:
    """A content hash of the code ``vecomp <command>`` runs: file names and bytes."""
    digest = hashlib.sha256()
    for path in command_code(command, source):
        digest.update(path.relative_to(source).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def dependency_paths(commands: list[str], source: Path = SOURCE) -> list[str]:
    """The code of several commands as ``dvc.yaml`` ``deps`` paths (relative to the project
    root): a folder stands for its files when every module under it is needed."""
    needed = {p for command in commands for p in command_code(command, source)}
    root = source.parent.parent
    paths = set()
    for path in needed:
        folder = path.parent
        while folder != source and _all_modules(folder.parent, needed, source):
            folder = folder.parent
        whole = _all_modules(folder, needed, source)
        paths.add((folder if whole else path).relative_to(root).as_posix())
    return sorted(paths)


def _all_modules(folder: Path, needed: set[Path], source: Path) -> bool:
    return folder != source and set(folder.rglob("*.py")) <= needed


def main(argv: list[str] | None = None) -> int:
    """``python -m vecomp.provenance train collect``: the ``dvc.yaml`` deps of those commands."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vecomp.provenance", description=main.__doc__)
    parser.add_argument("commands", nargs="+", choices=sorted(COMMANDS), metavar="COMMAND")
    args = parser.parse_args(argv)
    print("\n".join(f"- {path}" for path in dependency_paths(args.commands)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
