"""Hand-computed values of the official task metrics in vecomp.metrics.tasks."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torchmetrics.functional.retrieval import retrieval_hit_rate
from torchmetrics.functional.retrieval import retrieval_recall as tm_recall

from vecomp.data.baselines import random_ranking_rsum
from vecomp.errors import VecompError
from vecomp.metrics.tasks import accuracy, nlvr2_consistency, retrieval_recall, vqa_score

# --- accuracy -------------------------------------------------------------------------------


def test_accuracy_counts_exact_matches():
    assert accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == pytest.approx(75.0)
    assert accuracy([2], [2]) == 100.0
    assert accuracy([0, 0, 0], [1, 2, 1]) == 0.0
    assert isinstance(accuracy([1], [1]), float)


def test_accuracy_rejects_length_mismatch_and_empty():
    with pytest.raises(VecompError, match=r"differ in length \(2 vs 3\)"):
        accuracy([0, 1], [0, 1, 2])
    with pytest.raises(VecompError, match="no examples"):
        accuracy([], [])


# --- NLVR2 consistency ----------------------------------------------------------------------


def test_nlvr2_consistency_needs_every_example_of_a_sentence_right():
    groups = ["dev-1--0", "dev-1--0", "dev-1--0", "dev-2--1", "dev-2--1", "dev-3--0"]
    correct = [True, True, True, True, False, True]
    # groups dev-1 (3/3 right) and dev-3 (1/1) are consistent, dev-2 (1 of 2 wrong) is not
    assert nlvr2_consistency(groups, correct) == pytest.approx(200 / 3)
    assert nlvr2_consistency(groups, [True] * 6) == 100.0
    assert nlvr2_consistency(groups, [False] + [True] * 5) == pytest.approx(200 / 3)  # dev-1 out
    one_right = [False, True, True, False, True, True]  # dev-1 and dev-2 each have one wrong
    assert nlvr2_consistency(groups, one_right) == pytest.approx(100 / 3)
    assert nlvr2_consistency(["a", "b"], [False, False]) == 0.0


def test_nlvr2_consistency_groups_need_not_be_contiguous():
    assert nlvr2_consistency(["a", "b", "a", "b"], [True, True, False, True]) == 50.0


def test_nlvr2_consistency_rejects_bad_input():
    with pytest.raises(VecompError, match="group_ids and correct differ in length"):
        nlvr2_consistency(["a"], [True, False])
    with pytest.raises(VecompError, match="no examples"):
        nlvr2_consistency([], [])


# --- VQA ------------------------------------------------------------------------------------


def _answers(matching: int, answer: str = "red", other: str = "blue") -> list[str]:
    return [answer] * matching + [other] * (10 - matching)


@pytest.mark.parametrize(
    ("matching", "expected"),
    [
        (0, 0.0),
        # leave out the match: 0 left -> 0; leave out one of 9 others: 1 match -> 1/3
        (1, (1 * 0 + 9 * (1 / 3)) / 10 * 100),  # 30
        (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10 * 100),  # 60
        (3, (3 * (2 / 3) + 7 * 1) / 10 * 100),  # 90
        (4, 100.0),  # 3 matches remain whichever answer is left out
        (10, 100.0),
    ],
)
def test_vqa_score_leave_one_out(matching, expected):
    assert vqa_score(["red"], [_answers(matching)])["accuracy"] == pytest.approx(expected)


def test_vqa_score_normalises_numbers_articles_and_case_where_annotators_disagree():
    answers = ["2"] * 3 + ["3"] * 7
    assert vqa_score(["Two"], [answers])["accuracy"] == pytest.approx(90.0)
    assert vqa_score(["a dog"], [["dog"] * 9 + ["cat"]])["accuracy"] == pytest.approx(100.0)
    assert vqa_score(["dogs"], [["dog"] * 9 + ["cat"]])["accuracy"] == 0.0


def test_vqa_score_compares_unanimous_answers_as_written_unless_asked():
    # vqaEval.py (since March 2021) normalises nothing when all ten answers are the same string
    assert vqa_score(["a dog"], [["dog"] * 10])["accuracy"] == 0.0
    assert vqa_score(["Dog."], [["the dog"] * 10])["accuracy"] == 0.0
    assert vqa_score(["dog"], [["dog"] * 10])["accuracy"] == 100.0
    relaxed = vqa_score(["Dog."], [["the dog"] * 10], normalise_unanimous=True)
    assert relaxed["accuracy"] == pytest.approx(100.0)


def test_vqa_score_per_answer_type():
    result = vqa_score(
        ["yes", "no", "2", "red"],
        [["yes"] * 10, ["yes"] * 10, _answers(1, "2", "3"), _answers(3)],
        ["yes/no", "yes/no", "number", "other"],
    )
    assert result == pytest.approx(
        {
            "accuracy": (100 + 0 + 30 + 90) / 4,
            "accuracy/yes/no": 50.0,
            "accuracy/number": 30.0,
            "accuracy/other": 90.0,
        }
    )
    assert set(vqa_score(["yes"], [["yes"] * 10])) == {"accuracy"}


def test_vqa_score_rejects_bad_input():
    with pytest.raises(VecompError, match="predictions and human_answers differ in length"):
        vqa_score(["a", "b"], [["a"] * 10])
    with pytest.raises(VecompError, match="answer_types and predictions differ in length"):
        vqa_score(["a"], [["a"] * 10], ["other", "other"])
    with pytest.raises(VecompError, match="question 1 needs a list of human answers"):
        vqa_score(["a", "b"], [["a"] * 10, []])
    with pytest.raises(VecompError, match="question 0 needs a list of human answers"):
        vqa_score(["a"], ["a"])
    with pytest.raises(VecompError, match="no examples"):
        vqa_score([], [])


# --- retrieval ------------------------------------------------------------------------------

# 2 images x 5 captions: texts 0-4 describe image 0, texts 5-9 image 1.
TWO_BY_FIVE = torch.tensor(
    [
        [10.0, 4, 3, 2, 1, 9, 8, 7, 6, 5],  # image 0: own caption 0 ranks 1st, 1-4 rank 7-10th
        [9.5, 9, 8, 7, 6, 5, -1, -2, -3, -4],  # image 1: its best caption (5) ranks 6th
    ]
)
TWO_BY_FIVE_GT = [0] * 5 + [1] * 5


def test_retrieval_is_hit_rate_not_recall():
    result = retrieval_recall(TWO_BY_FIVE, TWO_BY_FIVE_GT)
    expected = {
        "i2t_r1": 50.0,  # image 0 hits (caption 0 first), image 1 misses
        "i2t_r5": 50.0,  # image 0: 1 of 5 captions in its top 5 -> a hit (recall would be 0.2)
        "i2t_r10": 100.0,  # image 1's caption 5 is 6th
        "t2i_r1": 10.0,  # only text 0 ranks its image first (10 > 9.5)
        "t2i_r5": 100.0,  # K larger than the 2 images: everything is retrieved
        "t2i_r10": 100.0,
        "rsum": 410.0,
    }
    assert result == pytest.approx(expected)
    assert list(result) == list(expected)
    assert result["rsum"] == pytest.approx(sum(v for k, v in result.items() if k != "rsum"))
    # torchmetrics' recall gives the fractional score the hit rate avoids: (1/5 + 0) / 2
    is_gt = torch.tensor([[True] * 5 + [False] * 5, [False] * 5 + [True] * 5])
    fractional = [tm_recall(TWO_BY_FIVE[i], is_gt[i], top_k=5).item() for i in range(2)]
    assert fractional == pytest.approx([0.2, 0.0])


def test_retrieval_text_to_image_top1_with_interleaved_captions():
    gt = [2, 0, 1, 0, 2, 1, 1, 0, 2]  # 3 images x 3 captions, in no particular order
    scores = torch.zeros(3, 9)
    scores[gt, torch.arange(9)] = 1.0
    perfect = retrieval_recall(scores, gt, ks=(1,))
    assert perfect == {"i2t_r1": 100.0, "t2i_r1": 100.0, "rsum": 200.0}
    scores[0, 0] = 2.0  # text 0 (image 2) now prefers image 0
    scores[2, 5] = 1.0  # text 5 (image 1): image 2 ties with its own -> counted as a miss
    result = retrieval_recall(scores, gt, ks=(1, 2))
    assert result["t2i_r1"] == pytest.approx(700 / 9)
    assert result["t2i_r2"] == 100.0
    # image 0's top text is text 0 (score 2, not its caption); image 2's captions tie with
    # text 5 (score 1, not its caption) -> a miss; only image 1 hits
    assert result["i2t_r1"] == pytest.approx(100 / 3)
    assert result["i2t_r2"] == 100.0


def test_retrieval_ties_count_against_the_query_and_ignore_order():
    flat = torch.ones(3, 3)  # one caption per image, every score equal
    assert retrieval_recall(flat, [0, 1, 2], ks=(1, 2, 3)) == {
        "i2t_r1": 0.0,
        "i2t_r2": 0.0,
        "i2t_r3": 100.0,  # 2 wrong candidates ahead; K=3 covers them
        "t2i_r1": 0.0,
        "t2i_r2": 0.0,
        "t2i_r3": 100.0,
        "rsum": 200.0,
    }
    # ties between an image's own captions do not matter
    assert retrieval_recall(torch.tensor([[1.0, 1.0, 0.0]]), [0, 0, 0], ks=(1,))["i2t_r1"] == 100


def test_retrieval_k_larger_than_candidates_is_a_hit():
    scores = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # every pair ranked wrong
    result = retrieval_recall(scores, [0, 1], ks=(1, 2, 50))
    assert result["i2t_r1"] == result["t2i_r1"] == 0.0
    assert result["i2t_r2"] == result["t2i_r2"] == 100.0
    assert result["i2t_r50"] == result["t2i_r50"] == 100.0


def test_retrieval_matches_torchmetrics_hit_rate_without_ties():
    torch.manual_seed(0)
    n_images, n_texts = 20, 60
    scores = torch.randn(n_images, n_texts)
    gt = torch.arange(n_texts)[torch.randperm(n_texts)] % n_images
    is_gt = torch.zeros(n_images, n_texts, dtype=torch.bool)
    is_gt[gt, torch.arange(n_texts)] = True
    ks = (1, 3, 5, 10, 30)
    result = retrieval_recall(scores, gt.tolist(), ks=ks)
    for k in ks:
        i2t = [retrieval_hit_rate(scores[i], is_gt[i], top_k=k) for i in range(n_images)]
        t2i = [retrieval_hit_rate(scores[:, j], is_gt[:, j], top_k=k) for j in range(n_texts)]
        assert result[f"i2t_r{k}"] == pytest.approx(100 * torch.stack(i2t).mean().item())
        assert result[f"t2i_r{k}"] == pytest.approx(100 * torch.stack(t2i).mean().item())


def test_retrieval_on_a_coco_sized_test_set():
    torch.manual_seed(0)
    gt = torch.arange(5000) // 5
    scores = torch.randn(1000, 5000)
    scores[gt, torch.arange(5000)] += 10.0  # every pair clearly right
    assert retrieval_recall(scores, gt)["rsum"] == pytest.approx(600.0)


@pytest.mark.parametrize(
    ("scores", "gt", "ks", "message"),
    [
        (torch.ones(3), [0, 0, 0], (1,), r"2-D \[n_images, n_texts\] tensor; got \(3,\)"),
        ([[1.0]], [0], (1,), "2-D .* got list"),
        (torch.ones(2, 0), [], (1,), "scores is empty"),
        (torch.ones(2, 3), [0, 1], (1,), "text_to_image has 2 entries but scores has 3 texts"),
        (torch.ones(2, 2), [0, 2], (1,), "text 1 points to image 2, out of range for 2 images"),
        (torch.ones(2, 2), [-1, 1], (1,), "text 0 points to image -1, out of range"),
        (torch.ones(3, 2), [0, 2], (1,), "image 1 has no caption"),
        (torch.ones(2, 2), [0, 1], (0, 1), "positive integer"),
        (torch.tensor([[float("nan"), 0.0]]), [0, 0], (1,), "NaN"),
    ],
)
def test_retrieval_rejects_bad_input(scores, gt, ks, message):
    with pytest.raises(VecompError, match=message):
        retrieval_recall(scores, gt, ks=ks)


# A random ranking's expected recall, by hand. 2 images x 2 captions: a text finds its image
# first with probability 1/2, an image one of its 2 captions first among 4 with 1/2; at K >= 2
# both always hit: 50 + 100 + 100 (text -> image) + 50 + 100 + 100 (image -> text).
# 3 images with 1, 1 and 2 captions, K = 2: a text hits with 2/3; an image with one caption
# with 1 - C(3,2)/C(4,2) = 1/2, the one with two with 1 - C(2,2)/C(4,2) = 5/6.
@pytest.mark.parametrize(
    ("images", "ks", "expected"),
    [
        ([1, 1, 2, 2], (1, 5, 10), 500.0),
        ([1, 2, 3, 3], (1,), 100 * (1 / 3 + (1 / 4 + 1 / 4 + 1 / 2) / 3)),
        ([1, 2, 3, 3], (2,), 100 * (2 / 3 + (1 / 2 + 1 / 2 + 5 / 6) / 3)),
    ],
)
def test_a_random_rankings_rsum_is_computed_from_the_test_split(images, ks, expected):
    test = pd.DataFrame({"image_id": images, "text": [f"t{i}" for i in range(len(images))]})
    chance = random_ranking_rsum(test, ks)
    assert chance["chance"] == pytest.approx(expected, abs=0.005)
    assert chance["test_samples"] == len(images)
