"""The public encoder toolkit: what every image or text encoder plugin needs and should not rewrite.

- ``input_kind``: the input an encoder consumes, one of ``INPUT_KINDS``. Methods that compose
  encoders (CLAREL) hand an encoder exactly that input; an encoder used as a dataset
  ``backbone`` must consume ``IMAGE_FILES`` and return an (n, D) float tensor of frozen
  features from ``prepare``.
- ``identity``: a string naming everything that determines an encoder's ``prepare`` output
  (model, weights digest, preprocessing, precision). Backbone features are cached under it, and
  ``prepare_once`` shares a prepared batch between encoders of one identity.
- ``image_batches`` (over ``ImageFiles`` / ``check_decoded``): decoding in loader worker
  processes, with an unreadable image reported by name (``UnreadableImageError``) instead of a
  worker traceback, and without drawing from torch's global random generator.
- ``ItemFeatureCache``: a persistent per-item feature cache keyed by the encoder's identity and
  each file's (path, size, modification time), so a killed extraction resumes.
- ``isolated_rng``: builds a model without touching torch's global random generator, so a run's
  results never depend on whether a backbone was built earlier in the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zsbench.errors import DataError
from zsbench.paths import cache_home

FEATURES = "features"  # rows of a precomputed feature matrix
IMAGE_FILES = "image_files"  # paths of raw images
TEXTS = "texts"  # per instance, a list of sentences
CLASS_EMBEDDINGS = "class_embeddings"  # rows of class-level side information
INPUT_KINDS = (FEATURES, IMAGE_FILES, TEXTS, CLASS_EMBEDDINGS)


class UnreadableImageError(DataError):
    """An image file that is missing, truncated or not an image; names the file."""

    def __init__(self, path, reason: str):
        super().__init__(path, f"cannot read image: {reason}; replace or remove the file "
                               "(features already extracted are kept in the cache)")


@contextlib.contextmanager
def isolated_rng(seed: int = 0) -> Iterator[None]:
    """Run a block (building a model, drawing its random initial weights) on a private copy of
    torch's global generators seeded with ``seed``; the caller's random state is untouched."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def file_digest(path: os.PathLike | str) -> str:
    """SHA-256 of a file's bytes (weights files: the identity of what was loaded)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class ImageFiles(torch.utils.data.Dataset):
    """Decoded, transformed images for a ``DataLoader`` (any number of worker processes).

    An unreadable file comes back as a blank tensor of ``blank_shape`` with its error message,
    for ``check_decoded`` in the main process to report by name: an exception raised in a
    worker would reach the user as a traceback."""

    def __init__(self, paths: Sequence[Path], transform: Callable[[Any], torch.Tensor],
                 blank_shape: tuple[int, ...]):
        self.paths, self.transform, self.blank_shape = list(paths), transform, tuple(blank_shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.paths[i]) as image:
                return self.transform(image.convert("RGB")), ""
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            return torch.zeros(self.blank_shape), str(exc)


def check_decoded(paths: Sequence[Path], errors: Sequence[str]) -> None:
    """Raise ``UnreadableImageError`` for the first of a batch's images that failed to decode."""
    for path, error in zip(paths, errors, strict=True):
        if error:
            raise UnreadableImageError(path, error)


def image_batches(paths: Sequence[Path], transform: Callable[[Any], torch.Tensor],
                  blank_shape: tuple[int, ...], batch_size: int, num_workers: int = 0,
                  pin_memory: bool = False) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """(paths, decoded batch) pairs in order, decoded by ``num_workers`` processes; the first
    unreadable image raises ``UnreadableImageError`` after the batches before it were yielded.
    The loader draws its worker seeds from a private generator, never from torch's global one,
    so extracting inside a seeded fit does not change the fit's random stream."""
    paths = list(paths)
    loader = torch.utils.data.DataLoader(
        ImageFiles(paths, transform, blank_shape), batch_size=batch_size, num_workers=num_workers,
        pin_memory=pin_memory, generator=torch.Generator().manual_seed(0),
    )
    done = 0
    for images, errors in loader:
        batch = paths[done:done + len(errors)]
        check_decoded(batch, errors)
        done += len(batch)
        yield batch, images


def default_workers(device: torch.device) -> int:
    """Decoding processes: none on a CPU, whose cores are the backbone's; up to 8 on a GPU,
    which would otherwise wait for the decoder."""
    return 0 if device.type == "cpu" else min(8, max((os.cpu_count() or 1) - 1, 0))


class ItemFeatureCache:
    """Per-item features on disk under ``<root>/encoder-features/<identity digest>/``.

    An entry is keyed by the file's resolved path, size and modification time, so an edited
    image is recomputed; entries are written atomically, so a killed run leaves none half
    written and the next run resumes where it stopped."""

    def __init__(self, identity: str, root: Path | None = None):
        self.identity = identity
        name = hashlib.sha256(identity.encode()).hexdigest()[:24]
        self.folder = (root or cache_home()) / "encoder-features" / name

    def entry(self, path: Path) -> Path:
        try:
            stat = Path(path).stat()
        except OSError as exc:
            raise DataError(path, f"image file not found ({exc.strerror})") from exc
        key = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def missing(self, paths: Sequence[Path]) -> list[int]:
        """Positions of ``paths`` with no cached feature."""
        return [i for i, p in enumerate(paths) if not self.entry(p).is_file()]

    def put(self, paths: Sequence[Path], features: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for path, feature in zip(paths, features, strict=True):
            final = self.entry(path)
            partial = final.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(partial, np.asarray(feature, dtype=np.float32))
            partial.replace(final)

    def get(self, paths: Sequence[Path]) -> np.ndarray:
        return np.stack([np.load(self.entry(p)) for p in paths])


# prepare_once: per encoder object, and across encoders of one identity (bounded).
_BY_ENCODER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BY_IDENTITY: OrderedDict[tuple[str, str], Any] = OrderedDict()
_IDENTITY_SLOTS = 8


def items_fingerprint(items: Any) -> str:
    """A digest of a set of items (an array, or a sequence of paths, strings or sentence lists)."""
    digest = hashlib.sha256()
    if isinstance(items, np.ndarray | torch.Tensor):
        array = np.ascontiguousarray(items.cpu().numpy() if isinstance(items, torch.Tensor) else items)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    else:
        for item in items:
            digest.update(("\x1e".join(map(str, item)) if isinstance(item, list | tuple) else str(item)).encode())
            digest.update(b"\x1f")
    return digest.hexdigest()


def prepare_once(encoder: Any, items: Any) -> Any:
    """``encoder.prepare(items)``, computed once per encoder and set of items; encoders that
    declare an ``identity`` also share the result with every other encoder of that identity in
    the process. Callers must not modify the returned batch in place."""
    key = items_fingerprint(items)
    own = _BY_ENCODER.setdefault(encoder, {})
    if key in own:
        return own[key]
    identity = getattr(encoder, "identity", None)
    shared = (identity, key) if isinstance(identity, str) else None
    if shared is not None and shared in _BY_IDENTITY:
        _BY_IDENTITY.move_to_end(shared)
        own[key] = _BY_IDENTITY[shared]
        return own[key]
    own[key] = encoder.prepare(items)
    if shared is not None:
        _BY_IDENTITY[shared] = own[key]
        while len(_BY_IDENTITY) > _IDENTITY_SLOTS:
            _BY_IDENTITY.popitem(last=False)
    return own[key]
