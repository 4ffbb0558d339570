"""The default text encoder: per-image sentences when the data has them, else class embeddings.

One spec can then run CLAREL on a data set with Reed-style descriptions (CUB, FLO with
``text_c10``) and on one with class embeddings only, each in its strongest available mode.
"""

from __future__ import annotations

import inspect
from typing import Any

from zsbench.interfaces import EncoderContext
from zsbench_clarel.encoders import build_class_projection
from zsbench_clarel.text_cnn_lstm import build_cnn_lstm


def build_auto_text(context: EncoderContext, **options: Any):
    """cnn-lstm on per-image sentences when the data has them, else class-projection.

    Options go to whichever is chosen; those it does not take (e.g. ``word_vectors`` on a data
    set without sentences) are dropped, so one spec serves both kinds of data set.
    """
    factory = build_cnn_lstm if context.training_texts else build_class_projection
    accepted = inspect.signature(factory).parameters
    return factory(context, **{k: v for k, v in options.items() if k in accepted})
