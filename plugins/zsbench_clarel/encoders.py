"""Vector encoders: a projection of precomputed vectors into the joint space.

``feature-projection`` is the authors' image branch (frozen CNN feature -> dropout -> linear).
``class-projection`` is the text branch for data sets that offer only class embeddings (FLO's
``att``): the class embedding plays the role of every image's text, so CLAREL still trains and
is compared with the class-level baselines on the same side information.

Every encoder here says which input it consumes (``input_kind``, one of the public
``zsbench.encoders.INPUT_KINDS``) so the method knows whether to hand it feature rows, image
files, sentences or class embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from zsbench.encoders import CLASS_EMBEDDINGS, FEATURES, IMAGE_FILES, TEXTS  # noqa: F401
from zsbench.errors import UserError
from zsbench.interfaces import EncoderContext
from zsbench_clarel.options import ClassProjectionOptions, FeatureProjectionOptions

_CONSTANT = 1e-6  # a deviation this small, relative to the mean (or 1), means a constant dimension


class Projection(nn.Sequential):
    """Dropout, optional ReLU hidden layers, then a linear map to the joint space (no final
    nonlinearity: the metric lives in the projected space)."""

    def __init__(self, input_dim: int, embed_dim: int, dropout: float, hidden: Sequence[int] = ()):
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = input_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, embed_dim))
        super().__init__(*layers)


class VectorProjection(nn.Module):
    """An encoder of fixed-width vectors; ``prepare`` only stacks them into a float tensor."""

    def __init__(
        self,
        modality: str,
        input_kind: str,
        input_dim: int,
        embed_dim: int,
        dropout: float,
        hidden: Sequence[int] = (),
        statistics: np.ndarray | None = None,
    ):
        super().__init__()
        self.modality, self.input_kind, self.embed_dim = modality, input_kind, embed_dim
        self.projection = Projection(input_dim, embed_dim, dropout, hidden)
        mean, scale = torch.zeros(input_dim), torch.ones(input_dim)
        if statistics is not None:
            rows = torch.as_tensor(np.asarray(statistics, dtype=np.float32))
            mean, std = rows.mean(0), rows.std(0, unbiased=False)
            # A dimension constant on the training side is centred, not scaled (as scikit-learn's
            # StandardScaler does): dividing by ~0 would put every class that differs there, i.e.
            # unseen ones, thousands of deviations away. With 7 seen CUB classes, 58 of the 312
            # attributes are constant, and CLAREL scored no unseen image at all.
            scale = torch.where(std > _CONSTANT * mean.abs().clamp_min(1.0), std, torch.ones_like(std))
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def prepare(self, items: Sequence[Any]) -> torch.Tensor:
        return torch.as_tensor(np.asarray(items, dtype=np.float32))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.projection((batch - self.mean) / self.scale)


def _statistics(context: EncoderContext, standardize: bool) -> np.ndarray | None:
    """Training-side rows to standardise with (never evaluation data), or None."""
    if not standardize:
        return None
    if context.training_vectors is None or len(context.training_vectors) < 2:
        raise UserError("standardize needs the training inputs' statistics, which the caller did not provide")
    return context.training_vectors


def _input_dim(context: EncoderContext, what: str) -> int:
    if context.input_dim is None:
        raise UserError(f"this encoder projects {what}, but the data set provides none")
    return context.input_dim


@attrs.frozen
class FeatureProjection(FeatureProjectionOptions):
    def build(self, context: EncoderContext) -> VectorProjection:
        """Image features (xlsa17 layout) -> dropout -> linear projection to the joint space.

        ``standardize`` first scales each feature by its training mean and deviation."""
        return VectorProjection(
            "image",
            FEATURES,
            _input_dim(context, "image features"),
            context.embed_dim,
            self.dropout,
            self.hidden or (),
            _statistics(context, self.standardize),
        )


@attrs.frozen
class ClassProjection(ClassProjectionOptions):
    def build(self, context: EncoderContext) -> VectorProjection:
        """Class embeddings -> linear or MLP projection: the text side when a data set has no per-image text.

        ``standardize`` (default) scales each dimension by its mean and deviation over the seen
        classes: class-averaged sentence embeddings differ in small offsets from a large shared
        component, which a linear map trained by SGD otherwise barely separates."""
        return VectorProjection(
            "text",
            CLASS_EMBEDDINGS,
            _input_dim(context, "class embeddings"),
            context.embed_dim,
            self.dropout,
            self.hidden or (),
            _statistics(context, self.standardize),
        )
