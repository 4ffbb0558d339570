"""The synthetic generator writes real-format files that the real loaders read, with class
information in features, class embeddings and words."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from data_fixtures import isolated_cache
from PIL import Image

from zsbench.data.bundle import load_xlsa17_bundle
from zsbench.data.raw_images import oxford_layout
from zsbench.data.synthetic import MARKER, write_synthetic
from zsbench.data.xlsa17 import load_features, read_mat
from zsbench.errors import UserError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = write_synthetic(tmp_path_factory.mktemp("syn") / "data", seed=3)
    with isolated_cache(tmp_path_factory):
        yield root, load_xlsa17_bundle("synthetic", root, raw_layout=oxford_layout)


def test_on_disk_formats(synthetic):
    root, _ = synthetic
    mat = read_mat(root / "res101.mat")
    assert mat["features"].shape == (64, 30 * 40)  # D x N, as xlsa17
    assert mat["labels"].shape == (1200, 1) and mat["labels"].min() == 1
    splits = read_mat(root / "att_splits.mat")
    assert splits["att"].shape == (32, 30)  # E x C
    assert all(splits[f"{k}_loc"].min() >= 1 for k in ("trainval", "test_seen", "test_unseen"))
    folders = sorted(p.name for p in (root / "text_c10").iterdir())
    assert folders[0] == "class_00001" and len(folders) == 30
    assert len(list((root / "text_c10" / "class_00001").glob("image_*.txt"))) == 40
    assert {"imagelabels.mat", "setid.mat", MARKER} <= {p.name for p in root.iterdir()}


def test_split_structure_mirrors_xlsa17(synthetic):
    _, b = synthetic
    s, labels = b.splits, b.labels
    classes = {k: set(np.unique(labels[v])) for k, v in s.as_dict().items()}
    assert len(classes["test_unseen"]) == 6 and len(classes["val"]) == 6 and len(classes["train"]) == 18
    assert not classes["test_unseen"] & (classes["trainval"] | classes["train"] | classes["val"])
    assert not classes["train"] & classes["val"]
    assert classes["test_seen"] == classes["trainval"] == classes["train"] | classes["val"]
    # like the real files: train + val re-use the test_seen images
    np.testing.assert_array_equal(np.union1d(s.train, s.val), np.union1d(s.trainval, s.test_seen))
    assert len(s.test_seen) == 24 * 8 and len(s.trainval) == 24 * 32


def test_deterministic_for_a_seed(tmp_path):
    a = write_synthetic(tmp_path / "a", num_classes=6, per_class=5, seed=7, images=False)
    b = write_synthetic(tmp_path / "b", num_classes=6, per_class=5, seed=7, images=False)
    c = write_synthetic(tmp_path / "c", num_classes=6, per_class=5, seed=8, images=False)
    fa, fb, fc = (load_features(p / "res101.mat").features for p in (a, b, c))
    np.testing.assert_array_equal(fa, fb)
    assert not np.allclose(fa, fc)
    text = "text_c10/class_00002/image_00007.txt"
    assert (a / text).read_text() == (b / text).read_text()
    assert not (a / "jpg").exists()


def test_texts_name_class_attributes_in_shared_words(synthetic):
    _, b = synthetic
    assert all(8 <= len(t) <= 10 for t in b.texts)

    def words(lines):
        return Counter(w for line in lines for w in re.findall(r"[a-z-]+", line))

    # a bag-of-words nearest class centroid (fitted on seen-class images) recognises the class
    seen_idx = b.splits.trainval
    vocab = sorted(set().union(*(words(t) for t in b.texts)))
    index = {w: i for i, w in enumerate(vocab)}
    bow = np.zeros((len(b.texts), len(vocab)))
    for i, lines in enumerate(b.texts):
        for w, n in words(lines).items():
            bow[i, index[w]] = n
    seen = np.unique(b.labels[seen_idx])
    centroids = np.stack([bow[seen_idx][b.labels[seen_idx] == c].mean(0) for c in seen])
    test = b.splits.test_seen
    predicted = seen[np.argmin(((bow[test, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    assert np.mean(predicted == b.labels[test]) > 0.9
    # unseen classes are described with words seen classes use too (compositional transfer)
    unseen_words = set().union(*(words(b.texts[i]) for i in b.splits.test_unseen))
    seen_words = set().union(*(words(b.texts[i]) for i in seen_idx))
    assert unseen_words <= seen_words


def test_features_transfer_but_not_trivially(synthetic):
    """A closed-form linear compatibility model (ESZSL) beats chance on unseen classes by far,
    and is not perfect on seen ones."""
    _, b = synthetic
    s, y, att = b.splits, b.labels, b.class_embeddings
    x = b.features - b.features[s.trainval].mean(0)
    x /= b.features[s.trainval].std(0)
    seen, unseen = np.unique(y[s.trainval]), np.unique(y[s.test_unseen])
    targets = np.where(y[s.trainval, None] == seen[None], 1.0, -1.0)
    a, sa = x[s.trainval], att[seen]
    w = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ targets @ sa)
    w = w @ np.linalg.inv(sa.T @ sa + np.eye(sa.shape[1]))

    def per_class_accuracy(idx, classes):
        pred = classes[np.argmax(x[idx] @ w @ att[classes].T, axis=1)]
        return np.mean([np.mean(pred[y[idx] == c] == c) for c in classes])

    assert per_class_accuracy(s.test_unseen, unseen) > 3 / len(unseen)
    assert 0.5 < per_class_accuracy(s.test_seen, seen) < 0.99


def test_images_are_small_and_loadable(synthetic):
    _, b = synthetic
    assert len(b.image_files) == 1200 and all(p.is_file() for p in b.image_files[:5])
    with Image.open(b.image_files[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def test_existing_folders(tmp_path, synthetic):
    root, _ = synthetic
    before = (root / "res101.mat").stat().st_mtime_ns
    assert write_synthetic(root, seed=3) == root
    assert (root / "res101.mat").stat().st_mtime_ns == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and holds other files"):
        write_synthetic(tmp_path / "other")
    with pytest.raises(UserError, match="at least 5 classes"):
        write_synthetic(tmp_path / "x", num_classes=2)
