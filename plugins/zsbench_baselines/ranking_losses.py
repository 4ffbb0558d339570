"""The ranking losses of the linear-compatibility baselines, per sample, from one hinge matrix.

With scores F (B, Z) over seen classes and true class y_n, the violations are
h[n, k] = max(0, margin + F[n, k] - F[n, y_n]) for k != y_n (0 at k = y_n). Then

- DeViSE (Frome et al. 2013): sum_k h[n, k], a pairwise hinge against every class;
- SJE (Akata et al. 2015): max_k h[n, k], the structured SVM loss (only the worst violator);
- ALE (Akata et al. 2016): beta(r_n) / r_n * sum_k h[n, k], where r_n is the number of violating
  classes and beta(r) = 1 + 1/2 + ... + 1/r (the WARP rank weighting), 0 when nothing violates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

RankingLoss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def violations(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """(B, Z) margin violations against the true class, zero in the true class's column."""
    true = scores.gather(1, labels[:, None])
    hinge = torch.relu(margin + scores - true)
    return hinge.scatter(1, labels[:, None], 0.0)


def devise_loss(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    return violations(scores, labels, margin).sum(1)


def sje_loss(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    return violations(scores, labels, margin).max(1).values


def ale_loss(scores: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    hinge = violations(scores, labels, margin)
    rank = (hinge > 0).sum(1)
    ranks = torch.arange(1, scores.shape[1] + 1, device=scores.device, dtype=scores.dtype)
    harmonic = torch.cat([scores.new_zeros(1), (1.0 / ranks).cumsum(0)])  # beta(0) = 0, beta(r)
    weight = harmonic[rank] / rank.clamp(min=1)
    return weight * hinge.sum(1)
