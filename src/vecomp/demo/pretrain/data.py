"""What a pretraining run learns from and in what order: options, seeds, scenes, schedule.

Every objective draws its scenes from its own seed streams, apart from the scene suite's (which
uses other seed strings), so pretraining scenes and the demo's evaluation images are independent
draws (with positions to three decimals, a repeated image is practically impossible):

- train scenes: ``random.Random(f"{seed}:pretrain:{objective}")``
- held-out scenes: ``random.Random(f"{seed}:pretrain:{objective}:heldout")``

Growing ``n_train`` therefore leaves the held-out set unchanged. Scenes are rendered in memory to
float tensors [N, 3, S, S] in [0, 1]; each objective normalises them as its saved preprocessing
config says, so training and feature extraction see the same pixels.

Options shared by every objective (defaults differ per objective, see its module):
``seed``, ``image_size`` (S), ``n_train``, ``n_heldout``, ``epochs``, ``batch_size``, ``lr``,
``weight_decay``, ``n_objects`` ([min, max] objects per scene), ``occluder_prob``; and
``threads`` (torch's CPU threads, 2 for every objective). The thread count is part of the
recipe: it changes how a CPU sums, and a pretraining run amplifies those last bits (the region
detector trained with 1 thread instead of 2 matched 47% of its held-out labels, not 67%), so
the same spec gives the same bytes on a two-core laptop and a 64-core cluster node.

Every objective trains the same way (:func:`train`): AdamW, a linear warm-up then cosine decay of
the learning rate over all steps, gradients clipped to norm ``MAX_GRAD_NORM``, and batches in a
fresh order each epoch from a torch generator seeded by ``seed``. Only the loss differs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import VecompError
from ..synthetic.scenes import COLORS, SHAPES, Scene, render, sample_scene

SHARED_DEFAULTS = {"threads": 2}
MAX_GRAD_NORM = 5.0
WARMUP_FRACTION = 0.05
MEAN = (0.5, 0.5, 0.5)  # the timm encoders' saved preprocessing, so extraction matches training
STD = (0.25, 0.25, 0.25)


class PretrainSpecError(VecompError, ValueError):
    pass


def resolve_spec(objective: str, defaults: dict, spec: dict | None) -> dict:
    """``defaults`` updated by ``spec``; an unknown or out-of-range option is a user error."""
    spec, defaults = dict(spec or {}), {**SHARED_DEFAULTS, **defaults}
    unknown = sorted(set(spec) - set(defaults))
    if unknown:
        raise PretrainSpecError(
            f"pretraining objective {objective!r} has no option(s) {unknown}; "
            f"options: {', '.join(sorted(defaults))}"
        )
    merged = {**defaults, **spec}
    problem = _option_problem(merged, defaults)
    if problem:
        raise PretrainSpecError(f"pretrain {objective}: {problem}")
    merged["n_objects"] = [int(v) for v in merged["n_objects"]]
    return merged


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _option_problem(spec: dict, defaults: dict) -> str | None:
    """What is wrong with the options, if anything: every count or size (an option whose default
    is an integer) must be a positive integer, the seed any non-negative one."""
    if not _is_int(spec["seed"]) or spec["seed"] < 0:
        return f"seed must be a non-negative integer, got {spec['seed']!r}"
    for key in sorted(k for k, v in defaults.items() if _is_int(v) and k != "seed"):
        if not _is_int(spec[key]) or spec[key] < 1:
            return f"{key} must be a positive integer, got {spec[key]!r}"
    for key in ("lr", "weight_decay"):
        if not isinstance(spec[key], int | float) or spec[key] < 0:
            return f"{key} must be a non-negative number, got {spec[key]!r}"
    prob = spec["occluder_prob"]
    if not isinstance(prob, int | float) or not 0 <= prob <= 1:
        return f"occluder_prob must be a number in [0, 1], got {prob!r}"
    counts = spec["n_objects"]
    most = len(COLORS) * len(SHAPES)  # (colour, shape) pairs are unique within a scene
    if (
        not isinstance(counts, list | tuple)
        or len(counts) != 2
        or not all(isinstance(v, int) for v in counts)
        or not 0 <= counts[0] <= counts[1] <= most
    ):
        return f"n_objects must be [min, max] with 0 <= min <= max <= {most}, got {counts!r}"
    return None


def scene_stream(seed: int, objective: str, split: str) -> random.Random:
    """The Python RNG of one objective's train or held-out scenes."""
    base = f"{seed}:pretrain:{objective}"
    return random.Random(base if split == "train" else f"{base}:{split}")


