"""Sentences -> a local Hugging Face transformer, mean-pooled over tokens -> dropout -> linear.

Frozen by default: then ``prepare`` runs the transformer once over every sentence and training
only learns the projection, which keeps each step as cheap as the vector encoders. With
``finetune`` the transformer trains too and ``prepare`` only tokenises.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zsbench.errors import DataError
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
        batch_size: int,
        device: torch.device,
    ):
        super().__init__()
        self.tokenizer, self.embed_dim, self.finetune = tokenizer, embed_dim, finetune
        self.max_length, self.batch_size, self.device = max_length, batch_size, device
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
        chunks = []
        with torch.no_grad():
            for start in range(0, len(items), self.batch_size):
                tokens = self._tokens(items[start : start + self.batch_size])
                chunk = {k: v.to(self.device) for k, v in tokens.items()}
                chunks.append(self._pooled(self._frozen, chunk).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, self.projection[-1].in_features)

    def forward(self, batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = self._pooled(self.transformer, batch) if self.finetune else batch
        return self.projection(pooled)


def build_hf_text(context: EncoderContext, **options: Any) -> HfTextEncoder:
    """Sentences -> local Hugging Face model folder (mean pooling, frozen by default) -> linear."""
    from transformers import AutoModel, AutoTokenizer

    o = HfTextOptions(**options)
    folder = Path(o.model_path).expanduser()
    if not (folder / "config.json").is_file():
        raise DataError(
            folder,
            "not a Hugging Face model folder (no config.json); give a local path, "
            "the model hub is not used",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        transformer = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataError(folder, f"cannot load the model: {exc}") from exc
    return HfTextEncoder(
        tokenizer,
        transformer,
        context.embed_dim,
        finetune=o.finetune,
        max_length=o.max_length,
        dropout=o.dropout,
        batch_size=o.batch_size,
        device=context.device,
    )
