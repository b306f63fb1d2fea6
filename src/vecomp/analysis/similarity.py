"""Cheap signals of complementarity, computed without training a fusion model on the pair.

- ``linear_cka`` (Kornblith et al. 2019, "Similarity of neural network representations
  revisited", eq. for linear CKA): with column-centred ``X [n, d1]`` and ``Y [n, d2]``,
  ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, 1 for representations equal up to rotation and
  isotropic scaling, near 0 for unrelated ones.
- ``mutual_knn`` (Huh et al. 2024, "The Platonic representation hypothesis"): the mean, over
  samples, of the share of a sample's ``k`` nearest neighbours (cosine, itself excluded) that
  both representations agree on.
- ``effective_rank`` (Roy & Vetterli 2007): ``exp`` of the entropy of the normalised singular
  values of a token matrix, uncentred as in RankMe (Garrido et al. 2023); between 1 (all
  tokens on one line) and the matrix's rank (every direction used equally).
"""

from __future__ import annotations

import torch


def _centred(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x - x.mean(0, keepdim=True)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same ``n`` samples (rows)."""
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same samples: {len(x)} vs {len(y)} rows")
    x, y = _centred(x), _centred(y)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norms = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norms) if norms > 0 else float("nan")


def _neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    """[n, k] indices of each row's ``k`` most cosine-similar other rows (ties: lower index)."""
    unit = torch.nn.functional.normalize(x.double(), dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(float("-inf"))
    return torch.topk(similarity, k, dim=1, sorted=True).indices


def mutual_knn(x: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """Mean share of each sample's ``k`` nearest neighbours found in both representations."""
    if len(x) != len(y):
        raise ValueError(f"mutual k-NN needs the same samples: {len(x)} vs {len(y)} rows")
    if not 0 < k < len(x):
        raise ValueError(f"k must be between 1 and {len(x) - 1} for {len(x)} samples, got {k}")
    a, b = _neighbours(x, k), _neighbours(y, k)
    shared = (a.unsqueeze(2) == b.unsqueeze(1)).any(2).sum(1)
    return float(shared.double().mean() / k)


def effective_rank(tokens: torch.Tensor) -> float:
    """Entropy-based effective rank of a ``[n, d]`` matrix (NaN for an all-zero matrix)."""
    singular = torch.linalg.svdvals(tokens.double())
    total = singular.sum()
    if total == 0:
        return float("nan")
    p = singular[singular > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))
