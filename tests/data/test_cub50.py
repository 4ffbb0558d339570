"""The real CUB classes 001-050 (../shared/data/cub50: the official xlsa17 split restricted to
them, Reed et al.'s captions as word tokens) read by the ``cub`` plugin, with every kind of side
information it offers, and a clear error for a kind a data set lacks."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from data_fixtures import isolated_cache
from zsbench_clarel.vocabulary import tokenize
from zsbench_datasets import Cub

from zsbench.data.reed_text import image_stem
from zsbench.errors import DataError
from zsbench.evaluation import protocol

pytestmark = pytest.mark.realdata

UNSEEN = [4, 12, 23, 26, 28, 31, 33, 43, 45, 49]  # the official xlsa17 test-unseen classes among 001-050
VAL_UNSEEN = [5, 7, 9, 18, 29, 34, 36, 48]  # xlsa17's validation-unseen classes among them
FILES = ("efficientnet_lite0.mat", "att_splits.mat", "sent_splits.mat", "text_c10", "CUB_200_2011")


@pytest.fixture(scope="module")
def root():
    from shared_data import SHARED_DATA

    folder = SHARED_DATA / "cub50"
    if not (folder / "efficientnet_lite0.mat").is_file():
        pytest.skip("../shared/data/cub50 is not present")
    return folder


@pytest.fixture(scope="module")
def cub50(root, tmp_path_factory):
    with isolated_cache(tmp_path_factory):
        yield Cub(features="efficientnet_lite0.mat", splits="att_splits.mat", images=False).build(root)


def test_counts_classes_and_official_split(cub50):
    b = cub50
    assert len(b.labels) == 2889 and b.features.shape == (2889, 1280)
    assert len(b.class_names) == 50 and b.class_names[0] == "001.Black_footed_Albatross"
    sizes = {name: len(idx) for name, idx in b.splits.as_dict().items()}
    assert sizes == {"trainval": 1837, "test_seen": 460, "test_unseen": 592, "train": 1857, "val": 440}
    assert (np.unique(b.labels[b.splits.test_unseen]) + 1).tolist() == UNSEEN
    assert len(np.unique(b.labels[b.splits.trainval])) == 40
    assert len(np.unique(b.labels[b.splits.train])) == 32
    assert (np.unique(b.labels[b.splits.val]) + 1).tolist() == VAL_UNSEEN
    stage = protocol.test_stage(b)
    assert len(stage.seen_classes) == 40 and len(stage.unseen_classes) == 10
    assert len(protocol.validation_stage(b, 0).unseen_classes) == 8


def test_every_class_level_kind(cub50, root):
    b = cub50
    # attributes: the split file's att; Reed's class sentences: sent_splits.mat's att, both per class
    assert b.class_embeddings.shape == (50, 312) and b.class_sentences.shape == (50, 1024)
    assert root / "sent_splits.mat" in b.files  # part of the rows' data identity
    stage = protocol.test_stage(b)
    attributes = protocol.class_side(b, stage, "class-embeddings")
    sentences = protocol.class_side(b, stage, "class-sentences")
    assert np.array_equal(sentences.ids, attributes.ids)
    assert np.array_equal(sentences.embeddings, b.class_sentences[stage.classes])
    assert np.array_equal(attributes.embeddings, b.class_embeddings[stage.classes])
    assert sentences.texts is None and attributes.texts is None
    assert protocol.side_information(b, "class-sentences") == "class sentence embeddings (sent_splits.mat, 1024-d)"


def test_auto_split_file_takes_the_sentences(root, tmp_path_factory):
    with isolated_cache(tmp_path_factory):
        b = Cub(features="efficientnet_lite0.mat", images=False).build(root)
    assert b.class_embeddings.shape == (50, 1024)
    assert b.class_sentences is b.class_embeddings


def test_captions_are_the_released_tokens(cub50, root):
    b = cub50
    assert len(b.texts) == 2889 and all(len(t) == 10 for t in b.texts)
    files = {f.stem: f for f in (root / "text_c10").rglob("*.txt")}
    assert len(files) == 2889
    stems = [line.split()[1] for line in (root / "CUB_200_2011" / "images.txt").read_text().splitlines()]
    for stem, texts in zip(stems, b.texts, strict=True):
        assert list(texts) == files[image_stem(stem)].read_text(encoding="utf-8").splitlines()
    flat = [s for t in b.texts for s in t]
    assert len(flat) == 28890
    # CLAREL's word tokenizer reads them as the tokens they are: no word split or merged
    assert all(tokenize(s) == s.split(" ") for s in flat)
    assert any(" bird s " in s for s in flat)  # "bird's" as released: two tokens


def test_caption_means_come_only_from_allowed_images(cub50):
    per_image = np.random.default_rng(0).normal(size=(len(cub50.labels), 8)).astype(np.float32)
    b = attrs.evolve(cub50, caption_embeddings=per_image, caption_encoder="test", prototype_captions="unscored")
    stage = protocol.test_stage(b, seed=3)
    side = protocol.class_side(b, stage, "caption-means")
    allowed = protocol.caption_images(b, stage)
    assert not np.isin(allowed, np.concatenate([stage.eval_seen, stage.eval_unseen])).any()
    for k, c in enumerate(side.ids):
        mine = allowed[b.labels[allowed] == c]
        np.testing.assert_allclose(side.embeddings[k], per_image[mine].mean(0), rtol=1e-5)


@pytest.mark.parametrize(("kind", "drop", "needs"), [
    ("class-sentences", "sent_splits.mat", "sent_splits.mat"),
    ("captions", "text_c10", "text_c10/"),
    ("caption-means", "text_c10", "text_c10/"),
])
def test_a_missing_kind_names_the_file_it_needs(root, tmp_path, kind, drop, needs, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cub50"
    folder.mkdir()
    for name in FILES:
        if name != drop:
            (folder / name).symlink_to(root / name)
    b = Cub(features="efficientnet_lite0.mat", splits="att_splits.mat", images=False).build(folder)
    with pytest.raises(DataError, match=needs.replace(".", r"\.")) as raised:
        protocol.class_side(b, protocol.test_stage(b), kind)
    assert str(folder) in str(raised.value)
