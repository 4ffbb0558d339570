"""zsbench-ridge: a complete, minimal third-party zsbench plugin.

It registers one method, ``ridge-embedding``: ridge regression from image features to class
embeddings, fitted on the training view only; an image's score for a class is the cosine
similarity between the embedding predicted for the image and the class embedding.

This module is what zsbench imports to list and validate: it declares the options and names the
implementation (``zsbench_ridge_model``, which needs torch) without importing it.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

import zsbench


@zsbench.component("method", "ridge-embedding", build="zsbench_ridge_model:RidgeEmbedding")
@attrs.frozen
class RidgeOptions:
    """Ridge regression from image features to class embeddings; cosine-similarity scores."""

    ridge: float = zsbench.option(1.0, zsbench.gt(0), doc="ridge strength on the feature side")

    # Searched on the validation split when a spec gives no grid of its own.
    default_grid: ClassVar[dict[str, list]] = {"ridge": [0.1, 1.0, 10.0, 100.0]}


@zsbench.hookimpl
def register_methods(register):
    register(RidgeOptions)
