"""Vectorised calibration sweeps shared by every calibrator and method.

A calibrator changes only seen-class scores, monotonically, so within the seen (or unseen)
classes the best class never changes: the decision for parameter p is the best seen class if
``adjust(best_seen, p) > best_unseen``, else the best unseen class. A sweep over P parameters is
therefore one (P, n) comparison on whatever device the scores live on, not P argmaxes over
(n, K) matrices.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch

from zsbench.evaluation.metrics import harmonic_mean, per_class_accuracy_batched
from zsbench.interfaces import Calibrator, Scores
from zsbench.store.rows import pack_bits


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
    from zsbench.evaluation.metrics import gzsl_accuracy

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


# --------------------------------------------------------------------------- exact test-only metrics
# AUSUC and the oracle H are computed in the runner's test stage from the test scores and are
# reported only: nothing is ever chosen with them.


@attrs.frozen
class OperatingPoints:
    """Every distinct (u, s) a calibrator can reach, as its parameter goes from +inf to -inf.

    ``params[k]`` is a parameter giving point k (the largest one; +inf for the all-unseen start).
    """

    params: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor

    @property
    def H(self) -> torch.Tensor:
        return harmonic_mean(self.u, self.s)

    def area(self) -> float:
        """Area under u as a function of s (trapezoids between consecutive points)."""
        return float(torch.trapezoid(self.u, self.s)) if len(self.s) > 1 else 0.0


def operating_points(best: BestScores, labels: torch.Tensor, seen_mask: torch.Tensor, switch: torch.Tensor) -> OperatingPoints:
    """All operating points of a sweep, exactly, from one sort: sample i is predicted seen for
    every parameter at or below ``switch[i]`` (its breakpoint) and unseen above it, so between
    consecutive distinct breakpoints no prediction changes. Each seen sample whose best seen
    class is right adds 1 / (its class's size x number of seen classes) to s once it turns seen;
    each unseen sample whose best unseen class is right takes its share of u away."""
    labels = labels.to(switch.device).long()
    seen_mask = seen_mask.to(switch.device).bool()
    sample_seen = seen_mask[labels]
    counts = torch.bincount(labels, minlength=len(seen_mask)).double()
    n_seen_classes = int((counts[seen_mask] > 0).sum())
    n_unseen_classes = int((counts[~seen_mask] > 0).sum())
    share = 1.0 / counts[labels]
    gain_s = torch.where(sample_seen & (best.seen_class == labels), share / max(n_seen_classes, 1), 0.0)
    loss_u = torch.where(~sample_seen & (best.unseen_class == labels), share / max(n_unseen_classes, 1), 0.0)
    switch = switch.double()
    order = torch.argsort(switch, descending=True, stable=True)
    ordered = switch[order]
    s = torch.cumsum(gain_s[order], 0)
    u = loss_u.sum() - torch.cumsum(loss_u[order], 0)
    last = torch.ones(len(ordered), dtype=torch.bool, device=switch.device)  # last sample of each breakpoint
    last[:-1] = ordered[1:] != ordered[:-1]
    params, s, u = ordered[last], s[last], u[last]
    inf = torch.full((1,), float("inf"), dtype=torch.float64, device=switch.device)  # the all-unseen start
    params, s, u = torch.cat([inf, params]), torch.cat([s.new_zeros(1), s]), torch.cat([loss_u.sum()[None], u])
    return OperatingPoints(params.cpu(), u.clamp(min=0).cpu(), s.cpu())


def ausuc(scores: Scores, labels: torch.Tensor, seen_mask: torch.Tensor) -> float:
    """Area under the seen-unseen accuracy curve (Chao et al., ECCV 2016), exactly: calibrated
    stacking (seen scores minus gamma) over every gamma, whose breakpoints are the per-sample
    margins best seen minus best unseen score. It needs no calibration parameter, so it is the
    same for every calibrator of one scorer."""
    values = scores.higher_is_better().float()
    best = BestScores.from_scores(values, seen_mask)
    return operating_points(best, labels, seen_mask, best.seen_value - best.unseen_value).area()


def oracle_h(scores: Scores, labels: torch.Tensor, seen_mask: torch.Tensor, calibrator: Calibrator | None) -> float | None:
    """The best H over every value of the calibrator's parameter, on these (test) scores: an
    oracle no method may use for selection, shown so readers see how far the validated choice
    is from it. Needs the calibrator's ``switch_points(seen_value, unseen_value)`` (the parameter
    at and below which a sample is predicted seen); None without a calibrator or that method."""
    switch_points = getattr(calibrator, "switch_points", None)
    if switch_points is None:
        return None
    best = BestScores.from_scores(check_scores(scores, calibrator), seen_mask)
    return float(operating_points(best, labels, seen_mask, switch_points(best.seen_value, best.unseen_value)).H.max())


def per_image(scores: Scores, labels: torch.Tensor, seen_mask: torch.Tensor, calibrator: Calibrator | None,
              param: float | None) -> dict[str, dict[str, Any]]:
    """The correctness of every test prediction at the row's calibration parameter (``param``;
    None without a calibrator), grouped by test class as ``zsbench.store.rows`` stores it: so that a
    paired, class-stratified bootstrap over test images can be computed from rows alone. The
    decisions are ``sweep``'s, so the bits give the row's u and s."""
    values = check_scores(scores, calibrator)
    labels = labels.to(values.device).long()
    seen_mask = seen_mask.to(values.device).bool()
    params = torch.tensor([0.0 if param is None else param], dtype=torch.float64)
    pred = BestScores.from_scores(values, seen_mask).predictions(
        calibrator if param is not None else None, params.to(device=values.device, dtype=values.dtype))[0]
    correct = (pred == labels).cpu().numpy()
    labels_np = labels.cpu().numpy()
    sample_seen = seen_mask.cpu().numpy()[labels_np]
    out = {}
    for name, members in (("unseen", ~sample_seen), ("seen", sample_seen)):
        group_labels, group_correct = labels_np[members], correct[members]
        order = np.argsort(group_labels, kind="stable")  # by class, bundle order within a class
        classes, sizes = np.unique(group_labels, return_counts=True)
        out[name] = {"classes": classes.tolist(), "sizes": sizes.tolist(),
                     "bits": pack_bits(group_correct[order])}
    return out
