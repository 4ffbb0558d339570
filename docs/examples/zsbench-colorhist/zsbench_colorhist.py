"""``color-histogram``: a joint RGB histogram of each image, as a zsbench image backbone.

Used as ``backbone: {name: color-histogram, bins: 4}`` on a dataset entry, it gives every
method a (bins ** 3)-d feature per image; as CLAREL's ``image_encoder`` it adds a linear map.
Only zsbench's public API is used: the encoder toolkit decodes in worker processes, names an
unreadable image, caches features per image under the encoder's identity, and shows a progress
bar that ``--quiet`` silences.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import torch

import zsbench
from zsbench.encoders import IMAGE_FILES, image_batches
from zsbench.interfaces import EncoderContext


@attrs.frozen
class Histogram:
    """PIL image -> normalised joint RGB histogram (picklable, for loader worker processes)."""

    bins: int
    side: int  # images are first resized to side x side (bilinear), so each counts alike

    def __call__(self, image) -> torch.Tensor:
        pixels = np.asarray(image.resize((self.side, self.side)), dtype=np.int64) * self.bins // 256
        codes = (pixels[..., 0] * self.bins + pixels[..., 1]) * self.bins + pixels[..., 2]
        counts = np.bincount(codes.ravel(), minlength=self.bins**3).astype(np.float32)
        return torch.from_numpy(counts / counts.sum())


@zsbench.component("encoder", "color-histogram", build="zsbench_colorhist:ColorHistogram")
@attrs.frozen
class ColorHistogramOptions:
    """Joint RGB colour histogram of each image (bins per channel), a frozen image backbone."""

    bins: int = zsbench.option(8, zsbench.integer(2), zsbench.le(32), doc="bins per channel")
    side: int = zsbench.option(64, zsbench.integer(1), doc="images are resized to side x side first")
    num_workers: int = zsbench.option(0, zsbench.integer(0), doc="image-decoding worker processes")


@attrs.frozen
class ColorHistogram(ColorHistogramOptions):  # the options (and their defaults) are inherited
    def build(self, context: EncoderContext) -> HistogramEncoder:
        return HistogramEncoder(context, self.bins, self.side, self.num_workers)


class HistogramEncoder(torch.nn.Module):
    modality = "image"
    input_kind = IMAGE_FILES  # prepare() receives image paths

    def __init__(self, context: EncoderContext, bins: int, side: int, num_workers: int):
        super().__init__()
        self.context, self.embed_dim, self.num_workers = context, context.embed_dim, num_workers
        self.transform = Histogram(bins, side)
        # Everything that determines the features: the cache (and zsbench's) key on it.
        self.identity = f"zsbench-colorhist 0.1.0|bins={bins}|side={side}"
        self.feature_name = f"color-histogram ({bins}^3 bins)"  # the leaderboard's features column
        self.cache = context.feature_cache(self.identity)
        self.projection = torch.nn.Linear(bins**3, context.embed_dim)

    def prepare(self, items: Sequence[Path]) -> torch.Tensor:
        paths = [Path(p) for p in items]
        todo = [paths[i] for i in self.cache.missing(paths)]
        # Decoded in worker processes; an unreadable image raises an error naming it.
        batches = image_batches(todo, self.transform, (self.transform.bins**3,), 64, self.num_workers)
        with self.context.bar(len(todo), "color histograms", unit="img") as bar:
            for batch, features in batches:
                self.cache.put(batch, features.numpy())
                bar.update(len(batch))
        return torch.from_numpy(self.cache.get(paths)) if paths else torch.empty(0, self.transform.bins**3)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.projection(batch)


@zsbench.hookimpl
def register_encoders(register):
    register(ColorHistogramOptions)
