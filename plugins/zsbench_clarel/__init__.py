"""CLAREL (Oreshkin et al., "Classification via retrieval loss for zero-shot learning") as plugins.

Encoders: ``feature-projection``, ``class-projection``, ``cnn-lstm``, ``timm-backbone``,
``hf-text``, ``auto-text``; losses: ``retrieval``, ``classifier``, ``clarel``; method: ``clarel``, which composes
an image encoder, a text encoder and a loss by their registered names. Their options are declared
in ``zsbench_clarel.options``; the models (torch, and timm or transformers for their encoders)
are imported only when a component is built.
"""

from __future__ import annotations

import zsbench
from zsbench_clarel import options


@zsbench.hookimpl
def register_encoders(register):
    for declared in options.ENCODERS:
        register(declared)


@zsbench.hookimpl
def register_losses(register):
    for declared in options.LOSSES:
        register(declared)


@zsbench.hookimpl
def register_methods(register):
    register(options.ClarelOptions)
