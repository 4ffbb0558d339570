"""A dispatch mode that counts what would make the host wait for a GPU, checkable on the CPU."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class HostReads(TorchDispatchMode):
    """Records the aten calls that, on a GPU, make the host wait for the device: reading a value
    back (``item``, ``float``), data-dependent shapes (``nonzero``, boolean-mask indexing) and
    packing sequences by host-side lengths."""

    WAITING = {
        "aten::nonzero",
        "aten::masked_select",
        "aten::_pack_padded_sequence",
        "aten::unique_dim",
    }

    def __init__(self):
        super().__init__()
        self.reads, self.waits = 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name == "aten::_local_scalar_dense":
            self.reads += 1
        elif name in self.WAITING or (
            name == "aten::index" and any(i is not None and i.dtype == torch.bool for i in args[1])
        ):
            self.waits.append(name)
        return func(*args, **(kwargs or {}))
