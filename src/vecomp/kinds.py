"""Task kinds: what each kind of V+L task means to every phase, in one table (``KINDS``).

A task in the dataset registry (``data/registry.py``) names its kind. The kind says what its
targets are (``target``), which metric selects a run on dev and heads the study's tables, and how
its outputs become probabilities. Its model-side behaviour (head and loss, batch targets,
evaluator) is registered under the same name in ``fusion/heads.py`` (``HEADS``),
``fusion/data.py`` (``TARGETS``) and ``fusion/evaluate.py`` (``EVALUATORS``);
``tests/test_kinds.py`` fails when a kind lacks one of them.

Targets:
- ``answers``: ten human answers, scored by the official VQA metric, trained as soft scores
  over an answer vocabulary;
- ``class``: one label of a fixed set (given by the task or learned from train answers);
- ``match``: whether a caption belongs to an image (retrieval; no label set).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import VecompError

TARGET_TYPES = ("answers", "class", "match")


@dataclass(frozen=True)
class TaskKind:
    name: str
    target: str  # one of TARGET_TYPES
    headline: str  # the metric that selects the dev epoch and heads the study's tables
    headline_label: str  # its name in the results table
    probabilities: str  # how outputs become probabilities (what an ensemble averages)
    images: int = 1  # images per example

    def __post_init__(self) -> None:
        if self.target not in TARGET_TYPES:
            raise ValueError(f"task kind {self.name}: target {self.target!r} not in {TARGET_TYPES}")

    @property
    def has_labels(self) -> bool:
        """A label set: a vocabulary or classes (the text-only baselines need one)."""
        return self.target != "match"


KINDS: dict[str, TaskKind] = {
    kind.name: kind
    for kind in (
        TaskKind("vqa", "answers", "accuracy", "VQA acc.", "sigmoid"),
        TaskKind("classification", "class", "accuracy", "acc.", "softmax"),
        TaskKind("pair", "class", "accuracy", "acc.", "softmax", images=2),
        TaskKind("retrieval", "match", "rsum", "rSum", "sigmoid"),
    )
}


def get_kind(name: str) -> TaskKind:
    if name not in KINDS:
        raise VecompError(f"unknown task kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]
