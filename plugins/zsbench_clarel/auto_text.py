"""The default text encoder: per-image sentences when the data has them, else class embeddings.

One spec can then run CLAREL on a data set with Reed-style descriptions (CUB, FLO with
``text_c10``) and on one with class embeddings only, each in its strongest available mode.
"""

from __future__ import annotations

from typing import Any

import attrs

from zsbench.interfaces import EncoderContext
from zsbench_clarel.encoders import build_class_projection
from zsbench_clarel.options import AutoTextOptions, ClassProjectionOptions, CnnLstmOptions
from zsbench_clarel.text_cnn_lstm import build_cnn_lstm


def build_auto_text(context: EncoderContext, **options: Any):
    """cnn-lstm on per-image sentences when the data has them, else class-projection.

    Every option must belong to one of the two (``AutoTextOptions``); the ones set go to
    whichever is chosen when it takes them (e.g. ``word_vectors`` is dropped on a data set
    without sentences), so one spec serves both kinds of data set.
    """
    chosen = {k: v for k, v in attrs.asdict(AutoTextOptions(**options), recurse=False).items() if v is not None}
    factory, declared = (
        (build_cnn_lstm, CnnLstmOptions) if context.training_texts else (build_class_projection, ClassProjectionOptions)
    )
    accepted = attrs.fields_dict(declared)
    return factory(context, **{k: v for k, v in chosen.items() if k in accepted})
