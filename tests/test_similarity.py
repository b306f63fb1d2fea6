"""Linear CKA, mutual k-NN alignment and effective rank against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from vecomp.analysis.similarity import effective_rank, linear_cka, mutual_knn


def test_cka_of_a_representation_with_itself_rotated_and_scaled_is_one():
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0)  # and shifted


def test_cka_of_orthogonal_signals_is_zero_and_of_a_hand_example_a_half():
    # centred columns: x = (1, -1, 0, 0) and y = (0, 0, 1, -1) share nothing
    x = torch.tensor([[1.0], [-1.0], [0.0], [0.0]])
    y = torch.tensor([[0.0], [0.0], [1.0], [-1.0]])
    assert linear_cka(x, y) == pytest.approx(0.0)
    # y2 = [x, y]: Y^T X = (2, 0), ||.||^2 = 4; ||X^T X|| = 2; Y^T Y = 2 I, ||.|| = 2 sqrt(2)
    assert linear_cka(x, torch.cat([x, y], 1)) == pytest.approx(4 / (2 * 2 * math.sqrt(2)))


def test_mutual_knn_counts_the_neighbours_both_spaces_agree_on():
    # four directions in the plane: 0 deg, 10 deg, 90 deg, 100 deg; nearest: 0<->1, 2<->3
    angles = torch.tensor([0.0, 10.0, 90.0, 100.0]) * math.pi / 180
    x = torch.stack([angles.cos(), angles.sin()], 1)
    assert mutual_knn(x, x, k=1) == 1.0
    # swapping 1 and 2 in y: y's nearest are 0<->2, 1<->3: no sample keeps its neighbour
    y = x[[0, 2, 1, 3]]
    assert mutual_knn(x, y, k=1) == 0.0
    # k = 2: x's neighbour sets {1,2} {0,2} {1,3} {1,2}, y's {1,2} {2,3} {0,1} {1,2}: they share
    # 2, 1, 1 and 2 of 2 -> 0.75
    assert mutual_knn(x, y, k=2) == pytest.approx(0.75)


def test_mutual_knn_and_cka_need_the_same_samples_and_a_valid_k():
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(x, x[:4])
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        mutual_knn(x, x, k=5)


def test_effective_rank_is_the_number_of_equally_used_directions():
    assert effective_rank(torch.eye(5)) == pytest.approx(5.0)
    assert effective_rank(torch.outer(torch.arange(1.0, 7.0), torch.ones(4))) == pytest.approx(1.0)
    # singular values 3 and 1: p = (3/4, 1/4), exp(-(3/4 ln 3/4 + 1/4 ln 1/4)) = 1.7548
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(1.75477, abs=1e-4)
    assert math.isnan(effective_rank(torch.zeros(3, 3)))
