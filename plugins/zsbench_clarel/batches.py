"""Prepared encoder batches (a tensor, or a dict/tuple of tensors) moved, indexed and pooled alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    raise TypeError(f"an encoder's prepare() returned {type(batch).__name__}; expected tensors")


def take(batch: Any, index: torch.Tensor | slice) -> Any:
    """The rows ``index`` of every tensor in a prepared batch."""
    if isinstance(batch, torch.Tensor):
        return batch[index]
    if isinstance(batch, dict):
        return {k: take(v, index) for k, v in batch.items()}
    return type(batch)(take(v, index) for v in batch)


def batch_length(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return len(batch)
    return batch_length(next(iter(batch.values())) if isinstance(batch, dict) else batch[0])


def group_sums(
    values: torch.Tensor, groups: torch.Tensor, num_groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group float32 sums of ``values`` rows and the group sizes, as a one-hot matmul
    (deterministic on GPU, unlike scatter-add); chunked callers add them up, then divide."""
    one_hot = torch.nn.functional.one_hot(groups, num_groups).T.float()
    return one_hot @ values.float(), one_hot.sum(1)


def chunks(batch: Any, size: int) -> Iterator[tuple[slice, Any]]:
    """Consecutive row slices of a prepared batch, for encoding it piecewise."""
    n = batch_length(batch)
    for start in range(0, n, size):
        rows = slice(start, min(start + size, n))
        yield rows, take(batch, rows)
