"""The encoder registry: one decorated class per encoder type.

Adding an encoder type is one ``@register_encoder("name")`` class; using it is one config entry
``{type: name, ...options}`` that ``factory.create_encoder`` builds. This module imports no
encoder, so a module that only registers one (or a pretraining that saves a checkpoint) does not
load the others.
"""

from __future__ import annotations

from ..errors import VecompError

ENCODERS: dict[str, type] = {}


class EncoderSpecError(VecompError, ValueError):
    pass


def register_encoder(name: str):
    def decorate(cls):
        ENCODERS[name] = cls
        return cls

    return decorate
