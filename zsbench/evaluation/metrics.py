"""Accuracy under the Xian et al. protocol: per-class mean top-1, u, s, H and ZSL top-1."""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def per_class_accuracy(y_true, y_pred) -> float:
    """Mean over the classes present in ``y_true`` of each class's top-1 accuracy.

    Classes that only appear in ``y_pred`` do not count; an empty ``y_true`` gives 0.
    """
    y_true, y_pred = _as_tensor(y_true).long().flatten(), _as_tensor(y_pred).long().flatten()
    if y_true.numel() != y_pred.numel():
        raise ValueError(f"y_true has {y_true.numel()} labels but y_pred has {y_pred.numel()}")
    if y_true.numel() == 0:
        return 0.0
    return float(per_class_accuracy_batched(y_true, (y_pred == y_true)[None])[0])


def per_class_accuracy_batched(y_true: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Per-class mean accuracy for P prediction sets at once: ``correct`` is (P, n) bool."""
    classes, inverse = torch.unique(y_true, return_inverse=True)
    counts = torch.bincount(inverse, minlength=len(classes)).to(torch.float64)
    hits = torch.zeros(correct.shape[0], len(classes), dtype=torch.float64, device=correct.device)
    hits.index_add_(1, inverse.to(correct.device), correct.to(torch.float64))
    return (hits / counts.to(correct.device)).mean(dim=1)


def harmonic_mean(u, s):
    """H = 2us / (u + s), 0 where both are 0; works on floats and tensors alike."""
    if isinstance(u, torch.Tensor) or isinstance(s, torch.Tensor):
        u, s = torch.as_tensor(u, dtype=torch.float64), torch.as_tensor(s, dtype=torch.float64)
        total = u + s
        return torch.where(total > 0, 2 * u * s / torch.where(total > 0, total, 1), 0.0)
    u, s = float(u), float(s)
    return 0.0 if u + s == 0 else 2 * u * s / (u + s)


def zsl_top1(scores: torch.Tensor, labels, unseen_mask: torch.Tensor) -> float:
    """ZSL top-1: per-class accuracy on the unseen-class samples, deciding among unseen classes only.

    ``scores`` is higher-is-better (n, K) over all classes; ``labels`` index its columns.
    """
    labels = _as_tensor(labels).long().to(scores.device)
    unseen_mask = unseen_mask.to(scores.device).bool()
    rows = unseen_mask[labels]
    if not rows.any():
        return 0.0
    unseen_cols = torch.nonzero(unseen_mask).flatten()
    pred = unseen_cols[scores[rows][:, unseen_cols].argmax(dim=1)]
    return per_class_accuracy(labels[rows].cpu(), pred.cpu())


def gzsl_accuracy(scores: torch.Tensor, labels, seen_mask: torch.Tensor, sample_seen) -> tuple[float, float, float]:
    """u, s, H of argmax decisions over all classes (higher-is-better scores)."""
    labels = _as_tensor(labels).long().cpu()
    sample_seen = _as_tensor(sample_seen).bool().cpu()
    pred = scores.argmax(dim=1).cpu()
    u = per_class_accuracy(labels[~sample_seen], pred[~sample_seen]) if (~sample_seen).any() else 0.0
    s = per_class_accuracy(labels[sample_seen], pred[sample_seen]) if sample_seen.any() else 0.0
    return u, s, harmonic_mean(u, s)
