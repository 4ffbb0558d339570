"""Sentences -> a local Hugging Face transformer, mean-pooled over tokens -> dropout -> linear.

Frozen by default: then ``prepare`` embeds each sentence once (L2-normalised, on its own) and
keeps it in the per-sentence cache (``zsbench.data.sentence_embeddings``), so later fits, and
other caption lists that share sentences, read it from disk and training only learns the
projection, at the vector encoders' speed. With ``finetune`` the transformer trains too and ``prepare`` only tokenises.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import torch
from torch import nn

from zsbench.data import sentence_embeddings
from zsbench.interfaces import EncoderContext
from zsbench_clarel.encoders import TEXTS, Projection
from zsbench_clarel.options import HfTextOptions


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states that the attention mask keeps."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class HfTextEncoder(nn.Module):
    modality = "text"
    input_kind = TEXTS

    def __init__(
        self,
        tokenizer,
        transformer: nn.Module,
        embed_dim: int,
        *,
        finetune: bool,
        max_length: int,
        dropout: float,
        device: torch.device,
        folder: Path,
    ):
        super().__init__()
        self.tokenizer, self.embed_dim, self.finetune, self.folder = tokenizer, embed_dim, finetune, folder
        self.max_length, self.device = max_length, device
        if finetune:
            self.transformer = transformer
        else:  # kept out of the module tree: no gradients, no checkpoint bytes
            object.__setattr__(self, "_frozen", transformer.eval().requires_grad_(False).to(device))
        self.projection = Projection(transformer.config.hidden_size, embed_dim, dropout)

    def _tokens(self, sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(sentences),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _pooled(self, transformer: nn.Module, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return mean_pool(transformer(**tokens).last_hidden_state, tokens["attention_mask"])

    def prepare(self, items: Sequence[str]) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.finetune:
            return self._tokens(items)
        embeddings = sentence_embeddings.cached_embeddings(
            self.folder, items, encoder=lambda: (self.tokenizer, self._frozen), max_length=self.max_length,
            device=self.device)
        return torch.from_numpy(embeddings)

    def forward(self, batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = self._pooled(self.transformer, batch) if self.finetune else batch
        return self.projection(pooled)


@attrs.frozen
class HfText(HfTextOptions):
    def build(self, context: EncoderContext) -> HfTextEncoder:
        """Sentences -> local Hugging Face model (mean pooling, frozen by default) -> linear.

        ``model_path``: a model folder, or a packaged model's name (``all-MiniLM-L6-v2``)."""
        folder = sentence_embeddings.model_folder(self.model_path)
        tokenizer, transformer = sentence_embeddings.load_encoder(folder)
        if self.finetune:
            transformer.train().requires_grad_(True)
        return HfTextEncoder(
            tokenizer,
            transformer,
            context.embed_dim,
            finetune=self.finetune,
            max_length=self.max_length,
            dropout=self.dropout,
            device=context.device,
            folder=folder,
        )
