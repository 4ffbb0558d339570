"""The CLAREL metric: Euclidean distance in the joint space, for training and for scoring alike."""

from __future__ import annotations

import torch


def euclidean_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) float32 distances between the rows of ``a`` (n, D) and ``b`` (m, D).

    Computed from differences rather than the ``|a|^2 + |b|^2 - 2ab`` expansion, which loses
    near neighbours to cancellation (and is hopeless under bf16 autocast); its gradient is
    finite, zero, where two rows coincide.
    """
    return torch.cdist(a.float(), b.float(), compute_mode="donot_use_mm_for_euclid_dist")
