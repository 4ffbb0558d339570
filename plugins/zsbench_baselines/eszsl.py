"""ESZSL (Romera-Paredes & Torr, ICML 2015): a bilinear compatibility in closed form."""

from __future__ import annotations

import attrs
import torch

from zsbench.interfaces import FitData, RunContext
from zsbench_baselines import inputs
from zsbench_baselines.options import ESZSLOptions
from zsbench_baselines.scorer import Compatibility, HeadScorer


def eszsl_matrix(x: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """V = (X X^T + gamma I)^-1 X Y S^T (S S^T + lambda I)^-1 in the paper's notation (X: D x n,
    S: E x Z, Y in {-1, 1}^(n x Z)). With row-major x (n, D) and seen (Z, E), the push-through
    identity S^T (S S^T + lambda I_E)^-1 = (S^T S + lambda I_Z)^-1 S^T turns the E x E inverse into
    a Z x Z one. Solved in float64; returns V as (D, E).
    """
    y = -torch.ones(len(x), len(seen), dtype=torch.float64, device=x.device)
    y[torch.arange(len(x), device=x.device), labels] = 1.0
    xd, sd = x.double(), seen.double()
    gram_x = xd.T @ xd + gamma * torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
    gram_s = sd @ sd.T + lam * torch.eye(len(seen), dtype=torch.float64, device=x.device)
    left = torch.linalg.solve(gram_x, xd.T @ y)  # (D, Z)
    right = torch.linalg.solve(gram_s, sd)  # (Z, E)
    return (left @ right).to(x.dtype)


@attrs.frozen
class ESZSL(ESZSLOptions):
    """ESZSL (Romera-Paredes & Torr 2015): closed-form bilinear compatibility, ridge on both sides."""

    def fit(self, data: FitData, context: RunContext) -> HeadScorer:
        norm, x, y, classes = inputs.training_set(
            self.name, data, context.device, self.feature_norm, self.embedding_norm
        )
        v = eszsl_matrix(x, y, classes[: data.classes.num_seen], self.gamma, self.lam)
        return HeadScorer(self.name, norm, Compatibility(v @ classes.T), context.device)
