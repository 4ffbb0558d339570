"""Word vocabulary for the CNN-LSTM text encoder, built from training sentences only.

Unseen-class descriptions must not shape the vocabulary (they are test-time side information),
so the method hands the encoder only the training images' sentences. Id 0 pads, id 1 stands for
any word outside the vocabulary; the rest are the most frequent training words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import attrs
import torch

PAD, UNK = 0, 1
_SPECIALS = ("<pad>", "<unk>")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(sentence: str) -> list[str]:
    """Lower-cased word tokens; punctuation is dropped (the descriptions are plain English)."""
    return _WORD.findall(sentence.lower())


@attrs.frozen
class Vocabulary:
    words: tuple[str, ...]  # index -> word, starting with the two specials

    @classmethod
    def build(
        cls, sentences: Iterable[str], max_size: int = 10_000, min_count: int = 1
    ) -> Vocabulary:
        """The ``max_size`` most frequent words (ties broken alphabetically, so it is
        deterministic) seen at least ``min_count`` times."""
        counts = Counter(word for sentence in sentences for word in tokenize(sentence))
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(_SPECIALS + tuple(ranked[:max_size]))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}

    def encode(self, sentences: Sequence[str], max_tokens: int) -> torch.Tensor:
        """(n, max_tokens) int64 ids, truncated or right-padded with ``PAD``."""
        index = self.index
        ids = torch.full((len(sentences), max_tokens), PAD, dtype=torch.int64)
        for row, sentence in enumerate(sentences):
            tokens = [index.get(word, UNK) for word in tokenize(sentence)[:max_tokens]]
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.int64)
        return ids
