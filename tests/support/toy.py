"""Variants of the toy data set (toy_plugin) for tests of side information."""

from __future__ import annotations

import attrs
import numpy as np
from toy_plugin import toy_bundle


def captioned(prototype_captions: str = "unscored", **changes):
    """The toy bundle with two captions per image that name the image, and their 'embeddings'
    (one-hot of the image), so any caption can be traced back to the image it describes."""
    b = toy_bundle()
    n = len(b.labels)
    texts = tuple((f"image {i} a", f"image {i} b") for i in range(n))
    return attrs.evolve(b, texts=texts, caption_embeddings=np.eye(n, dtype=np.float32),
                        caption_encoder="one-hot", prototype_captions=prototype_captions, **changes)
