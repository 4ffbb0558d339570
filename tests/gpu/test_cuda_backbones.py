"""The built-in backbones' GPU path (skipped without CUDA; scripts/device-check.sh runs it):
channels-last float32 gives the CPU's features, bf16 autocast stays close and is cached apart,
and decoding in worker processes feeds the device."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import zsbench
from zsbench.registry import Registry

pytest.importorskip("efficientnet_lite_pytorch")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available() and not os.environ.get("ZSBENCH_REQUIRE_CUDA"),
                       reason="no CUDA device"),
]


def _images(folder, count=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"image_{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (300, 260 + 10 * i, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _encoder(device, cache, **options):
    context = zsbench.EncoderContext("image", 8, device=torch.device(device), feature_cache_root=cache)
    return Registry.from_entry_points().build("encoder", "efficientnet-lite0", context, **options)


def test_lite0_on_the_gpu_matches_the_cpu_and_bf16_is_cached_apart(tmp_path):
    paths = _images(tmp_path / "jpg")
    cpu = _encoder("cpu", tmp_path / "cpu").prepare(paths)
    gpu32 = _encoder("cuda", tmp_path / "gpu", precision="float32", num_workers=2)
    full = gpu32.prepare(paths)
    assert gpu32.backbone()._conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(full, cpu, rtol=1e-3, atol=1e-3)
    auto = _encoder("cuda", tmp_path / "gpu")  # auto: bf16 where the GPU has it
    if torch.cuda.is_bf16_supported():
        assert auto.identity != gpu32.identity and auto.cache.folder != gpu32.cache.folder
        assert auto.cache.missing(paths) == list(range(len(paths)))
        cosine = torch.nn.functional.cosine_similarity(auto.prepare(paths), cpu, dim=1)
        assert (cosine > 0.99).all(), cosine
