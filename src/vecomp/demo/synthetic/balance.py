"""Answer balancing: the reason no task can be solved from its text alone.

Every generator proposes candidate items (text, answer) that are true of a scene; the balancer
picks the one whose answer is most under-represented *for that exact text*, ties broken by the
template's overall answer counts and then at random. Over a dataset, each question text is then
paired with its possible answers about equally often, so the best text-only rule (the most
frequent train answer per text) scores close to chance.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    """A generated question / statement / hypothesis with its answer."""

    template: str  # the family it came from; balancing and type fields are per template
    text: str
    answer: str
    space: tuple[str, ...]  # every answer the template can give
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class Balancer:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.by_text: dict[str, Counter] = defaultdict(Counter)
        self.by_template: dict[str, Counter] = defaultdict(Counter)

    def _deficit(self, item: Item) -> tuple[int, int]:
        text_counts = self.by_text[item.text]
        template_counts = self.by_template[item.template]
        return (
            text_counts[item.answer] - min(text_counts[a] for a in item.space),
            template_counts[item.answer] - min(template_counts[a] for a in item.space),
        )

    def pick(self, candidates: list[Item]) -> Item | None:
        """Choose (and count) the candidate that best evens out the answers; None if empty."""
        if not candidates:
            return None
        scored = [(self._deficit(c), i) for i, c in enumerate(candidates)]
        best = min(score for score, _ in scored)
        chosen = candidates[self.rng.choice([i for score, i in scored if score == best])]
        self.record(chosen)
        return chosen

    def record(self, item: Item) -> None:
        self.by_text[item.text][item.answer] += 1
        self.by_template[item.template][item.answer] += 1


def pick_items(
    rng: random.Random, balancer: Balancer, templates: dict, scene, n: int
) -> list[Item]:
    """Up to ``n`` items about one scene, templates visited in random order, texts distinct."""
    names = list(templates)
    rng.shuffle(names)
    chosen: list[Item] = []
    seen: set[str] = set()
    for name in names * n:
        if len(chosen) == n:
            break
        candidates = [c for c in templates[name](scene) if c.text not in seen]
        item = balancer.pick(candidates)
        if item is not None:
            chosen.append(item)
            seen.add(item.text)
    return chosen
