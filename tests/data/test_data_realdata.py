"""The real xlsa17 files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from data_fixtures import isolated_cache
from zsbench_datasets import Flo

import zsbench.data.bundle as bundle_module
from zsbench.data.download import verify
from zsbench.data.raw_images import oxford_layout, resolve_image_files
from zsbench.data.xlsa17 import load_features, load_splits
from zsbench.errors import DataError

pytestmark = pytest.mark.realdata

FLO_FEATURES = "efficientnet_lite0.mat"


@pytest.fixture(scope="module")
def flo(tmp_path_factory):
    from shared_data import SHARED_DATA

    if not (SHARED_DATA / "flo" / FLO_FEATURES).is_file():
        pytest.skip("../shared/data/flo is not present")
    with isolated_cache(tmp_path_factory):
        started = time.perf_counter()
        bundle = Flo(features=FLO_FEATURES).build(SHARED_DATA / "flo")
        yield bundle, time.perf_counter() - started


def _classes(bundle, split):
    return np.unique(bundle.labels[getattr(bundle.splits, split)])


def test_flo_split_sizes_and_classes(flo):
    b, seconds = flo
    assert seconds < 60  # first load reads the .mat files and writes the Arrow cache
    sizes = {k: len(v) for k, v in b.splits.as_dict().items()}
    assert sizes == {"trainval": 5631, "test_seen": 1403, "test_unseen": 1155, "train": 5878, "val": 1156}
    seen = np.union1d(_classes(b, "trainval"), _classes(b, "test_seen"))
    unseen = _classes(b, "test_unseen")
    assert len(seen) == 82 and len(unseen) == 20 and not np.intersect1d(seen, unseen).size
    np.testing.assert_array_equal(unseen, np.arange(20))  # Oxford classes 1-20
    np.testing.assert_array_equal(_classes(b, "val"), np.arange(20, 40))  # validation-unseen 21-40
    assert b.class_embeddings.shape == (102, 1024) and b.features.shape == (8189, 1280)
    assert b.features.dtype == np.float32 and b.feature_name == "efficientnet_lite0"
    assert b.class_names[0] == "pink primrose" and b.num_classes == 102
    assert b.texts is None and b.image_files is None  # no text_c10/, no full jpg/ here
    assert b.side_information == "class embeddings (att, 1024-d)"


def test_flo_second_load_hits_the_cache(flo, monkeypatch):
    from shared_data import SHARED_DATA

    first, _ = flo
    monkeypatch.setattr(bundle_module, "load_features", lambda path: pytest.fail("cache missed"))
    started = time.perf_counter()
    again = Flo(features=FLO_FEATURES).build(SHARED_DATA / "flo")
    assert time.perf_counter() - started < 10
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.labels, first.labels)


def test_xlsa17_validation_lists_reuse_test_seen_images(flo, shared_data):
    """A property of the real files the protocol must handle: ``train_loc`` + ``val_loc``
    cover exactly ``trainval_loc`` + ``test_seen_loc``, so every test_seen image is also a
    train or val image. Checked for FLO and CUB, counts as found."""
    b, _ = flo
    cub = load_splits(shared_data / "cub" / "sent_splits.mat", 11788).splits
    for splits, in_train, in_val in ((b.splits, 1173, 230), (cub, 1173, 591)):
        np.testing.assert_array_equal(np.union1d(splits.train, splits.val),
                                      np.union1d(splits.trainval, splits.test_seen))
        assert len(np.intersect1d(splits.train, splits.test_seen)) == in_train
        assert len(np.intersect1d(splits.val, splits.test_seen)) == in_val
        assert not np.intersect1d(np.union1d(splits.train, splits.val), splits.test_unseen).size


def test_cub_split_file(shared_data):
    splits, att, names = load_splits(shared_data / "cub" / "sent_splits.mat", 11788)
    sizes = {k: len(v) for k, v in splits.as_dict().items()}
    assert sizes == {"trainval": 7057, "test_seen": 1764, "test_unseen": 2967, "train": 5875, "val": 2946}
    assert att.shape == (200, 1024) and len(names) == 200 and len(set(names)) == 200
    every = np.concatenate([splits.trainval, splits.test_seen, splits.test_unseen])
    np.testing.assert_array_equal(np.sort(every), np.arange(11788))  # a partition of the images
    with pytest.raises(DataError, match="`trainval_loc` holds index 11727 \\(1-based\\), out of range"):
        load_splits(shared_data / "cub" / "sent_splits.mat", 11000)


def test_cub_class_counts(shared_data):
    features = shared_data / "cub" / "res101.mat"
    if not features.is_file():
        pytest.skip("150 / 50 classes need the labels of cub/res101.mat, not in ../shared/data")
    labels = load_features(features).labels
    splits = load_splits(shared_data / "cub" / "sent_splits.mat", len(labels), labels).splits
    seen = np.union1d(np.unique(labels[splits.trainval]), np.unique(labels[splits.test_seen]))
    assert len(seen) == 150 and len(np.unique(labels[splits.test_unseen])) == 50


def test_oxford_files_give_the_xlsa17_image_order(shared_data, tmp_path):
    flo_dir = shared_data / "flo"
    for name in ("imagelabels.mat", "setid.mat", "cat_to_name.json"):
        (tmp_path / name).symlink_to(flo_dir / name)
    (tmp_path / "jpg").symlink_to(flo_dir / "images_sample" / "jpg")
    raw = oxford_layout(tmp_path)
    stored = load_features(flo_dir / FLO_FEATURES)
    ordered = [raw.relative[i] for i in raw.xlsa17_order]
    assert ordered == [f.split("/")[-1] for f in stored.image_files]
    np.testing.assert_array_equal(raw.labels[raw.xlsa17_order], stored.labels)
    sample = [f for f in stored.image_files if (tmp_path / f).is_file()]
    assert len(sample) == 204
    assert all(p.is_file() for p in resolve_image_files(sample, raw, flo_dir / FLO_FEATURES))


def test_incomplete_image_folder_is_an_error_naming_an_image(shared_data, tmp_path):
    for name in ("efficientnet_lite0.mat", "att_splits.mat", "imagelabels.mat", "setid.mat"):
        (tmp_path / name).symlink_to(shared_data / "flo" / name)
    (tmp_path / "jpg").symlink_to(shared_data / "flo" / "images_sample" / "jpg")
    with pytest.raises(DataError, match=r"image not found \(7985 of 8189 missing"):
        Flo(features=FLO_FEATURES).build(tmp_path)
    assert Flo(features=FLO_FEATURES, images=False).build(tmp_path).image_files is None


def test_verify_the_shared_flo_folder(shared_data):
    assert verify("flo", shared_data / "flo", features=FLO_FEATURES) == []
    assert verify("flo", shared_data / "flo") == [f"{shared_data / 'flo' / 'res101.mat'}: missing"]
