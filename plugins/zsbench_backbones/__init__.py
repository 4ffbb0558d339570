"""Built-in image backbones: EfficientNet-Lite0/1/2 with offline ImageNet weights.

Each is an image encoder (``input_kind`` ``image_files``) usable as a dataset ``backbone`` (the
features every method runs on) or as CLAREL's ``image_encoder``. The model packages are
imported only when features are extracted.
"""

from __future__ import annotations

import zsbench
from zsbench_backbones.options import LITE_OPTIONS


@zsbench.hookimpl
def register_encoders(register):
    for options in LITE_OPTIONS.values():
        register(options)
