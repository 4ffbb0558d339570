"""The authors' sentence encoder: word vectors -> residual 1-D CNN -> BiLSTM -> mean -> projection.

Padding never leaks into a sentence's embedding: padded positions are zeroed before every
convolution (so they look like the convolution's own zero padding), excluded from max-pooling,
never read by the LSTM before a real word and left out of the mean. A sentence therefore embeds the same
whatever length it is padded to (in eval mode; batch-norm statistics in training see the pads).

On the CPU the CNN does not convolve a padded batch at all: the sentences are laid end to end in
one row, each in a segment just long enough to keep one pad after it at every pooling level and
to start on a pooling boundary (``segment_layout``), so windows never straddle two sentences.
With one sampled caption per image a batch of 32 padded to its longest caption is a third pads;
packed, the convolutions (most of a step) skip them. A GPU keeps the padded batch, whose shape
needs no lengths on the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from zsbench.errors import UserError
from zsbench.interfaces import EncoderContext
from zsbench_clarel.encoders import TEXTS, Projection
from zsbench_clarel.options import CnnLstmOptions
from zsbench_clarel.vocabulary import PAD, Vocabulary
from zsbench_clarel.word_vectors import load_word_vectors


class ConvUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x * mask))


class ResidualBlock(nn.Module):
    """``units`` conv+BN(+ReLU) units with a shortcut around them, then a masked max-pool by 2."""

    def __init__(self, in_channels: int, out_channels: int, units: int, kernel_size: int):
        super().__init__()
        self.units = nn.ModuleList(
            ConvUnit(in_channels if i == 0 else out_channels, out_channels, kernel_size)
            for i in range(units)
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv1d(in_channels, out_channels, kernel_size=1)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for i, unit in enumerate(self.units):
            h = unit(h, mask)
            if i < len(self.units) - 1:
                h = torch.relu(h)
        h = torch.relu(h + self.shortcut(x * mask))
        pooled = nn.functional.max_pool1d(h.masked_fill(~mask, float("-inf")), 2, ceil_mode=True)
        pooled_mask = nn.functional.max_pool1d(mask.float(), 2, ceil_mode=True).bool()
        return pooled.masked_fill(~pooled_mask, 0.0), pooled_mask


def _gather_steps(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``x[i, order[i, t]]`` for (n, T, C) ``x`` and (n, T) ``order``."""
    return x.gather(1, order.unsqueeze(2).expand(-1, -1, x.shape[2]))


def _packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lstm`` over the first ``lengths`` steps of each row only; zeros after them."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]


class MaskedBiLSTM(nn.Module):
    """A bidirectional LSTM over right-padded sequences, given their lengths on the device.

    The backward direction reads each sequence reversed within its own length, so it meets a
    sequence's last word first and padding never reaches a real step's state: the result is a
    packed ``nn.LSTM(bidirectional=True)``'s. On a GPU both directions run over every step, pads
    included, because packing needs the lengths on the host: a host-device synchronisation on
    every batch. On the CPU, where the lengths are already, they are packed and pads skipped
    (``pack_on_cpu``). Pad steps come out zero.
    """

    pack_on_cpu = True

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[1], device=x.device)
        inside = steps < lengths.unsqueeze(1)  # (n, T)
        # Reverses the first ``length`` steps of each row and leaves the pads; its own inverse.
        reverse = torch.where(inside, lengths.unsqueeze(1) - 1 - steps, steps)
        reversed_x = _gather_steps(x, reverse)
        if x.device.type == "cpu" and self.pack_on_cpu:
            forward = _packed(self.forward_lstm, x, lengths)
            backward = _packed(self.backward_lstm, reversed_x, lengths)
        else:
            forward, backward = self.forward_lstm(x)[0], self.backward_lstm(reversed_x)[0]
        both = torch.cat([forward, _gather_steps(backward, reverse)], dim=2)
        return both * inside.unsqueeze(2)


def segment_layout(lengths: torch.Tensor, blocks: int) -> tuple[torch.Tensor, int]:
    """Where each sentence starts when laid end to end for ``blocks`` conv blocks, and the total.

    A segment is a multiple of ``2**blocks`` long (each pool by 2 then keeps its windows inside
    it), and at every level ``j < blocks`` (a convolution's input) it leaves at least one pad
    after the sentence's ``ceil(L / 2**j)`` steps: the next sentence's first word then sees a
    zero on its left, as it would at the edge of its own padded row.
    """
    size = torch.ones_like(lengths)
    steps = lengths
    for level in range(blocks):
        size = torch.maximum(size, (steps + 1) * 2**level)
        steps = (steps + 1) // 2
    unit = 2**blocks
    size = (size + unit - 1) // unit * unit
    starts = torch.cumsum(size, 0) - size
    return starts, int(size.sum())


