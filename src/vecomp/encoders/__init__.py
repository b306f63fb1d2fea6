"""Vision encoders of three families (region, grid, patch) behind one registry.

``create_encoder({"type": ..., **options})`` builds any registered encoder; every encoder maps a
batch of images to tokens, their boxes and a mask (see :mod:`vecomp.encoders.base`).
"""

from .base import EncoderOutput, VisionEncoder
from .registry import ENCODERS, create_encoder, register_encoder

__all__ = ["ENCODERS", "EncoderOutput", "VisionEncoder", "create_encoder", "register_encoder"]
