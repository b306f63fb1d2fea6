"""Probe questions for the planted-complementarity validation (``config/validation.yaml``).

Each probe asks about fixed kinds of information, always with the same words: colour ("Is
there a red object?"), shape ("Is there a circle?") or position ("Is there an object in the top
left corner?"). Its answer is a property of the whole scene, so an encoder that sees that kind
of information answers it and no other encoder can (with a fixed number of objects per scene:
otherwise a probe's token count, one per object, tells how crowded the scene is, which the
answers depend on). A task built from, say, the colour and shape probes needs exactly the colour
and shape encoders, and each answers its own questions: their contributions add up.

``color_xor_shape`` ("Is there either a red object or a circle, but not both?") needs the
colour and shape encoders *together*: either alone tells nothing about the answer. It plants
synergy, where the pair's gain is more than the sum of its parts.

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
# validation's scenes of three objects (red 43%, circle 51%, corner 42%, either red or circle
# but not both 49%), so no answer prior helps much.
def _red(scene: Scene) -> bool:
    return bool(scene.find(color="red"))


def _circle(scene: Scene) -> bool:
    return bool(scene.find(shape="circle"))


def _top_left(scene: Scene) -> bool:
    return any(o.x < CORNER and o.y < CORNER for o in scene.visible)


PROBES: dict[str, tuple[str, Callable[[Scene], bool]]] = {
    "color": ("a red object", _red),
    "shape": ("a circle", _circle),
    "position": ("an object in the top left corner", _top_left),
    "color_xor_shape": (
        "either a red object or a circle, but not both",
        lambda scene: _red(scene) != _circle(scene),
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
