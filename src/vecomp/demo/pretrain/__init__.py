"""Pretrain the embedded demo's three small vision encoders, one per family, on synthetic scenes.

The demo cannot download ImageNet CNNs, CLIP ViTs or Visual Genome detectors, so it trains small
stand-ins whose families differ the way the real ones do: in architecture, objective and data.

- ``grid``: a timm ResNet (resnet10t) predicting which colours, shapes and sizes a scene shows
  (multi-label BCE), scenes without occluders (:mod:`.grid`).
- ``patch``: a small timm ViT trained contrastively against a bag-of-words caption tower
  (symmetric InfoNCE), scenes with occluders (:mod:`.patch`).
- ``region``: a mini torchvision Faster R-CNN detecting (colour, shape) objects with
  torchvision's detection losses (:mod:`.region`).

Each is saved in the checkpoint format its real counterparts load from (a timm ``save_for_hf``
folder, a ``save_detector`` folder), so the pipeline's encoder loaders read it unchanged. The
output folder, written atomically (a failed run leaves none), holds the checkpoint files,
``encoder.json`` (the encoder spec that loads it; ``weights`` is the folder as given) and
``metrics.json`` (per-epoch training loss, held-out metrics after training and at
initialisation, image counts, seed, resolved spec, library versions). Training runs on the CPU
with deterministic kernels: the same spec gives the same bytes, checkpoint and metrics alike
(the wall and CPU seconds go to the log). The spec keys and their defaults are listed in each
objective's module docstring.

Usage: ``vecomp pretrain --objective grid --spec '{"epochs": 2}' --out results/encoders/grid``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ...io import atomic_dir, write_json
from . import grid, patch, region
from .data import PretrainSpecError

# objective -> pretrain(spec, folder) -> {"encoder": spec without weights, "spec", "metrics"}
PRETRAINERS: dict[str, Callable[[dict | None, Path], dict]] = {
    "grid": grid.pretrain,
    "patch": patch.pretrain,
    "region": region.pretrain,
}
DEFAULTS: dict[str, dict] = {
    "grid": grid.DEFAULTS,
    "patch": patch.DEFAULTS,
    "region": region.DEFAULTS,
}
LIBRARIES = ("torch", "torchvision", "timm", "safetensors", "numpy", "pillow")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def pretrain(objective: str, spec: dict | None, out: Path) -> dict:
    """Train one objective's encoder into ``out`` (atomically); its metrics."""
    if objective not in PRETRAINERS:
        raise PretrainSpecError(
            f"unknown pretraining objective {objective!r}; valid: {', '.join(PRETRAINERS)}"
        )
    with atomic_dir(Path(out)) as folder:
        result = PRETRAINERS[objective](spec, folder)
        resolved = result["spec"]
        metrics = {
            "objective": objective,
            **result["metrics"],
            "n_images": {"train": resolved["n_train"], "heldout": resolved["n_heldout"]},
            "seed": resolved["seed"],
            "spec": resolved,
            "versions": library_versions(),
        }
        write_json(folder / "metrics.json", metrics)
        write_json(folder / "encoder.json", {**result["encoder"], "weights": str(out)})
    return metrics


def parse_spec(text: str) -> dict:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise PretrainSpecError(f"--spec is not valid JSON ({err}): {text!r}") from err
    if not isinstance(spec, dict):
        raise PretrainSpecError(f"--spec must be a JSON object, got {text!r}")
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vecomp pretrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--objective", required=True, choices=sorted(PRETRAINERS))
    parser.add_argument("--spec", default="{}", help="JSON of options (see the objective)")
    parser.add_argument("--out", type=Path, required=True, help="output checkpoint folder")
    args = parser.parse_args(argv)
    started, cpu_started = time.perf_counter(), time.process_time()
    metrics = pretrain(args.objective, parse_spec(args.spec), args.out)
    timings = {
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
    }
    print(json.dumps({k: metrics[k] for k in ("objective", "heldout")} | timings))
    return 0
