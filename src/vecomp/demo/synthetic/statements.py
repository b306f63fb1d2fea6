"""Statements about image pairs (NLVR2 style) and hypotheses about one image (SNLI-VE style).

NLVR2: a statement is drawn first, then image pairs are drawn until the statement is true for
half of them and false for the other half; further statements about the same pairs are drawn
until each is also true for exactly half of them. So every statement text is balanced by
construction. ``PAIR_STATEMENTS`` names the families a config can choose from.
SNLI-VE: "neutral" means the image cannot tell, which here means the occluder may hide what the
hypothesis is about; entailment and contradiction are decided by the visible objects.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .balance import Item
from .questions import OPPOSITE, RELATIONS
from .scenes import COLORS, SHAPES, Scene
from .words import NUMBER_WORDS, article, plural

ENTAILMENT, NEUTRAL, CONTRADICTION = "entailment", "neutral", "contradiction"
SNLI_LABELS = (ENTAILMENT, NEUTRAL, CONTRADICTION)


# ------------------------------------------------------------------ NLVR2: statements on pairs
@dataclass(frozen=True)
class PairStatement:
    text: str
    holds: Callable[[Scene, Scene], bool]  # (left, right) -> truth


def _has(scene: Scene, color=None, shape=None) -> bool:
    return bool(scene.find(color, shape))


def _colour(rng: random.Random) -> str:
    return rng.choice(tuple(COLORS))


def _side(rng: random.Random) -> tuple[str, int]:
    """A side of the pair and the index of its image."""
    side = rng.choice(("left", "right"))
    return side, 0 if side == "left" else 1


def side_object(rng: random.Random) -> PairStatement:
    c, s = _colour(rng), rng.choice(SHAPES)
    side, k = _side(rng)
    return PairStatement(f"The {side} image contains {article(c)} {c} {s}.",
                         lambda *p: _has(p[k], c, s))  # fmt: skip


def side_colour(rng: random.Random) -> PairStatement:
    c = _colour(rng)
    side, k = _side(rng)
    return PairStatement(f"The {side} image contains {article(c)} {c} object.",
                         lambda *p: _has(p[k], c))  # fmt: skip


def both_shape(rng: random.Random) -> PairStatement:
    s = rng.choice(SHAPES)
    return PairStatement(f"Both images contain {article(s)} {s}.",
                         lambda a, b: _has(a, shape=s) and _has(b, shape=s))  # fmt: skip


def one_colour(rng: random.Random) -> PairStatement:
    c = _colour(rng)
    return PairStatement(f"Exactly one image contains {article(c)} {c} object.",
                         lambda a, b: _has(a, c) != _has(b, c))  # fmt: skip


def total_colour(rng: random.Random) -> PairStatement:
    c, n = _colour(rng), rng.randint(1, 4)
    return PairStatement(f"There are {NUMBER_WORDS[n]} {c} objects in total.",
                         lambda a, b: len(a.find(c)) + len(b.find(c)) == n)  # fmt: skip


def more_shape(rng: random.Random) -> PairStatement:
    s = rng.choice(SHAPES)
    return PairStatement(f"The left image has more {plural(s)} than the right image.",
                         lambda a, b: len(a.find(shape=s)) > len(b.find(shape=s)))  # fmt: skip


def side_count(rng: random.Random) -> PairStatement:
    n = rng.randint(1, 4)
    side, k = _side(rng)
    return PairStatement(f"The {side} image contains exactly {NUMBER_WORDS[n]} objects.",
                         lambda *p: len(p[k].visible) == n)  # fmt: skip


# Statement families, by the name a config lists them under (data.synthetic.nlvr2_statements).
PAIR_STATEMENTS: dict[str, Callable[[random.Random], PairStatement]] = {
    "side_object": side_object,
    "side_colour": side_colour,
    "both_shape": both_shape,
    "one_colour": one_colour,
    "total_colour": total_colour,
    "more_shape": more_shape,
    "side_count": side_count,
}


def draw_pair_statement(
    rng: random.Random, families: tuple[str, ...] = tuple(PAIR_STATEMENTS)
) -> PairStatement:
    """One statement from a random family of ``families``, with random attributes."""
    return PAIR_STATEMENTS[rng.choice(families)](rng)


# ------------------------------------------------------------ SNLI-VE: hypotheses on one image
def _label(entailed: bool, refuted: bool, occluded: bool) -> str:
    """Entailed by what is visible; refuted by what is visible; otherwise the occluder decides."""
    if entailed:
        return ENTAILMENT
    if refuted or not occluded:
        return CONTRADICTION
    return NEUTRAL


def _hyp(template: str, text: str, label: str) -> Item:
    return Item(template, text, label, SNLI_LABELS)


def hyp_exists(scene: Scene) -> list[Item]:
    occluded = scene.occluder is not None
    return [
        _hyp("exists", f"There is {article(c)} {c} {s}.", _label(bool(scene.find(c, s)), False,
                                                                 occluded))
        for c in COLORS for s in SHAPES
    ]  # fmt: skip


def hyp_none(scene: Scene) -> list[Item]:
    occluded = scene.occluder is not None
    return [
        _hyp("none", f"There is no {s} in the picture.",
             _label(not scene.find(shape=s) and not occluded, bool(scene.find(shape=s)), occluded))
        for s in SHAPES
    ]  # fmt: skip


def hyp_at_least_two(scene: Scene) -> list[Item]:
    occluded = scene.occluder is not None
    return [
        _hyp("two", f"There are at least two {c} objects.",
             _label(len(scene.find(c)) >= 2, False, occluded))
        for c in COLORS
    ]  # fmt: skip


def hyp_count(scene: Scene) -> list[Item]:
    occluded, n_visible = scene.occluder is not None, len(scene.visible)
    return [
        _hyp("count", f"There are exactly {NUMBER_WORDS[n]} objects.",
             _label(n_visible == n and not occluded, n_visible > n, occluded))
        for n in range(1, 6)
    ]  # fmt: skip


def hyp_relation(scene: Scene) -> list[Item]:
    """'The red circle is above the blue square.': decided by the two objects when both are
    visible; when the first is not, contradiction without an occluder, neutral with one."""
    occluded = scene.occluder is not None
    items = []
    for anchor in scene.visible:
        for c in COLORS:
            for s in SHAPES:
                if (c, s) == (anchor.color, anchor.shape):
                    continue
                found = scene.find(c, s)
                for relation, holds in RELATIONS.items():
                    if found:
                        entailed, refuted = (
                            holds(found[0], anchor),
                            RELATIONS[OPPOSITE[relation]](found[0], anchor),
                        )
                        if not (entailed or refuted):
                            continue  # too close to call: no hypothesis
                        label = ENTAILMENT if entailed else CONTRADICTION
                    else:
                        label = NEUTRAL if occluded else CONTRADICTION
                    text = f"The {c} {s} is {relation} the {anchor.name}."
                    items.append(_hyp("relation", text, label))
    return items


SNLI_VE_TEMPLATES = {
    "exists": hyp_exists,
    "none": hyp_none,
    "two": hyp_at_least_two,
    "count": hyp_count,
    "relation": hyp_relation,
}
