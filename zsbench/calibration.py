"""Vectorised calibration sweeps shared by every calibrator and method.

A calibrator changes only seen-class scores, monotonically, so within the seen (or unseen)
classes the best class never changes: the decision for parameter p is the best seen class if
``adjust(best_seen, p) > best_unseen``, else the best unseen class. A sweep over P parameters is
therefore one (P, n) comparison on whatever device the scores live on, not P argmaxes over
(n, K) matrices.
"""

from __future__ import annotations

import attrs
import torch

from zsbench.interfaces import Calibrator, Scores
from zsbench.metrics import harmonic_mean, per_class_accuracy_batched


@attrs.frozen
class SweepResult:
    """u, s, H for each parameter value (1-D tensors of equal length, on CPU)."""

    params: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor
    H: torch.Tensor

    def best(self) -> tuple[float, float, float, float]:
        """(param, u, s, H) maximising H; ties go to the parameter closest to the first."""
        i = int(torch.argmax(self.H))
        return float(self.params[i]), float(self.u[i]), float(self.s[i]), float(self.H[i])

    def as_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("params", "u", "s", "H")}


@attrs.frozen
class BestScores:
    """Best seen and best unseen score (higher-is-better) and class of each sample."""

    seen_value: torch.Tensor
    seen_class: torch.Tensor
    unseen_value: torch.Tensor
    unseen_class: torch.Tensor

    @classmethod
    def from_scores(cls, scores: torch.Tensor, seen_mask: torch.Tensor) -> BestScores:
        seen_mask = seen_mask.to(scores.device).bool()
        neg_inf = torch.finfo(scores.dtype).min
        seen_value, seen_class = scores.masked_fill(~seen_mask, neg_inf).max(dim=1)
        unseen_value, unseen_class = scores.masked_fill(seen_mask, neg_inf).max(dim=1)
        return cls(seen_value, seen_class, unseen_value, unseen_class)

    def predictions(self, calibrator: Calibrator | None, params: torch.Tensor) -> torch.Tensor:
        """(P, n) class predictions, one row per parameter."""
        seen = self.seen_value[None].expand(len(params), -1)
        if calibrator is not None:
            seen = calibrator.adjust_seen(self.seen_value, params.to(self.seen_value))
        take_seen = seen >= self.unseen_value[None]  # ties go to seen, as argmax over seen-first columns
        return torch.where(take_seen, self.seen_class[None], self.unseen_class[None])


def check_scores(scores: Scores, calibrator: Calibrator | None) -> torch.Tensor:
    """Higher-is-better values; refuse a calibrator that needs distances on other scores."""
    if calibrator is not None and calibrator.requires_distance and not scores.is_distance:
        from zsbench.errors import UserError

        raise UserError(
            f"calibrator {calibrator.name!r} rescales distances, but this method returns "
            "similarity scores; use an additive calibrator such as 'calibrated-stacking'"
        )
    return scores.higher_is_better().float()


def sweep(
    scores: Scores,
    labels: torch.Tensor,
    seen_mask: torch.Tensor,
    calibrator: Calibrator | None,
    params: torch.Tensor | None = None,
) -> SweepResult:
    """u, s, H of calibrated GZSL decisions for every parameter, as one vectorised operation.

    ``labels`` index the score columns; a sample is 'seen' when its label is a seen class.
    Without a calibrator, the single neutral decision (plain argmax) is evaluated.
    """
    values = check_scores(scores, calibrator)
    device = values.device
    labels = labels.to(device).long()
    seen_mask = seen_mask.to(device).bool()
    best = BestScores.from_scores(values, seen_mask)
    if params is None:
        margins = best.seen_value - best.unseen_value
        params = calibrator.grid(margins) if calibrator is not None else torch.zeros(1)
    params = params.double().cpu()  # reported exactly as given
    pred = best.predictions(calibrator, params.to(device=device, dtype=values.dtype))
    correct = pred == labels[None]
    sample_seen = seen_mask[labels]
    zeros = torch.zeros(len(params), dtype=torch.float64, device=device)
    u = per_class_accuracy_batched(labels[~sample_seen], correct[:, ~sample_seen]) if (~sample_seen).any() else zeros
    s = per_class_accuracy_batched(labels[sample_seen], correct[:, sample_seen]) if sample_seen.any() else zeros
    return SweepResult(params.cpu(), u.cpu(), s.cpu(), harmonic_mean(u, s).cpu())


def sweep_loop(
    scores: Scores,
    labels: torch.Tensor,
    seen_mask: torch.Tensor,
    calibrator: Calibrator,
    params: torch.Tensor,
) -> SweepResult:
    """The straightforward reference: adjust the full (n, K) matrix and argmax, one parameter
    at a time. Kept for tests and the performance benchmark that measures ``sweep`` against it."""
    from zsbench.metrics import gzsl_accuracy

    values = check_scores(scores, calibrator)
    seen_mask = seen_mask.to(values.device).bool()
    sample_seen = seen_mask[labels.to(values.device).long()]
    rows = []
    for p in params.tolist():
        adjusted = values.clone()
        param = torch.tensor([p], dtype=values.dtype, device=values.device)
        adjusted[:, seen_mask] = calibrator.adjust_seen(values[:, seen_mask], param)[0]
        rows.append(gzsl_accuracy(adjusted, labels, seen_mask, sample_seen))
    u, s, h = (torch.tensor(col, dtype=torch.float64) for col in zip(*rows))
    return SweepResult(params.cpu(), u, s, h)
