"""The original image layouts, for encoders that read pixels.

- CUB_200_2011: ``images.txt`` (id, relative path), ``image_class_labels.txt`` (id, class),
  ``classes.txt`` (class id, name), ``images/<class folder>/<image>.jpg``.
- Oxford-102: ``jpg/image_%05d.jpg``, ``imagelabels.mat`` (``labels`` 1 x N, 1-based),
  ``setid.mat`` (``trnid``, ``valid``, ``tstid``: 1-based image ids).

xlsa17 feature files list images in their own order with another machine's paths, so images
are matched to feature rows by the tail of their path (``resolve_image_files``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from zsbench.data.xlsa17 import one_based_to_index, read_mat
from zsbench.errors import DataError


@attrs.frozen
class RawImages:
    """Images of a raw layout in its own order, with 0-based labels into ``class_names``."""

    root: Path  # the folder the relative paths start from
    relative: tuple[str, ...]  # posix paths under root, e.g. "001.Black_footed_Albatross/x.jpg"
    labels: np.ndarray
    class_names: tuple[str, ...]
    xlsa17_order: np.ndarray  # positions of the images in the order xlsa17 files use
    sources: tuple[Path, ...]  # the index files read, for cache keys
    official_splits: dict[str, np.ndarray] = attrs.field(factory=dict)  # 0-based positions

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(self.root / r for r in self.relative)

    def missing(self) -> list[Path]:
        return [f for f in self.files if not f.is_file()]


def _read_table(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise DataError(path, "file not found")
    rows = [line.split(maxsplit=columns - 1) for line in path.read_text().splitlines() if line.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != columns), None)
    if bad is not None:
        raise DataError(path, f"line {bad + 1} should have {columns} fields separated by spaces")
    return rows


def read_cub(root: Path) -> RawImages:
    """The CUB_200_2011 folder (the one holding ``images.txt``)."""
    root = Path(root)
    images = _read_table(root / "images.txt", 2)
    classes = _read_table(root / "classes.txt", 2)
    image_labels = dict(_read_table(root / "image_class_labels.txt", 2))
    missing = [i for i, _ in images if i not in image_labels]
    if missing:
        raise DataError(root / "image_class_labels.txt", f"no label for image id {missing[0]} of "
                                                         "images.txt")
    labels = one_based_to_index([int(image_labels[i]) for i, _ in images],
                                root / "image_class_labels.txt", "class id")
    if labels.max() >= len(classes):
        raise DataError(root / "image_class_labels.txt",
                        f"class id {labels.max() + 1} is not in classes.txt ({len(classes)} classes)")
    return RawImages(root / "images", tuple(p for _, p in images), labels,
                     tuple(name for _, name in classes), np.arange(len(images)),
                     tuple(root / f for f in ("images.txt", "classes.txt", "image_class_labels.txt")))


def read_oxford_flowers(root: Path) -> RawImages:
    """The Oxford-102 folder (``jpg/``, ``imagelabels.mat``, ``setid.mat``, optional
    ``cat_to_name.json``). xlsa17's FLO files list images as trnid, then valid, then tstid."""
    root = Path(root)
    labels_file, setid_file = root / "imagelabels.mat", root / "setid.mat"
    label_mat = read_mat(labels_file)
    if "labels" not in label_mat:
        raise DataError(labels_file, "missing field `labels`")
    labels = one_based_to_index(label_mat["labels"], labels_file, "labels")
    setid = read_mat(setid_file)
    splits = {}
    for field in ("trnid", "valid", "tstid"):
        if field not in setid:
            raise DataError(setid_file, f"missing field `{field}`")
        ids = one_based_to_index(setid[field], setid_file, field)
        if ids.size and ids.max() >= len(labels):
            raise DataError(setid_file, f"`{field}` holds image id {ids.max() + 1}, but "
                                        f"{labels_file.name} labels {len(labels)} images")
        splits[field] = ids
    order = np.concatenate([splits["trnid"], splits["valid"], splits["tstid"]])
    if np.unique(order).size != len(labels):
        raise DataError(setid_file, f"`trnid`, `valid` and `tstid` together should list each of the "
                                    f"{len(labels)} images once, found {np.unique(order).size} "
                                    f"distinct of {order.size}")
    relative = tuple(f"image_{i:05d}.jpg" for i in range(1, len(labels) + 1))
    names = flower_class_names(root, int(labels.max()) + 1)
    sources = tuple(p for p in (labels_file, setid_file, root / "cat_to_name.json") if p.is_file())
    return RawImages(root / "jpg", relative, labels, names, order, sources, splits)


