"""Raw images -> frozen timm backbone -> pooled feature (cached on disk) -> dropout -> linear.

The backbone is frozen, as in the authors' setup, so each image's feature is computed once and
kept under the (shared) cache folder, keyed by the backbone, its weights (a hash of the weights file), the
preprocessing, and the image's path, size and modification time: a second run, or the refit on
trainval after validation, reads the features instead of recomputing them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import nn

from zsbench.encoders import default_workers, file_digest, image_batches, isolated_rng
from zsbench.errors import DataError, UserError
from zsbench.interfaces import EncoderContext
from zsbench.paths import cache_home
from zsbench_clarel.encoders import IMAGE_FILES, Projection
from zsbench_clarel.options import TimmBackboneOptions
from zsbench_clarel.precision import amp_dtype, autocast


class FeatureExtractor:
    """A frozen timm backbone with a per-image disk cache of its pooled features."""

    def __init__(
        self,
        model: str,
        weights_tag: str,
        backbone: nn.Module,
        cache_root: Path,
        device: torch.device,
        batch_size: int,
        num_workers: int,
        image_size: int | None,
        amp: bool,
    ):
        import timm.data

        config = timm.data.resolve_data_config({}, model=backbone)
        if image_size is not None:
            config["input_size"] = (3, image_size, image_size)
        self.transform = timm.data.create_transform(**config, is_training=False)
        self.input_size = tuple(config["input_size"])
        self.amp_dtype = amp_dtype(device, amp)
        # Features computed in another precision are other numbers: they get their own entries.
        precision = {} if self.amp_dtype is None else {"autocast": str(self.amp_dtype)}
        preprocessing = hashlib.sha1(
            json.dumps({**config, **precision}, sort_keys=True, default=str).encode()
        ).hexdigest()[:10]
        self.folder = cache_root / "timm-features" / f"{model}-{weights_tag[:16]}-{preprocessing}"
        self.identity = f"timm:{self.folder.name}"
        self.backbone = backbone.eval().to(device)
        self.device, self.batch_size, self.num_workers = device, batch_size, num_workers
        self.num_features = backbone.num_features
        self.last_hits = 0  # how many of the last call's images came from the cache

    def _entry(self, path: Path) -> Path:
        try:
            stat = path.stat()
        except OSError as exc:
            raise DataError(path, f"image file not found: {exc}") from exc
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def __call__(self, paths: Sequence[Path]) -> torch.Tensor:
        paths = [Path(p) for p in paths]
        entries = [self._entry(p) for p in paths]
        missing = [i for i, entry in enumerate(entries) if not entry.is_file()]
        self.last_hits = len(paths) - len(missing)
        if missing:
            self._extract([paths[i] for i in missing], [entries[i] for i in missing])
        return (
            torch.from_numpy(np.stack([np.load(entry) for entry in entries]))
            if entries
            else torch.empty(0, self.num_features)
        )

    @torch.no_grad()
    def _extract(self, paths: list[Path], entries: list[Path]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        batches = image_batches(paths, self.transform, self.input_size, self.batch_size,
                                self.num_workers, pin_memory=self.device.type == "cuda")
        done = 0
        for batch, images in batches:  # an unreadable image: the batches before stay cached
            with autocast(self.amp_dtype):
                features = self.backbone(images.to(self.device, non_blocking=True))
            features = features.float().cpu().numpy()
            for feature, entry in zip(features, entries[done : done + len(batch)], strict=True):
                partial = entry.with_suffix(".tmp.npy")
                np.save(partial, feature)
                partial.replace(entry)  # atomic: a killed run never leaves half a feature
            done += len(batch)


class TimmImageEncoder(nn.Module):
    modality = "image"
    input_kind = IMAGE_FILES

    def __init__(self, extractor: FeatureExtractor, embed_dim: int, dropout: float):
        super().__init__()
        self.extractor, self.embed_dim = extractor, embed_dim
        self.projection = Projection(extractor.num_features, embed_dim, dropout)

    @property
    def identity(self) -> str:
        return self.extractor.identity

    def prepare(self, items: Sequence[Path]) -> torch.Tensor:
        return self.extractor(items)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.projection(batch)


def _backbone(model: str, pretrained: bool, pretrained_path: str | None) -> tuple[nn.Module, str]:
    """The timm model without its classifier, and a tag naming its weights for the cache key."""
    import timm

    if not timm.is_model(model):
        raise UserError(f"timm has no model {model!r} (see timm.list_models())")
    if pretrained_path is not None:
        path = Path(pretrained_path).expanduser()
        if not path.is_file():
            raise DataError(path, "pretrained weights file not found")
        try:
            backbone = timm.create_model(
                model, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(path)}
            )
        except (RuntimeError, ValueError, KeyError) as exc:
            raise DataError(path, f"weights do not fit timm model {model!r}: {exc}") from exc
        return backbone, file_digest(path)
    if pretrained:
        try:
            backbone = timm.create_model(model, pretrained=True, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - any hub/network failure means "not available locally"
            raise UserError(
                f"pretrained weights for timm model {model!r} are not available locally "
                f"({type(exc).__name__}); pass pretrained_path: <weights file>"
            ) from exc
        source = (
            backbone.pretrained_cfg.get("hf_hub_id") or backbone.pretrained_cfg.get("url") or model
        )
        return backbone, hashlib.sha1(f"timm:{source}".encode()).hexdigest()
    backbone = timm.create_model(model, pretrained=False, num_classes=0)  # seed 0: isolated_rng
    return backbone, "random-init-seed0"


@attrs.frozen
class TimmBackbone(TimmBackboneOptions):
    def build(self, context: EncoderContext) -> TimmImageEncoder:
        """Raw images through a frozen timm backbone (cached pooled features) -> dropout -> linear.

        ``feature_cache`` defaults to the zsbench cache home, shared by every run, seed and method:
        entries are keyed by content, so sharing them is safe and saves the extraction. ``amp``
        runs the backbone under bf16 autocast on a GPU (as timm's own inference does).
        ``num_workers`` defaults to decoding in the main process on the CPU, where the cores are the
        backbone's, and to up to 8 loader processes on a GPU, which would otherwise wait for them.
        """
        num_workers = self.num_workers
        if num_workers is None:
            num_workers = default_workers(context.device)
        with isolated_rng():  # building draws initial weights: never from the run's generator
            backbone, weights_tag = _backbone(self.model, self.pretrained, self.pretrained_path)
        extractor = FeatureExtractor(
            self.model,
            weights_tag,
            backbone,
            Path(self.feature_cache).expanduser() if self.feature_cache else cache_home(),
            context.device,
            self.batch_size,
            num_workers,
            self.image_size,
            self.amp,
        )
        encoder = TimmImageEncoder(extractor, context.embed_dim, self.dropout)
        weights = (f"{Path(self.pretrained_path).name} sha256:{weights_tag[:12]}" if self.pretrained_path is not None
                   else "timm's pretrained weights" if self.pretrained else "random init, seed 0")
        encoder.feature_name = f"timm {self.model} ({weights})"  # the leaderboard's features column
        return encoder
