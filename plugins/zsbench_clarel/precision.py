"""Mixed precision on a GPU: which float type autocast uses, and the context that applies it."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 on a GPU that has it (no loss scaling needed), fp16 on an older one; None (float32
    throughout) on the CPU, where autocast would only slow small models down, or when disabled."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(dtype: torch.dtype | None) -> Any:
    return nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)
