"""The EfficientNet-Lite backbones' options, declared once (no torch here); the encoders are in
``zsbench_backbones.efficientnet_lite`` and imported only when features are extracted. The
variants differ only in their native input sizes."""

from __future__ import annotations

import attrs

import zsbench
from zsbench import between, integer, one_of, option, optional

NATIVE = {"lite0": (256, 224), "lite1": (274, 240), "lite2": (297, 260)}  # (resize, crop)
RESIZE_DOC = "the short side is resized to this (long side rounded)"
CROP_DOC = "centre crop size (offsets floored; at most `resize`)"


@zsbench.component("encoder", "efficientnet-lite0", build="zsbench_backbones.efficientnet_lite:Lite0")
@attrs.frozen
class Lite0Options:
    """EfficientNet-Lite0 ImageNet features (offline weights), frozen: short side 256, centre crop
    224, ImageNet mean/std, global average pool."""

    resize: int = option(NATIVE["lite0"][0], integer(1), doc=RESIZE_DOC)
    crop: int = option(NATIVE["lite0"][1], integer(1), doc=CROP_DOC)
    batch_size: int = option(32, integer(1), doc="images per forward pass")
    num_workers: int | None = option(None, optional(integer(0)),
                                     doc="decoding processes; null: the main process on a CPU, up to 8 on a GPU")
    precision: str = option("auto", one_of("auto", "float32", "bfloat16"),
                            doc="`auto`: bfloat16 autocast on a GPU with bf16, float32 elsewhere; "
                                "each precision's features are cached apart")
    dropout: float = option(0.25, between(0.0, 1.0, high_open=True),
                            doc="dropout on the features when trained as CLAREL's image encoder")

    def __attrs_post_init__(self) -> None:
        if not self.crop <= self.resize:
            raise zsbench.OptionError(f"need crop <= resize, got crop {self.crop}, resize {self.resize}")


@zsbench.component("encoder", "efficientnet-lite1", build="zsbench_backbones.efficientnet_lite:Lite1")
@attrs.frozen
class Lite1Options(Lite0Options):
    """EfficientNet-Lite1 ImageNet features (offline weights), frozen: short side 274, centre crop
    240, ImageNet mean/std, global average pool."""

    resize: int = option(NATIVE["lite1"][0], integer(1), doc=RESIZE_DOC)
    crop: int = option(NATIVE["lite1"][1], integer(1), doc=CROP_DOC)


@zsbench.component("encoder", "efficientnet-lite2", build="zsbench_backbones.efficientnet_lite:Lite2")
@attrs.frozen
class Lite2Options(Lite0Options):
    """EfficientNet-Lite2 ImageNet features (offline weights), frozen: short side 297, centre crop
    260, ImageNet mean/std, global average pool."""

    resize: int = option(NATIVE["lite2"][0], integer(1), doc=RESIZE_DOC)
    crop: int = option(NATIVE["lite2"][1], integer(1), doc=CROP_DOC)


LITE_OPTIONS = {"lite0": Lite0Options, "lite1": Lite1Options, "lite2": Lite2Options}
