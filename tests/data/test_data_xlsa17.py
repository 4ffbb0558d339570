"""xlsa17 feature and split files: both MATLAB versions, orientation, 1-based indices, and a
clear error (file + field) for every inconsistency."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures.matfiles import cell, tiny_xlsa17, write_mat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zsbench.data.xlsa17 import (
    as_strings,
    load_features,
    load_splits,
    one_based_to_index,
    orient_rows,
    read_mat,
)
from zsbench.errors import DataError


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_reads_both_matlab_versions_identically(tmp_path, version):
    written = tiny_xlsa17(tmp_path, version=version)
    features, labels, files = load_features(tmp_path / "res101.mat")
    np.testing.assert_allclose(features, written["features"])
    assert features.dtype == np.float32 and features.flags.c_contiguous
    np.testing.assert_array_equal(labels, written["labels"])
    assert labels.dtype == np.int64
    assert files == tuple(written["files"])
    splits, att, names = load_splits(tmp_path / "att_splits.mat", len(labels), labels)
    for name, idx in written["splits"].items():
        np.testing.assert_array_equal(getattr(splits, name), idx)
    np.testing.assert_allclose(att, written["att"], rtol=1e-6)
    assert names == tuple(f"{c:03d}.Class_{c}" for c in range(1, 7))


def test_v73_strings_and_matrix_shapes(tmp_path):
    path = write_mat(tmp_path / "x.mat", {"m": np.arange(6.0).reshape(2, 3),
                                          "names": cell(["a", "bc", "déf"])}, "7.3")
    mat = read_mat(path)
    np.testing.assert_array_equal(mat["m"], np.arange(6.0).reshape(2, 3))
    assert as_strings(mat["names"]) == ("a", "bc", "déf")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
@pytest.mark.parametrize("version", ["5", "7.3"])
def test_damaged_file_names_the_file(tmp_path, damage, version):
    tiny_xlsa17(tmp_path, version=version)
    path = tmp_path / "res101.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a mat file" * 20)
    with pytest.raises(DataError, match="cannot read this MATLAB file") as info:
        load_features(path)
    assert str(path) in str(info.value)


def test_missing_file_and_missing_field(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_mat(tmp_path / "absent.mat")
    write_mat(tmp_path / "f.mat", {"features": np.zeros((2, 3))})
    with pytest.raises(DataError, match=r"missing field\(s\) `labels`") as info:
        load_features(tmp_path / "f.mat")
    assert "f.mat" in str(info.value)


def test_features_stored_instance_major_are_accepted(tmp_path):
    written = tiny_xlsa17(tmp_path, features_layout="NxD")
    np.testing.assert_allclose(load_features(tmp_path / "res101.mat").features, written["features"])


def test_features_matching_no_axis_name_field_and_shapes(tmp_path):
    write_mat(tmp_path / "res101.mat", {"features": np.zeros((5, 7)), "labels": np.ones((6, 1))})
    with pytest.raises(DataError) as info:
        load_features(tmp_path / "res101.mat")
    message = str(info.value)
    assert "res101.mat" in message and "`features`" in message and "5 x 7" in message
    assert "6 instances" in message


def test_label_count_mismatch_with_image_files(tmp_path):
    write_mat(tmp_path / "res101.mat", {"features": np.zeros((5, 3)), "labels": np.ones((3, 1)),
                                        "image_files": cell(["a.jpg", "b.jpg"])})
    with pytest.raises(DataError, match="`image_files` has 2 entries but `labels` has 3"):
        load_features(tmp_path / "res101.mat")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 12), d=st.integers(1, 12), instance_major=st.booleans(), seed=st.integers(0, 99))
def test_orientation_detection(tmp_path_factory, n, d, instance_major, seed):
    if instance_major and n == d:
        return  # a square matrix is read in the xlsa17 layout (D x N): nothing to detect
    values = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    path = tmp_path_factory.mktemp("orient") / "f.mat"
    write_mat(path, {"features": values if instance_major else values.T,
                     "labels": np.arange(1.0, n + 1)[:, None]})
    np.testing.assert_array_equal(load_features(path).features, values)


@given(st.lists(st.integers(1, 60000), min_size=1, max_size=30),
       st.sampled_from([np.float64, np.uint16, np.int32, np.int64]), st.booleans())
def test_one_based_conversion(values, dtype, column):
    arr = np.asarray(values, dtype=dtype)
    arr = arr[:, None] if column else arr[None, :]
    out = one_based_to_index(arr, "f.mat", "x_loc")
    assert out.dtype == np.int64 and out.shape == (len(values),)
    np.testing.assert_array_equal(out, np.asarray(values) - 1)


@given(st.lists(st.integers(-5, 0), min_size=1, max_size=5))
def test_zero_or_negative_index_is_rejected_as_not_one_based(values):
    with pytest.raises(DataError, match=r"f\.mat: `test_seen_loc` holds -?\d+, but it is 1-based"):
        one_based_to_index(np.asarray(values + [3]), "f.mat", "test_seen_loc")


def test_fractional_and_matrix_indices_are_rejected():
    with pytest.raises(DataError, match="whole numbers"):
        one_based_to_index(np.array([1.0, 2.5]), "f.mat", "labels")
    with pytest.raises(DataError, match="must be a vector"):
        one_based_to_index(np.ones((2, 2)), "f.mat", "labels")


def test_orient_rows_message():
    with pytest.raises(DataError, match=r"`att` has shape 3 x 4, but neither axis matches the 6 classes"):
        orient_rows(np.zeros((3, 4)), 6, "s.mat", "att", "classes")


def _splits_error(tmp_path, **overrides) -> str:
    written = tiny_xlsa17(tmp_path, **overrides)
    with pytest.raises(DataError) as info:
        load_splits(tmp_path / "att_splits.mat", len(written["labels"]), written["labels"])
    assert str(tmp_path / "att_splits.mat") in str(info.value)
    return str(info.value)


def test_index_out_of_range_names_the_field(tmp_path):
    message = _splits_error(tmp_path, test_unseen_loc=np.array([[1], [2], [25]]))
    assert "`test_unseen_loc` holds index 25 (1-based), out of range" in message
    assert "24 instances" in message


def test_empty_split(tmp_path):
    message = _splits_error(tmp_path, val_loc=np.zeros((0, 1)))
    assert "`val_loc` is empty" in message


def test_missing_split_field(tmp_path):
    assert "`train_loc`" in _splits_error(tmp_path, train_loc=None)


def test_seen_unseen_class_overlap(tmp_path):
    # image 1 (class 1, unseen) also listed in trainval: caught as shared instance first
    message = _splits_error(tmp_path, trainval_loc=np.array([[1], [10], [11]]))
    assert "`trainval_loc` and `test_unseen_loc` share 1 instance" in message
    # a class with images on both sides, but no shared image
    written = tiny_xlsa17(tmp_path / "b")
    unseen_without_first = np.setdiff1d(written["splits"]["test_unseen"], [0])
    message = _splits_error(tmp_path / "c", test_unseen_loc=(unseen_without_first + 1)[:, None],
                            trainval_loc=np.append(written["splits"]["trainval"], 0)[:, None] + 1)
    assert "seen and unseen classes overlap: class(es) 1 (1-based)" in message
    assert "`test_unseen_loc`" in message


def test_validation_classes_must_not_be_training_classes(tmp_path):
    labels = tiny_xlsa17(tmp_path / "a")["labels"]
    val = np.flatnonzero(np.isin(labels, (2, 3)) | (np.arange(24) == 16))  # + 1 image of class 5
    train = np.setdiff1d(np.flatnonzero(np.isin(labels, (4, 5))), val)
    message = _splits_error(tmp_path, val_loc=(val + 1)[:, None], train_loc=(train + 1)[:, None])
    assert "`val_loc` must hold validation-unseen classes" in message


def test_duplicate_index(tmp_path):
    assert "`test_seen_loc` lists instance 5 (1-based) more than once" in _splits_error(
        tmp_path, test_seen_loc=np.array([[5], [5], [9]]))


def test_att_orientation(tmp_path):
    written = tiny_xlsa17(tmp_path / "a", att=np.random.default_rng(1).normal(size=(6, 3)))
    att = load_splits(tmp_path / "a" / "att_splits.mat", 24, written["labels"]).class_embeddings
    assert att.shape == (6, 3)  # stored C x E is read too
    message = _splits_error(tmp_path, att=np.zeros((3, 5)))
    assert "`att` has shape 3 x 5" in message and "6 classes in `allclasses_names`" in message


def test_labels_beyond_att_classes(tmp_path):
    written = tiny_xlsa17(tmp_path, allclasses_names=None, att=np.zeros((3, 6)))
    labels = written["labels"].copy()
    labels[0] = 6
    with pytest.raises(DataError, match="neither axis matches the 7 classes"):
        load_splits(tmp_path / "att_splits.mat", 24, labels)


def test_without_labels_only_index_checks(tmp_path):
    tiny_xlsa17(tmp_path, allclasses_names=None)
    splits, att, names = load_splits(tmp_path / "att_splits.mat", 24)
    assert names is None and att.shape == (6, 3) and len(splits.test_unseen) == 8
