"""The default text encoder: per-image sentences when the data has them, else class embeddings.

One spec can then run CLAREL on a data set with Reed-style descriptions (CUB, FLO with
``text_c10``) and on one with class embeddings only, each in its strongest available mode.
"""

from __future__ import annotations

import attrs
from torch import nn

from zsbench.interfaces import EncoderContext
from zsbench_clarel.encoders import ClassProjection
from zsbench_clarel.options import AutoTextOptions
from zsbench_clarel.text_cnn_lstm import CnnLstm


@attrs.frozen
class AutoText(AutoTextOptions):
    """cnn-lstm on per-image sentences when the data has them, else class-projection.

    Every option must belong to one of the two (``AutoTextOptions``); the ones set go to
    whichever is chosen when it takes them (e.g. ``word_vectors`` is dropped on a data set
    without sentences), so one spec serves both kinds of data set.
    """

    def build(self, context: EncoderContext) -> nn.Module:
        chosen = {k: v for k, v in attrs.asdict(self, recurse=False).items() if v is not None}
        encoder = CnnLstm if context.training_texts else ClassProjection
        accepted = attrs.fields_dict(encoder)
        return encoder(**{k: v for k, v in chosen.items() if k in accepted}).build(context)
