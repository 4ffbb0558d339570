"""Class-embedding preparation shared by the compatibility baselines."""

from __future__ import annotations

import torch


def prepare_embeddings(embeddings: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-class L2 normalisation (no statistics, so unseen classes are treated like seen ones)."""
    return torch.nn.functional.normalize(embeddings, dim=1) if norm == "l2" else embeddings


def span_basis(embeddings: torch.Tensor) -> torch.Tensor:
    """An orthonormal (E, r) basis of the row space of ``embeddings`` (r <= number of rows).

    A linear map applied to class embeddings only acts on this span, so methods can work on the
    r coordinates instead of all E dimensions without changing what they can express.
    """
    u, s, vh = torch.linalg.svd(embeddings.double(), full_matrices=False)
    rank = int((s > s.max() * max(embeddings.shape) * torch.finfo(torch.float32).eps).sum())
    return vh[:rank].T.to(embeddings.dtype)
