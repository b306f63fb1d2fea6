"""Captions for the retrieval datasets: five per image, each naming a different view of it."""

from __future__ import annotations

import random

from .questions import RELATIONS
from .scenes import Scene
from .words import NUMBER_WORDS, article, sentence


def _phrase(obj, with_size: bool) -> str:
    words = f"{obj.size} {obj.color} {obj.shape}" if with_size else obj.name
    return f"{article(words)} {words}"


def _candidates(scene: Scene, rng: random.Random) -> list[str]:
    objs = list(scene.visible)
    rng.shuffle(objs)
    out = []
    if not objs:
        out.append("an empty plain background")
    for i, a in enumerate(objs):
        out.append(f"{_phrase(a, True)} on a plain background")
        for b in objs[i + 1 :]:
            out.append(f"{_phrase(a, False)} and {_phrase(b, True)}")
            for relation, holds in RELATIONS.items():
                if holds(a, b):
                    out.append(f"{_phrase(a, False)} {relation} {_phrase(b, False)}")
    count = NUMBER_WORDS[len(objs)] if len(objs) < len(NUMBER_WORDS) else str(len(objs))
    if objs:
        listing = ", ".join(_phrase(o, False) for o in objs[:-1])
        listing = (
            f"{listing} and {_phrase(objs[-1], False)}" if listing else _phrase(objs[0], False)
        )
        out.append(f"{count} shapes: {listing}")
    if scene.occluder is not None:
        out.append(f"a grey cloud covering part of a picture with {count} visible shapes")
    return out


def captions_for(scene: Scene, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct captions (repeating only if the scene is too simple to say more)."""
    options = list(dict.fromkeys(_candidates(scene, rng)))
    rng.shuffle(options)
    picked = options[:n]
    while len(picked) < n:
        picked.append(options[len(picked) % len(options)])
    return [sentence(c) for c in picked]
