"""Probe questions for the planted-complementarity validation (``config/validation.yaml``).

Each probe asks about one kind of information only, always with the same words: colour ("Is
there a red object?"), shape ("Is there a circle?") or position ("Is there an object in the top
left corner?"). Its answer is a property of the whole scene, so an encoder that sees that kind
of information answers it and no other encoder can. A task built from, say, the colour and shape
probes needs exactly the colour and shape encoders: the analyses must find that.

``data.synthetic.probes: {task: [kind, ...]}`` replaces a task's study templates with these.
"""

from __future__ import annotations

from collections.abc import Callable

from .balance import Item
from .questions import YES_NO, _gqa, _vqa, yes_no
from .scenes import Scene
from .statements import _hyp, _label

CORNER = 0.4  # "the top left corner": centre within 0.4 of the image side from both edges

# kind -> (what the probe names, whether the scene has it). Each holds for about half of the
# scenes of 2-5 objects (red 44%, circle 57%, corner 47%), so no answer prior helps much.
PROBES: dict[str, tuple[str, Callable[[Scene], bool]]] = {
    "color": ("a red object", lambda scene: bool(scene.find(color="red"))),
    "shape": ("a circle", lambda scene: bool(scene.find(shape="circle"))),
    "position": (
        "an object in the top left corner",
        lambda scene: any(o.x < CORNER and o.y < CORNER for o in scene.visible),
    ),
}
PROBED_TASKS = ("vqav2", "gqa", "snli_ve")


def _vqa_probe(kind: str):
    phrase, holds = PROBES[kind]

    def items(scene: Scene) -> list[Item]:
        answer = yes_no(holds(scene))
        return [
            _vqa(f"probe_{kind}", f"Is there {phrase}?", answer, YES_NO, "is there a", "yes/no")
        ]

    return items


def _gqa_probe(kind: str):
    phrase, holds = PROBES[kind]

    def items(scene: Scene) -> list[Item]:
        answer = yes_no(holds(scene))
        full = f"{answer.capitalize()}, there {'is' if holds(scene) else 'is not'} {phrase}."
        return [
            _gqa(f"probe_{kind}", f"Is there {phrase}?", answer, YES_NO, "verify", "attr", full)
        ]

    return items


def _snli_probe(kind: str):
    phrase, holds = PROBES[kind]

    def items(scene: Scene) -> list[Item]:
        label = _label(holds(scene), False, scene.occluder is not None)
        return [_hyp(f"probe_{kind}", f"There is {phrase}.", label)]

    return items


BUILDERS = {"vqav2": _vqa_probe, "gqa": _gqa_probe, "snli_ve": _snli_probe}


def probe_templates(task: str, kinds) -> dict:
    """A template registry (name -> scene -> items) of the given probe kinds for one task."""
    return {f"probe_{kind}": BUILDERS[task](kind) for kind in kinds}
