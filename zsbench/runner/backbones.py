"""The backbone stage: raw images -> frozen image encoder -> a feature matrix every method uses.

A dataset entry of a spec may name ``backbone: {name: <image encoder plugin>, ...options}``.
The encoder must consume image files (``input_kind`` ``image_files``) and return one feature
row per image from ``prepare``. The matrix is extracted once per (image files, encoder
identity: backbone, weights, preprocessing, precision) and kept in the per-instance Arrow cache
(``zsbench.data.cache``), so a second run memory-maps it instead of decoding any image; the
bundle then carries it as ``features``, exactly like a features file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import torch

from zsbench.data import cache
from zsbench.encoders import IMAGE_FILES, isolated_rng
from zsbench.errors import UserError
from zsbench.interfaces import DatasetBundle, EncoderContext
from zsbench.registry import Registry


def backbone_name(backbone: dict[str, Any]) -> str:
    return str(backbone.get("name"))


def build_backbone(backbone: dict[str, Any], registry: Registry, device: torch.device,
                   show_progress: bool = True):
    """The encoder a ``backbone:`` mapping names, built without touching the global RNG."""
    options = dict(backbone)
    name = options.pop("name", None)
    entry = registry.get("encoder", name)
    context = EncoderContext("image", embed_dim=1, device=device, show_progress=show_progress)
    with isolated_rng():
        encoder = entry.build(context, **options)
    kind = getattr(encoder, "input_kind", None)
    if kind != IMAGE_FILES:
        raise UserError(
            f"backbone {name!r}: a backbone must be an image encoder taking image files "
            f"(input_kind = 'image_files'), but this one takes {kind or 'an unspecified input'}"
        )
    return encoder


def identity(encoder: Any, backbone: dict[str, Any], registry: Registry, device: torch.device) -> str:
    """What determines the features: the encoder's own ``identity``, or, for an encoder that does
    not declare one, its plugin name, version, options and the device type."""
    own = getattr(encoder, "identity", None)
    if isinstance(own, str) and own:
        return own
    entry = registry.get("encoder", backbone_name(backbone))
    return f"{entry.plugin} {entry.distribution} {entry.version}|{sorted(backbone.items())!r}|{device.type}"


def extract(encoder: Any, files, name: str) -> np.ndarray:
    """(N, D) float32 features of ``files`` in their order."""
    with isolated_rng(), torch.no_grad():
        features = encoder.prepare(list(files))
    features = torch.as_tensor(features).detach().float().cpu().numpy()
    if features.ndim != 2 or len(features) != len(files):
        raise UserError(f"backbone {name!r} returned features of shape {features.shape} for "
                        f"{len(files)} images; expected (images, feature width)")
    return np.ascontiguousarray(features, dtype=np.float32)


def feature_name(encoder: Any, backbone: dict[str, Any]) -> str:
    """What the leaderboard's features column says: the backbone and its weights."""
    return str(getattr(encoder, "feature_name", None) or backbone_name(backbone))


def attach_backbone(bundle: DatasetBundle, backbone: dict[str, Any], registry: Registry,
                    device: torch.device, show_progress: bool = True,
                    on_extracted: Callable[[int, float], None] | None = None) -> DatasetBundle:
    """``bundle`` with ``features`` extracted from its images by ``backbone`` (cached).

    ``on_extracted(images, seconds)`` is called only when images were actually encoded, so a
    rate computed from it never counts features read back from the cache."""
    name = backbone_name(backbone)
    if bundle.image_files is None:
        raise UserError(
            f"dataset {bundle.name!r}: backbone {name!r} needs the raw images, but the data set "
            f"gave none ({bundle.source}); for FLO the folder must hold jpg/image_00001.jpg ..., "
            "imagelabels.mat, setid.mat and the split file (see docs/backbones.md)"
        )
    encoder = build_backbone(backbone, registry, device, show_progress)
    key = cache.source_key(bundle.image_files, backbone=identity(encoder, backbone, registry, device))

    def build() -> dict[str, Any]:
        start = time.perf_counter()
        computed = extract(encoder, bundle.image_files, name)
        if on_extracted is not None:
            on_extracted(len(computed), time.perf_counter() - start)
        return {"features": cache.matrix_column(computed)}

    table = cache.cached_table(key, build)
    features = cache.read_matrix(table, "features")
    if len(features) != len(bundle.labels):
        raise UserError(f"backbone {name!r}: {len(features)} feature rows for {len(bundle.labels)} images")
    return attrs.evolve(bundle, features=features, feature_name=feature_name(encoder, backbone),
                        source=f"{bundle.source}; features: backbone {name}")
