"""Build an encoder from its config entry: ``create_encoder({"type": ..., **options})``.

Every built-in type is loaded first (each module registers its own, see ``registry.py``); the
error for an unknown type lists the valid ones, an option error names the bad option.
"""

from __future__ import annotations

import inspect

from .registry import ENCODERS, EncoderSpecError


def load_builtin_types() -> None:
    # Each module registers its types when imported; the demo's stand-ins register by name too.
    from ..demo import detector as demo_detector  # noqa: F401
    from ..demo import probe  # noqa: F401
    from . import detector, hf, precomputed, timm_models  # noqa: F401


def check_spec(spec: dict) -> tuple[type, dict]:
    """The encoder class and its options; EncoderSpecError for an unknown type or option."""
    load_builtin_types()
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in ENCODERS:
        raise EncoderSpecError(
            f"unknown encoder type {kind!r}; valid types: {', '.join(sorted(ENCODERS))}"
        )
    cls = ENCODERS[kind]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        valid = ", ".join(sorted(accepted))
        raise EncoderSpecError(
            f"encoder type {kind!r} has no option(s) {unknown}; options: {valid}"
        )
    return cls, options


def create_encoder(spec: dict):
    """Build the encoder ``spec["type"]`` with the remaining keys as options."""
    cls, options = check_spec(spec)
    return cls(**options).eval()
