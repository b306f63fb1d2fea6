"""Question templates for the VQAv2-style and GQA-style datasets.

Each template maps a scene to every item it can truthfully ask about it; the balancer then picks.
VQAv2 templates are short, single-hop questions; GQA templates are compositional (relations
between objects, logical and/or, comparisons, choices), with GQA's structural/semantic types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .balance import Item
from .scenes import COLORS, SHAPES, SIZES, Scene, SceneObject
from .words import article, plural

YES_NO = ("yes", "no")
COUNTS = ("0", "1", "2")  # larger counts are too rare to balance per question text
RELATION_MARGIN = 0.08  # centres closer than this are not clearly left/right/above/below

RELATIONS: dict[str, Callable[[SceneObject, SceneObject], bool]] = {
    "to the left of": lambda a, b: a.x < b.x - RELATION_MARGIN,
    "to the right of": lambda a, b: a.x > b.x + RELATION_MARGIN,
    "above": lambda a, b: a.y < b.y - RELATION_MARGIN,
    "below": lambda a, b: a.y > b.y + RELATION_MARGIN,
}
OPPOSITE = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
}


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def unique_by(scene: Scene, attribute: str) -> list[SceneObject]:
    """Visible objects whose value of ``attribute`` no other visible object shares."""
    counts = Counter(getattr(o, attribute) for o in scene.visible)
    return [o for o in scene.visible if counts[getattr(o, attribute)] == 1]


def related(scene: Scene, relation: str, anchor: SceneObject) -> list[SceneObject]:
    return [o for o in scene.visible if o is not anchor and RELATIONS[relation](o, anchor)]


def clear_relation(a: SceneObject, b: SceneObject) -> str | None:
    """The horizontal relation of a to b when it is unambiguous, else None."""
    for relation in ("to the left of", "to the right of"):
        if RELATIONS[relation](a, b):
            return relation
    return None


# ---------------------------------------------------------------- VQAv2: single-hop questions
def _vqa(template: str, text: str, answer: str, space, qtype: str, atype: str) -> Item:
    return Item(template, text, answer, space, {"question_type": qtype, "answer_type": atype})


def vqa_exist(scene: Scene) -> list[Item]:
    return [
        _vqa("exist", f"Is there {article(c)} {c} {s}?", yes_no(bool(scene.find(c, s))),
             YES_NO, "is there a", "yes/no")
        for c in COLORS for s in SHAPES
    ]  # fmt: skip


def vqa_is_color(scene: Scene) -> list[Item]:
    return [
        _vqa("is_color", f"Is the {o.shape} {c}?", yes_no(o.color == c), YES_NO, "is the",
             "yes/no")
        for o in unique_by(scene, "shape") for c in COLORS
    ]  # fmt: skip


def vqa_color(scene: Scene) -> list[Item]:
    return [
        _vqa("color", f"What color is the {o.shape}?", o.color, tuple(COLORS),
             "what color is the", "other")
        for o in unique_by(scene, "shape")
    ]  # fmt: skip


def vqa_shape(scene: Scene) -> list[Item]:
    return [
        _vqa("shape", f"What shape is the {o.color} object?", o.shape, SHAPES,
             "what shape is the", "other")
        for o in unique_by(scene, "color")
    ]  # fmt: skip


def vqa_size(scene: Scene) -> list[Item]:
    return [
        _vqa("size", f"What size is the {o.name}?", o.size, tuple(SIZES), "what size is the",
             "other")
        for o in scene.visible
    ]  # fmt: skip


def _count_items(template: str, texts_and_counts) -> list[Item]:
    return [
        _vqa(template, text, str(n), COUNTS, "how many", "number")
        for text, n in texts_and_counts
        if str(n) in COUNTS
    ]


def vqa_count_shape(scene: Scene) -> list[Item]:
    return _count_items(
        "count_shape",
        ((f"How many {plural(s)} are there?", len(scene.find(shape=s))) for s in SHAPES),
    )


def vqa_count_color(scene: Scene) -> list[Item]:
    return _count_items(
        "count_color",
        ((f"How many {c} objects are there?", len(scene.find(color=c))) for c in COLORS),
    )


VQA_TEMPLATES = {
    "exist": vqa_exist,
    "is_color": vqa_is_color,
    "color": vqa_color,
    "shape": vqa_shape,
    "size": vqa_size,
    "count_shape": vqa_count_shape,
    "count_color": vqa_count_color,
}


# ---------------------------------------------------------------- GQA: compositional questions
def _gqa(template, text, answer, space, structural, semantic, full_answer) -> Item:
    meta = {
        "structural": structural,
        "semantic": semantic,
        "detailed": template,
        "fullAnswer": full_answer,
    }
    return Item(template, text, answer, space, meta)


def uniquely_related(scene: Scene, attribute: str):
    """(anchor, relation, object): the only object with its ``attribute`` value in that
    relation to the anchor, so "the <value> <relation> the <anchor>" names exactly one object."""
    for anchor in scene.visible:
        for relation in RELATIONS:
            others = related(scene, relation, anchor)
            counts = Counter(getattr(o, attribute) for o in others)
            yield from ((anchor, relation, o) for o in others if counts[getattr(o, attribute)] == 1)


def gqa_relate_color(scene: Scene) -> list[Item]:
    """'What color is the <shape> <relation> the <anchor>?' (a two-hop query)."""
    return [
        _gqa("relColor", f"What color is the {o.shape} {relation} the {anchor.name}?", o.color,
             tuple(COLORS), "query", "rel", f"The {o.shape} is {o.color}.")
        for anchor, relation, o in uniquely_related(scene, "shape")
    ]  # fmt: skip


def gqa_relate_shape(scene: Scene) -> list[Item]:
    """'What shape is the <colour> object <relation> the <anchor>?'"""
    return [
        _gqa("relShape", f"What shape is the {o.color} object {relation} the {anchor.name}?",
             o.shape, SHAPES, "query", "rel", f"The {o.color} object is a {o.shape}.")
        for anchor, relation, o in uniquely_related(scene, "color")
    ]  # fmt: skip


def gqa_verify_relation(scene: Scene) -> list[Item]:
    items = []
    for a in scene.visible:
        for b in scene.visible:
            relation = clear_relation(a, b)
            if a is b or relation is None:
                continue
            for asked in (relation, OPPOSITE[relation]):
                answer = yes_no(asked == relation)
                text = f"Is the {a.name} {asked} the {b.name}?"
                full = f"{answer.capitalize()}, the {a.name} is {relation} the {b.name}."
                items.append(_gqa("relVerify", text, answer, YES_NO, "verify", "rel", full))
    return items


def _logical(scene: Scene, template: str, word: str, combine) -> list[Item]:
    names = [(c, s) for c in COLORS for s in SHAPES]
    items = []
    for i, (c1, s1) in enumerate(names):
        for c2, s2 in names[i + 1 :]:
            if (c1 == c2) == (s1 == s2):  # pairs that differ in exactly one attribute
                continue
            answer = yes_no(combine(bool(scene.find(c1, s1)), bool(scene.find(c2, s2))))
            text = f"Is there {word} {article(c1)} {c1} {s1} {'and' if word == 'both' else 'or'} "
            text += f"{article(c2)} {c2} {s2}?"
            items.append(
                _gqa(template, text, answer, YES_NO, "logical", "obj", f"{answer.capitalize()}.")
            )
    return items


def gqa_and(scene: Scene) -> list[Item]:
    return _logical(scene, "logicAnd", "both", lambda a, b: a and b)


def gqa_or(scene: Scene) -> list[Item]:
    return _logical(scene, "logicOr", "either", lambda a, b: a or b)


def gqa_choose_size(scene: Scene) -> list[Item]:
    return [
        _gqa("chooseSize", f"Is the {o.name} small or large?", o.size, tuple(SIZES), "choose",
             "attr", f"The {o.name} is {o.size}.")
        for o in scene.visible
    ]  # fmt: skip


def gqa_same_size(scene: Scene) -> list[Item]:
    objs = scene.visible
    return [
        _gqa("sameSize", f"Do the {a.name} and the {b.name} have the same size?",
             yes_no(a.size == b.size), YES_NO, "compare", "attr",
             f"{yes_no(a.size == b.size).capitalize()}.")
        for i, a in enumerate(objs) for b in objs[i + 1 :]
    ]  # fmt: skip


GQA_TEMPLATES = {
    "relColor": gqa_relate_color,
    "relShape": gqa_relate_shape,
    "relVerify": gqa_verify_relation,
    "logicAnd": gqa_and,
    "logicOr": gqa_or,
    "chooseSize": gqa_choose_size,
    "sameSize": gqa_same_size,
}
