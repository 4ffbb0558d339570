"""CLAREL (Oreshkin et al., "Classification via retrieval loss for zero-shot learning") as plugins.

Encoders: ``feature-projection``, ``class-projection``, ``cnn-lstm``, ``timm-backbone``,
``hf-text``, ``auto-text``; losses: ``retrieval``, ``classifier``, ``clarel``; method: ``clarel``, which composes
an image encoder, a text encoder and a loss by their registered names. Heavy optional libraries
(timm, transformers) are imported only when their encoder is built.
"""

from __future__ import annotations

import zsbench
from zsbench_clarel.auto_text import build_auto_text
from zsbench_clarel.encoders import build_class_projection, build_feature_projection
from zsbench_clarel.hf_text import build_hf_text
from zsbench_clarel.losses import build_clarel_loss, build_classifier, build_retrieval
from zsbench_clarel.method import build_clarel
from zsbench_clarel.text_cnn_lstm import build_cnn_lstm
from zsbench_clarel.timm_image import build_timm_backbone


@zsbench.hookimpl
def register_encoders(register):
    register("feature-projection", build_feature_projection)
    register("class-projection", build_class_projection)
    register("cnn-lstm", build_cnn_lstm)
    register("timm-backbone", build_timm_backbone)
    register("hf-text", build_hf_text)
    register("auto-text", build_auto_text)


@zsbench.hookimpl
def register_losses(register):
    register("retrieval", build_retrieval)
    register("classifier", build_classifier)
    register("clarel", build_clarel_loss)


@zsbench.hookimpl
def register_methods(register):
    register("clarel", build_clarel)
