"""One family of CPU float kernels for every command, so the bytes follow the library versions
and the recipe, not the CPU that ran them.

Each numerical library picks its kernels for the CPU it finds, and kernels that sum in another
order train another model: torch's ATen takes the widest vector unit (AVX-512 where there is
one), oneDNN (the convolutions) its own instruction set, and MKL (the matrix products) a code
path for the CPU's vendor and model (on this project's AMD machine a different one from its
AVX2 path). Each reads one environment variable, once, when it loads; `vecomp` sets them before
a command imports torch (:func:`pin_cpu_kernels`), to the AVX2 family every x86-64 CPU since
2015 offers. The thread count is the other half: a training job uses its recipe's count
(pretraining specs, ``train.threads``; 0 there means the machine's count, and its bytes),
while inference gives the same bytes at any count (tests/test_cpu_kernels.py checks both, on
an emulated other machine).

What is not pinned: CPUs without AVX2 and other architectures (no pin is set), GPUs, and
``VECOMP_CPU_KERNELS=native``, which leaves every library to choose (e.g. to use AVX-512).
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping
from pathlib import Path

from .errors import VecompError

PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions and matrix products
    "MKL_CBWR": "AVX2,STRICT",  # MKL's code path; STRICT: the same at any thread count
}
OPT_OUT = "VECOMP_CPU_KERNELS"  # "native": every library picks its own kernels
CPU_INFO = Path("/proc/cpuinfo")


def has_avx2(cpu_info: Path = CPU_INFO) -> bool:
    """Whether this is an x86-64 CPU with AVX2 (read from Linux's cpuinfo; False elsewhere)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not cpu_info.is_file():
        return False
    flags = next((line for line in cpu_info.open() if line.startswith("flags")), "")
    return "avx2" in flags.split()


def pin_cpu_kernels(
    environ: MutableMapping[str, str] = os.environ, avx2: bool | None = None
) -> dict[str, str]:
    """Set :data:`PINNED` in ``environ`` (over what it holds) and return what was set: nothing
    when ``VECOMP_CPU_KERNELS=native`` or the CPU has no AVX2. Takes effect in a process that
    has not loaded torch yet, and in every process it starts."""
    choice = environ.get(OPT_OUT, "pinned").lower()
    if choice not in ("pinned", "native"):
        raise VecompError(
            f"{OPT_OUT}={environ[OPT_OUT]!r} is neither 'pinned' (the default: the same bytes "
            "on any x86-64 CPU with AVX2) nor 'native' (each library picks its kernels)"
        )
    if choice == "native":
        return {}
    if not (has_avx2() if avx2 is None else avx2):
        return {}
    environ.update(PINNED)
    return dict(PINNED)
