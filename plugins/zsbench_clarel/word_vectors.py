"""Pretrained word vectors from a local file: word2vec binary (``.bin``) or GloVe/word2vec text.

Only the vocabulary's words are kept, so a 3.6 GB GoogleNews file never sits in memory. Words the
file lacks stay zero vectors, as in the authors' setup (unknown words -> zero).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from zsbench.errors import DataError


def load_word_vectors(path: str | Path, words: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """A (len(words), dim) float32 matrix for ``words`` and how many of them the file had.

    The format follows the name: ``*.bin`` / ``*.bin.gz`` is word2vec binary, anything else is
    text, one ``word v1 ... vd`` per line, with or without a word2vec ``count dim`` header.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            path, "word vectors file not found (expected a word2vec .bin or GloVe text file)"
        )
    binary = path.name.endswith((".bin", ".bin.gz"))
    wanted = {word: i for i, word in enumerate(words)}
    matrix: np.ndarray | None = None
    found = 0
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            entries = _word2vec_binary(stream, path) if binary else _text(stream, path)
            for word, vector in entries:
                if matrix is None:
                    matrix = np.zeros((len(words), len(vector)), dtype=np.float32)
                elif len(vector) != matrix.shape[1]:
                    raise DataError(
                        path,
                        f"vector for {word!r} has {len(vector)} values, expected {matrix.shape[1]}",
                    )
                row = wanted.pop(word, None)  # the first occurrence of a word wins
                if row is not None:
                    matrix[row] = vector
                    found += 1
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            path,
            f"cannot read word vectors ({'word2vec binary' if binary else 'text'} format): {exc}",
        ) from exc
    if matrix is None:
        raise DataError(path, "no word vectors in file")
    return matrix, found


def _word2vec_binary(stream, path: Path) -> Iterator[tuple[str, np.ndarray]]:
    header = stream.readline().split()
    if len(header) != 2:
        raise DataError(path, "word2vec binary header must be '<count> <dim>'")
    count, width = int(header[0]), 4 * int(header[1])
    buffer, pos = b"", 0
    for _ in range(count):
        # Each entry is "<word> <dim little-endian float32>", sometimes followed by a newline.
        while (space := buffer.find(b" ", pos)) < 0 or len(buffer) < space + 1 + width:
            more = stream.read(1 << 20)
            if not more:
                raise DataError(path, f"file ends early: header promised {count} words")
            buffer, pos = buffer[pos:] + more, 0
        word = buffer[pos:space].lstrip(b"\n").decode("utf-8", errors="replace")
        yield word, np.frombuffer(buffer, dtype="<f4", count=width // 4, offset=space + 1)
        pos = space + 1 + width


def _text(stream, path: Path) -> Iterator[tuple[str, np.ndarray]]:
    for number, raw in enumerate(io.TextIOWrapper(stream, encoding="utf-8"), start=1):
        parts = raw.rstrip().split(" ")
        if number == 1 and len(parts) == 2:  # word2vec text header
            continue
        if len(parts) < 2:
            if raw.strip():
                raise DataError(path, f"line {number}: expected 'word v1 ... vd'")
            continue
        yield parts[0], np.asarray(parts[1:], dtype=np.float32)
