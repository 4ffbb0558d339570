"""The raw-image path: a timm backbone on real FLO images, with its on-disk feature cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from shared_data import SHARED_DATA

import zsbench
from zsbench.interfaces import EncoderContext

pytest.importorskip("timm")
from zsbench_clarel.timm_image import TimmBackbone  # noqa: E402

IMAGES = SHARED_DATA / "flo" / "images_sample" / "jpg"


@pytest.fixture
def images(tmp_path) -> list[Path]:
    if not IMAGES.is_dir():
        pytest.skip("../shared/data/flo/images_sample is absent")
    folder = tmp_path / "jpg"
    folder.mkdir()
    for source in sorted(IMAGES.glob("*.jpg"))[:4]:
        shutil.copy2(source, folder / source.name)  # a private copy, so the test may touch mtimes
    return sorted(folder.glob("*.jpg"))


def _encoder(cache: Path, **options):
    context = EncoderContext("image", 8)
    return TimmBackbone(model="resnet18", image_size=64, batch_size=3, feature_cache=str(cache), **options).build(context)


@pytest.mark.realdata
@pytest.mark.slow
def test_features_are_cached_and_reused(images, tmp_path):
    cache = tmp_path / "cache"
    first = _encoder(cache)
    features = first.prepare(images)
    assert features.shape == (4, 512) and torch.isfinite(features).all()
    assert first.extractor.last_hits == 0
    second = _encoder(cache)  # a new run: same backbone and weights
    again = second.prepare(images[::-1])
    assert second.extractor.last_hits == 4
    torch.testing.assert_close(again, features.flip(0))
    # A changed file (new modification time) is recomputed; the others still come from the cache.
    stat = images[0].stat()
    os.utime(images[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second.prepare(images)
    assert second.extractor.last_hits == 3
    assert second.eval()(features).shape == (4, 8)
    # The frozen backbone is outside the trained (and checkpointed) module tree.
    assert {name.split(".")[0] for name, _ in second.named_parameters()} == {"projection"}


@pytest.mark.realdata
@pytest.mark.slow
def test_local_weights_file_is_loaded_and_keys_the_cache(images, tmp_path):
    import timm

    reference = timm.create_model("resnet18", num_classes=10)
    weights = tmp_path / "resnet18-test.pth"
    torch.save(reference.state_dict(), weights)
    encoder = _encoder(tmp_path / "cache", pretrained_path=str(weights))
    assert torch.equal(encoder.extractor.backbone.conv1.weight.cpu(), reference.conv1.weight)
    encoder.prepare(images[:2])
    random_init = _encoder(tmp_path / "cache")
    random_init.prepare(images[:2])
    assert random_init.extractor.last_hits == 0  # other weights, other cache entries
    assert encoder.extractor.folder != random_init.extractor.folder


def test_feature_cache_defaults_to_the_shared_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "home"))
    encoder = TimmBackbone(model="resnet18").build(EncoderContext("image", 8, cache_dir=tmp_path / "run"))
    assert encoder.extractor.folder.parent == tmp_path / "home" / "timm-features"


def test_unknown_model_and_missing_weights_are_user_errors(tmp_path):
    with pytest.raises(zsbench.UserError, match="no model 'resnet9000'"):
        TimmBackbone(model="resnet9000").build(EncoderContext("image", 8, cache_dir=tmp_path))
    with pytest.raises(zsbench.DataError, match="weights file not found"):
        TimmBackbone(model="resnet18", pretrained_path=str(tmp_path / "none.pth")).build(EncoderContext("image", 8, cache_dir=tmp_path))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_unreadable_image_names_the_file_and_earlier_batches_stay_cached(tmp_path, num_workers):
    """Also from loader worker processes, which cannot raise the error across to the caller."""
    from PIL import Image

    images = [tmp_path / f"plain{i}.png" for i in range(3)]
    for i, path in enumerate(images):
        Image.new("RGB", (48, 40), (60 * i, 90, 120)).save(path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    encoder = _encoder(tmp_path / "cache", num_workers=num_workers)
    with pytest.raises(zsbench.DataError, match=r"broken\.jpg: cannot read image"):
        encoder.prepare([*images[:3], bad])  # batch_size 3: the first batch is fine
    encoder.prepare(images[:3])
    assert encoder.extractor.last_hits == 3


def test_loader_workers_default_to_none_on_the_cpu_and_negative_is_a_user_error(tmp_path):
    assert _encoder(tmp_path / "cache").extractor.num_workers == 0
    with pytest.raises(zsbench.UserError, match="option .num_workers. must be an integer >= 0, got -1"):
        _encoder(tmp_path / "cache", num_workers=-1)
