"""Decoding a batch of image files on the device that encodes them (nvjpeg on a GPU).

On a GPU, decoding JPEGs on the CPU workers bounds extraction (ViT-B/16: 447 img/s decoded by 8
workers against 8,618 img/s forward, ``bench/README.md``). ``decode_on_device`` hands a batch of
JPEG files to torchvision's ``decode_jpeg`` on the device in one call and resizes and normalises
them there (the encoder's ``tensor_transform``). What that decoder refuses never fails the pool:

- files that are not baseline/progressive JPEGs in three components (PNG bytes under a .jpg
  name, CMYK JPEGs, anything else) go to the CPU decoder (PIL) directly;
- when the batch call fails, each JPEG is decoded on its own, and one that fails again is
  decoded by PIL;
- a file that PIL cannot decode either is an unreadable image, reported as on the CPU path.

Pixels match the CPU path up to the decoders' and resamplers' rounding: both decoders are
libjpeg-turbo on a CPU; nvjpeg's IDCT and torch's resampling differ from PIL's by a grey level
here and there, so the features agree within a tolerance, not bit for bit.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2.functional import pil_to_tensor

JPEG_START = b"\xff\xd8\xff"
# Start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic):
# every 0xFFCn but DHT (C4), JPG (C8) and DAC (CC).
START_OF_FRAME = {0xC0 + n for n in range(16)} - {0xC4, 0xC8, 0xCC}
STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length: TEM, RST0-7


def jpeg_components(data: bytes | memoryview) -> int | None:
    """The component count of a JPEG's frame header (1 grey, 3 YCbCr, 4 CMYK/YCCK); None when
    ``data`` is not a JPEG or its header cannot be walked."""
    if bytes(data[:3]) != JPEG_START:
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in STANDALONE:
            at += 2
            continue
        if marker in START_OF_FRAME:
            return data[at + 9] if at + 9 < len(data) else None
        if marker == 0xDA:  # start of scan before any frame header
            return None
        at += 2 + int.from_bytes(bytes(data[at + 2 : at + 4]), "big")
    return None


def device_decodable(data: bytes | memoryview) -> bool:
    """Whether the device decoder is handed this file: a JPEG in one or three components."""
    return jpeg_components(data) in (1, 3)


def decode_on_cpu(data: bytes) -> torch.Tensor:
    """PIL's decoding, as the CPU path: uint8 ``[3, H, W]`` RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return pil_to_tensor(image.convert("RGB"))


def decode_on_device(
    files: list[torch.Tensor],
    device: torch.device,
    transform: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[list[torch.Tensor | None], list[str | None]]:
    """Decode and transform ``files`` (each file's bytes as a uint8 tensor, as DataLoader
    workers hand them over: through shared memory, not a pipe) on ``device``; returns (images,
    errors), one of the two set per file: the transformed image, or why it is unreadable."""
    decoded: list[torch.Tensor | str] = [""] * len(files)
    jpegs = [i for i, blob in enumerate(files) if device_decodable(memoryview(blob.numpy()))]
    for i, image in zip(jpegs, _decode_jpegs([files[i] for i in jpegs], device), strict=True):
        decoded[i] = image
    for i in sorted(set(range(len(files))) - set(jpegs)):
        decoded[i] = _decode_on_cpu(files[i], device)
    images = [transform(d) if isinstance(d, torch.Tensor) else None for d in decoded]
    return images, [d if isinstance(d, str) else None for d in decoded]


def _decode_jpegs(blobs: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | str]:
    """One batched call, else one call per file, else PIL for the files it refused."""
    if not blobs:
        return []
    try:
        return list(decode_jpeg(blobs, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        return [_decode_one(blob, device) for blob in blobs]


def _decode_one(blob: torch.Tensor, device: torch.device) -> torch.Tensor | str:
    try:
        return decode_jpeg(blob, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return _decode_on_cpu(blob, device)


def _decode_on_cpu(blob: torch.Tensor, device: torch.device) -> torch.Tensor | str:
    """PIL's decoding on the device, or why it failed (an unreadable image)."""
    try:
        return decode_on_cpu(blob.numpy().tobytes()).to(device)
    except Exception as err:  # a corrupt file: reported by the caller, never silently lost
        return f"{type(err).__name__}: {err}"


def file_tensor(data: bytes) -> torch.Tensor:
    """A file's bytes as a uint8 tensor (what ``decode_on_device`` takes)."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)
