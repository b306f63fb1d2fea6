"""The encoder registry: one decorated class per encoder type, one factory.

Adding an encoder type is one ``@register_encoder("name")`` class; using it is one config entry
``{type: name, ...options}``. The factory's error lists the valid types and an option error
names the bad option.
"""

from __future__ import annotations

import inspect

from ..errors import VecompError

ENCODERS: dict[str, type] = {}


class EncoderSpecError(VecompError, ValueError):
    pass


def register_encoder(name: str):
    def decorate(cls):
        ENCODERS[name] = cls
        return cls

    return decorate


def _load_builtin_types() -> None:
    from . import detector, hf, precomputed, probe, timm_models  # noqa: F401 - they register themselves


def check_spec(spec: dict) -> tuple[type, dict]:
    """The encoder class and its options; EncoderSpecError for an unknown type or option."""
    _load_builtin_types()
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
