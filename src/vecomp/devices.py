"""Where computation runs: one rule for every step (feature extraction, fusion training).

``auto`` picks a GPU when there is one. On a GPU, forwards run under bf16 autocast; on the CPU in
fp32, so CPU reruns are exact.
"""

from __future__ import annotations

import torch


def pick_device(device: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a torch device."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on a GPU; a no-op context elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