class CnnLstmEncoder(nn.Module):
    """Token ids (n, T) -> (n, embed_dim); ``prepare`` tokenises sentences with the vocabulary."""

    modality = "text"
    input_kind = TEXTS
    # On the CPU the sentences are packed end to end before the CNN (their lengths are free to
    # read there; on a GPU reading them would wait for the device): no pad column is convolved.
    pack_on_cpu = True

    def __init__(
        self,
        vocabulary: Vocabulary,
        embed_dim: int,
        *,
        vectors: np.ndarray | None,
        word_dim: int,
        max_tokens: int,
        filters: int,
        blocks: int,
        units_per_block: int,
        kernel_size: int,
        lstm_hidden: int,
        dropout: float,
    ):
        super().__init__()
        self.vocabulary, self.embed_dim, self.max_tokens = vocabulary, embed_dim, max_tokens
        if vectors is None:
            self.words = nn.Embedding(len(vocabulary), word_dim, padding_idx=PAD)
        else:  # frozen pretrained vectors; pad and unknown rows are zero
            self.words = nn.Embedding.from_pretrained(
                torch.as_tensor(vectors), freeze=True, padding_idx=PAD
            )
        widths = [self.words.embedding_dim] + [filters * 2**b for b in range(blocks)]
        self.blocks = nn.ModuleList(
            ResidualBlock(widths[b], widths[b + 1], units_per_block, kernel_size)
            for b in range(blocks)
        )
        self.lstm = MaskedBiLSTM(widths[-1], lstm_hidden)
        self.projection = Projection(2 * lstm_hidden, embed_dim, dropout)

    def prepare(self, items: Sequence[str]) -> torch.Tensor:
        return self.vocabulary.encode(items, self.max_tokens)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.device.type == "cpu" and self.pack_on_cpu and len(batch):
            x, lengths = self._packed_cnn(batch)
        else:
            mask = (batch != PAD).unsqueeze(1)  # (n, 1, T)
            x = self.words(batch).transpose(1, 2)  # (n, word_dim, T)
            for block in self.blocks:
                x, mask = block(x, mask)
            lengths = mask.squeeze(1).sum(1)
        lengths = lengths.clamp_min(1)  # an empty sentence reads as one zero step
        with torch.autocast(x.device.type, enabled=False):  # the recurrence stays in float32
            steps = self.lstm(x.transpose(1, 2).float(), lengths)
        pooled = steps.sum(1) / lengths.unsqueeze(1).to(steps.dtype)
        return self.projection(pooled)

    def _packed_cnn(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The CNN over the sentences laid end to end: (n, C, T') outputs (zero past each
        sentence's end) and their lengths."""
        real = batch != PAD  # right-padded rows: a sentence's tokens come first
        lengths = real.sum(1)
        starts, total = segment_layout(lengths, len(self.blocks))
        columns = starts.unsqueeze(1) + torch.arange(batch.shape[1])  # (n, T): where each token goes
        row = torch.full((1, total), PAD, dtype=batch.dtype)
        row[0, columns[real]] = batch[real]
        mask = (row != PAD).unsqueeze(1)  # (1, 1, total)
        x = self.words(row).transpose(1, 2)  # (1, word_dim, total)
        for block in self.blocks:
            x, mask = block(x, mask)
        scale = 2 ** len(self.blocks)
        out_lengths = lengths
        for _ in self.blocks:
            out_lengths = (out_lengths + 1) // 2
        width = max(int(out_lengths.max()), 1) if len(out_lengths) else 1
        index = (starts // scale).unsqueeze(1) + torch.arange(width)  # (n, width), inside each segment
        inside = torch.arange(width) < out_lengths.unsqueeze(1)
        index = torch.where(inside, index, starts.unsqueeze(1) // scale)  # pads: any column, zeroed below
        x = x[0][:, index].permute(1, 0, 2) * inside.unsqueeze(1)  # (n, C, width)
        return x, out_lengths


@attrs.frozen
class CnnLstm(CnnLstmOptions):
    def build(self, context: EncoderContext) -> CnnLstmEncoder:
        """Sentences -> word vectors (frozen word2vec/GloVe file, or learned) -> residual CNN -> BiLSTM."""
        if not context.training_texts:
            raise UserError(
                "the cnn-lstm text encoder needs per-image training sentences; this data set has "
                "none (use text_encoder: {name: class-projection})"
            )
        vocabulary = Vocabulary.build(context.training_texts, max_size=self.vocab_size, min_count=self.min_count)
        vectors = None
        if self.word_vectors is not None:
            vectors, _ = load_word_vectors(self.word_vectors, vocabulary.words)
            vectors[:2] = 0.0  # pad and unknown words are zero vectors
        return CnnLstmEncoder(
            vocabulary,
            context.embed_dim,
            vectors=vectors,
            word_dim=self.word_dim,
            max_tokens=self.max_tokens,
            filters=self.filters,
            blocks=self.blocks,
            units_per_block=self.units_per_block,
            kernel_size=self.kernel_size,
            lstm_hidden=self.lstm_hidden,
            dropout=self.dropout,
        )
