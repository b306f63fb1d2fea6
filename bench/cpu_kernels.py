"""What pinning the CPU kernels costs (vecomp.cpu_kernels), against each library's own choice,
same run, same machine.

Each job runs as the workflow runs it (`vecomp ...` in its own process) with
VECOMP_CPU_KERNELS=pinned and =native, alternately, --repeats times; the median wall times and
their ratio (pinned / native, above 1 = the pin is slower) are printed per job, and whether the
native kernels wrote other bytes than the pinned ones:

pretrain-<objective>: the demo's recipe for each mini encoder, cut to --scenes scenes, 1 epoch;
train:                one `vecomp train` of the demo's vqav2 run on all three encoders, 2 epochs
                      (needs the demo's prepared tables, text and stores; skipped without them).

On a CPU whose own choice is the AVX2 family the pin only changes MKL's code path; on one with
AVX-512 it also gives up the wider vectors.

    python bench/cpu_kernels.py [--repeats 3] [--scenes 256]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from vecomp.cpu_kernels import OPT_OUT, PINNED, has_avx2
from vecomp.fusion.sweep import train_settings

CHOICES = ("pinned", "native")


def jobs(config: dict, scenes: int) -> dict[str, list[str]]:
    """{job name: vecomp argv, less its --out} of the jobs timed."""
    commands = {}
    for name, encoder in sorted(config["encoders"].items()):
        spec = dict(encoder["pretrain"], n_train=scenes, n_heldout=64, epochs=1)
        objective = spec.pop("objective")
        commands[f"pretrain-{name}"] = [
            "pretrain",
            "--objective",
            objective,
            "--spec",
            json.dumps(spec),
        ]
    run = Path("results/prepared/vqav2")
    if run.exists():
        train = dict(train_settings(config, "vqav2"), epochs=2, device="cpu")
        stores = [f"--store={e}=results/features/{e}/coco" for e in sorted(config["encoders"])]
        commands["train"] = [
            "train", "--task", "vqav2", "--prepared", str(run), "--text", "results/text/vqav2",
            *stores, "--seed", "0", "--model", json.dumps(config["model"]),
            "--train", json.dumps(train),
        ]  # fmt: skip
    return commands


def run(argv: list[str], choice: str, out: Path) -> tuple[float, str]:
    """Wall seconds of `vecomp argv` under ``choice``, into a fresh ``out`` (the same path each
    time: an encoder's folder records where it lies), and a digest of what it wrote."""
    env = {k: v for k, v in os.environ.items() if k not in PINNED} | {OPT_OUT: choice}
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(["vecomp", *argv, "--out", str(out)], env=env, check=True, capture_output=True)
    return time.perf_counter() - started, digest(out)


def digest(folder: Path) -> str:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    hashed = hashlib.sha256()
    for path in files:
        hashed.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return hashed.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=256)
    args = parser.parse_args()
    if not has_avx2():
        raise SystemExit("this CPU has no AVX2: the pin does not apply here")
    config = yaml.safe_load(Path("config/config.yaml").read_text())
    print(f"{'job':<16} {'pinned s':>9} {'native s':>9} {'ratio':>6}  native bytes")
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in jobs(config, args.scenes).items():
            times, digests = {c: [] for c in CHOICES}, {c: set() for c in CHOICES}
            for _ in range(args.repeats):
                for choice in CHOICES:
                    took, written = run(argv, choice, Path(tmp) / "out")
                    times[choice].append(took)
                    digests[choice].add(written)
            pinned, native = (statistics.median(times[c]) for c in CHOICES)
            print(f"{name:<16} {pinned:9.2f} {native:9.2f} {pinned / native:6.3f}  ", end="")
            print(bytes_of(digests), flush=True)


def bytes_of(digests: dict[str, set[str]]) -> str:
    """How the native run's bytes compare with the pinned run's."""
    if any(len(found) > 1 for found in digests.values()):
        return "vary from repeat to repeat"
    return "the same" if digests["pinned"] == digests["native"] else "other"


if __name__ == "__main__":
    main()
