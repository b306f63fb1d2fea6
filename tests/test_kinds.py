"""The task-kind registry: every task names a kind, every kind has its model-side behaviour."""

from __future__ import annotations

import pytest

from vecomp.data.registry import TASKS
from vecomp.errors import VecompError
from vecomp.fusion.data import TARGETS
from vecomp.fusion.evaluate import EVALUATORS
from vecomp.fusion.heads import HEADS
from vecomp.kinds import KINDS, TaskKind, get_kind


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    ("table", "where"),
    [
        (HEADS, "fusion/heads.py HEADS"),
        (TARGETS, "fusion/data.py TARGETS"),
        (EVALUATORS, "fusion/evaluate.py EVALUATORS"),
    ],
)
def test_every_kind_registers_its_head_targets_and_evaluator(kind, table, where):
    assert kind in table, f"task kind {kind!r} has no entry in {where}"


def test_the_fusion_tables_hold_no_kind_the_registry_lacks():
    for table in (HEADS, TARGETS, EVALUATORS):
        assert set(table) <= set(KINDS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_names_a_registered_kind(task):
    assert TASKS[task].kind in KINDS


def test_the_paper_s_headline_metrics():
    # The paper reports VQA accuracy, accuracy and retrieval's R@1+R@5+R@10 sum (RSUM).
    expected = {
        **dict.fromkeys(("vqav2", "gqa", "nlvr2", "snli_ve"), "accuracy"),
        **dict.fromkeys(("flickr30k_retrieval", "coco_retrieval"), "rsum"),
    }
    assert {t: get_kind(TASKS[t].kind).headline for t in expected} == expected


def test_an_unknown_kind_or_target_is_refused_by_name():
    with pytest.raises(VecompError, match="unknown task kind 'ranking'.*vqa"):
        get_kind("ranking")
    with pytest.raises(ValueError, match="target 'scores'"):
        TaskKind("ranking", "scores", "accuracy", "acc.", "softmax")