@dataclass
class SceneSet:
    scenes: list[Scene]
    images: torch.Tensor  # [N, 3, S, S] float32 in [0, 1]

    def __len__(self) -> int:
        return len(self.scenes)


def sample_scenes(spec: dict, objective: str, split: str) -> list[Scene]:
    """``n_train`` or ``n_heldout`` scenes of one objective, from that split's own stream."""
    rng = scene_stream(spec["seed"], objective, split)
    count = spec["n_train"] if split == "train" else spec["n_heldout"]
    return [
        sample_scene(
            rng,
            f"pretrain-{objective}-{split}-{i:05d}",
            tuple(spec["n_objects"]),
            spec["occluder_prob"],
        )
        for i in range(count)
    ]


def render_images(scenes: list[Scene], size: int) -> torch.Tensor:
    """Scenes -> [N, 3, size, size] float32 in [0, 1] (the pixels ``render`` draws)."""
    pixels = np.stack([np.asarray(render(scene, size)) for scene in scenes])  # [N, S, S, 3]
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255.0).contiguous()


def scene_set(spec: dict, objective: str, split: str) -> SceneSet:
    scenes = sample_scenes(spec, objective, split)
    return SceneSet(scenes, render_images(scenes, spec["image_size"]))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, S, S] in [0, 1] -> a timm network's input, as the saved data config normalises."""
    return (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A fresh random order of ``n`` indices cut into batches (the last one may be short)."""
    return list(torch.randperm(n, generator=generator).split(batch_size))


@contextmanager
def seeded(seed: int, threads: int = SHARED_DEFAULTS["threads"]) -> Iterator[None]:
    """Seed Python and torch, require deterministic kernels and use ``threads`` CPU threads,
    restoring all of it afterwards.

    Model initialisation and dropout draw from torch's global RNG, so the same seed (and thread
    count) gives the same checkpoint bytes; the caller's RNG state is left as it was.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    python_state, was_threads = random.getstate(), torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(was_threads)
            torch.use_deterministic_algorithms(was_deterministic)
            random.setstate(python_state)


def make_optimizer(params, spec: dict, total_steps: int):
    """AdamW and its per-step schedule: linear warm-up, then cosine decay to zero."""
    optimizer = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=spec["weight_decay"])
    warmup = max(1, round(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_step(optimizer, loss: torch.Tensor, params) -> float:
    """One update from ``loss``, gradients clipped; the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    optimizer.step()
    return float(loss.detach())


def train(
    model: torch.nn.Module, batch_loss: Callable[[torch.Tensor], torch.Tensor], n: int, spec: dict
) -> list[float]:
    """Train ``model`` for ``spec["epochs"]`` over ``n`` examples; mean loss per epoch.

    ``batch_loss(indices)`` computes the objective's loss on the examples ``indices`` ([B] int64).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    steps_per_epoch = math.ceil(n / spec["batch_size"])
    optimizer, schedule = make_optimizer(params, spec, spec["epochs"] * steps_per_epoch)
    generator = torch.Generator().manual_seed(spec["seed"])
    model.train()
    losses = []
    for _ in range(spec["epochs"]):
        epoch = []
        for indices in epoch_batches(n, spec["batch_size"], generator):
            epoch.append(optimizer_step(optimizer, batch_loss(indices), params))
            schedule.step()
        losses.append(round(sum(epoch) / len(epoch), 5))
    model.eval()
    return losses


def save_timm(model: torch.nn.Module, folder, spec: dict, **config) -> None:
    """timm's own hub format, with the preprocessing the encoder loader will resolve from it."""
    import timm  # where used: a config check imports this module for resolve_spec

    size = spec["image_size"]
    data_config = {
        "input_size": (3, size, size),
        "mean": MEAN,
        "std": STD,
        "interpolation": "bicubic",
        "crop_pct": 1.0,
    }
    timm.models.save_for_hf(
        model, str(folder), data_config=data_config, safe_serialization=True, **config
    )
