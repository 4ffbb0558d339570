"""The EfficientNet-Lite backbones' options, declared once (no torch here); the encoders are in
``zsbench_backbones.efficientnet_lite`` and imported only when features are extracted."""

from __future__ import annotations

import attrs

import zsbench
from zsbench import between, integer, one_of, option, optional

NATIVE = {"lite0": (256, 224), "lite1": (274, 240), "lite2": (297, 260)}  # (resize, crop)


def _options_class(variant: str) -> type:
    """One variant's options: its defaults are the variant's native sizes."""
    resize, crop = NATIVE[variant]

    def check_sizes(self) -> None:
        if not 0 < self.crop <= self.resize:
            raise zsbench.OptionError(
                f"efficientnet-{variant}: need 0 < crop <= resize, got crop {self.crop}, resize {self.resize}")

    cls = attrs.make_class(
        f"Lite{variant[-1]}Options",
        {
            "resize": option(resize, integer(1), doc="the short side is resized to this (long side rounded)"),
            "crop": option(crop, integer(1), doc="centre crop size (offsets floored)"),
            "batch_size": option(32, integer(1), doc="images per batch"),
            "num_workers": option(None, optional(integer(0)),
                                  doc="decoding processes; null: the main process on a CPU, up to 8 on a GPU"),
            "precision": option("auto", one_of("auto", "float32", "bfloat16"),
                                doc="`auto`: bfloat16 autocast on a GPU with bf16, float32 elsewhere"),
            "dropout": option(0.25, between(0.0, 1.0, high_open=True), doc="dropout before CLAREL's projection"),
        },
        frozen=True,
        class_body={"__attrs_post_init__": check_sizes, "__module__": __name__, "__doc__": (
            f"EfficientNet-{variant.capitalize()} ImageNet features (offline weights), frozen: short side "
            f"{resize}, centre crop {crop}, ImageNet mean/std, global average pool.")},
    )
    return zsbench.component("encoder", f"efficientnet-{variant}",
                             build=f"zsbench_backbones.efficientnet_lite:build_{variant}")(cls)


LITE_OPTIONS = {variant: _options_class(variant) for variant in NATIVE}
