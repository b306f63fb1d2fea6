"""Where an encoder's weights come from, and a clear, instant error when they are not there.

``weights`` in an encoder spec is one of: ``null`` (random init: tests, architecture checks),
``"hub"`` (the model's own hub id: needs the internet once, then the local cache), or a local
path (a checkpoint folder or file, as the demo's mini encoders are saved). With
``HF_HUB_OFFLINE=1`` a missing hub checkpoint fails at once instead of after network timeouts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import VecompError


class MissingWeightsError(VecompError, OSError):
    pass


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def local_path(weights: str, what: str) -> Path:
    path = Path(weights)
    if not path.exists():
        raise MissingWeightsError(
            f"weights of {what} not found at {path}; point the encoder's `weights` at an existing "
            "checkpoint folder or file, or use `weights: hub` to fetch the published one"
        )
    return path


@contextmanager
def from_hub(what: str, hub_id: str) -> Iterator[None]:
    """Turn a failed hub download into an error naming the checkpoint and how to supply it."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as err:
        hint = " (HF_HUB_OFFLINE is set)" if offline() else ""
        raise MissingWeightsError(
            f"could not load the weights of {what} from the hub id {hub_id!r}{hint}: {err}\n"
            "Download it once on a machine with internet access (it is then cached), or save it "
            "to a folder and set the encoder's `weights` to that path."
        ) from err


CHECKPOINT_FILES = {".safetensors", ".bin", ".pth", ".pt"}


def _is_checkpoint_file(path: Path) -> bool:
    """Weights and the config that builds them; not metrics or notes kept beside them."""
    return path.suffix in CHECKPOINT_FILES or path.name == "config.json"


def weights_hash(weights: str | None) -> str:
    """A short content hash of a local checkpoint (folder or file); the spec itself otherwise."""
    if weights is None or weights == "hub" or not Path(weights).exists():
        return str(weights)
    path = Path(weights)
    digest = hashlib.sha256()
    files = (
        sorted(p for p in path.rglob("*") if p.is_file() and _is_checkpoint_file(p))
        if path.is_dir()
        else [path]
    )
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