def flower_class_names(root: Path, num_classes: int) -> tuple[str, ...]:
    """Oxford class names from ``cat_to_name.json`` (label -> name) when present, else
    ``class_001``, ``class_002``, ..."""
    path = Path(root) / "cat_to_name.json"
    if not path.is_file():
        return tuple(f"class_{k:03d}" for k in range(1, num_classes + 1))
    try:
        table = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"is not valid JSON: {exc}") from exc
    missing = [str(k) for k in range(1, num_classes + 1) if str(k) not in table]
    if missing:
        raise DataError(path, f"has no name for class(es) {', '.join(missing[:5])} "
                              f"(expected keys \"1\"..\"{num_classes}\")")
    return tuple(str(table[str(k)]) for k in range(1, num_classes + 1))


def resolve_image_files(stored: Sequence[str], raw: RawImages, source: Path) -> tuple[Path, ...]:
    """Local image paths for the ``image_files`` of a feature file (``source``), matched on as
    many trailing path parts as the raw layout's relative paths have."""
    depth = raw.relative[0].count("/") + 1 if raw.relative else 1
    local = {_tail(r, depth): raw.root / r for r in raw.relative}
    tails = [_tail(s, depth) for s in stored]
    unmatched = [t for t in tails if t not in local]
    if unmatched:
        raise DataError(source, f"`image_files` entry {unmatched[0]!r} has no image under "
                                f"{raw.root} ({len(unmatched)} of {len(tails)} unmatched)")
    return tuple(local[t] for t in tails)


def _tail(path: str, depth: int) -> str:
    """The last ``depth`` parts of a path written with either separator."""
    return "/".join(path.replace("\\", "/").rsplit("/", depth)[-depth:])


def cub_layout(root: Path) -> RawImages | None:
    """``<root>/CUB_200_2011`` when it holds the CUB image layout, else None."""
    folder = Path(root) / "CUB_200_2011"
    return read_cub(folder) if (folder / "images.txt").is_file() else None


def oxford_layout(root: Path) -> RawImages | None:
    """``<root>`` read as Oxford-102 when it holds ``jpg/`` and the label files, else None."""
    root = Path(root)
    present = [(root / "jpg").is_dir(), (root / "imagelabels.mat").is_file(), (root / "setid.mat").is_file()]
    return read_oxford_flowers(root) if all(present) else None


OXFORD_LAYOUT = (
    "expected the Oxford-102 layout: <root>/jpg/image_00001.jpg ... (the images), "
    "<root>/imagelabels.mat, <root>/setid.mat and the xlsa17 split file <root>/{splits}, with "
    "root the folder that holds jpg/ (`zsbench data download flo --images --root <root>` "
    "fetches all of them)"
)


def has_raw_images(root: Path) -> bool:
    """Whether ``root`` holds some of the Oxford-102 layout, or is its image folder."""
    root = Path(root)
    return root.is_dir() and (
        any((root / n).exists() for n in ("jpg", "imagelabels.mat", "setid.mat"))
        or next(root.glob("image_*.jpg"), None) is not None
    )


def check_oxford_root(root: Path, splits: str = "att_splits.mat") -> None:
    """For a folder read from raw images alone: raise a ``DataError`` naming the first missing
    file of the Oxford-102 layout, or a root that is the ``jpg/`` folder itself."""
    root = Path(root)
    layout = OXFORD_LAYOUT.format(splits=splits)
    if not (root / "jpg").is_dir() and next(root.glob("image_*.jpg"), None) is not None:
        raise DataError(root, f"this is the image folder itself; set root to its parent {root.parent}. "
                              + layout)
    for name in ("jpg", "imagelabels.mat", "setid.mat", splits):
        path = root / name
        if not (path.is_dir() if name == "jpg" else path.is_file()):
            raise DataError(path, f"not found (no feature file either, so the images are read). {layout}")
