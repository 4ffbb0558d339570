"""Build a ``DatasetBundle`` from a folder in the xlsa17 layout, with optional Reed et al.
texts and raw images: the loader behind the ``cub``, ``flo``, ``xlsa17`` and ``synthetic``
Dataset plugins.

Folder layout (all but the split file optional, as long as features or images are there)::

    <root>/res101.mat          feature file (any name, same layout)
    <root>/att_splits.mat      split file with class embeddings
    <root>/sent_splits.mat     CUB: Reed et al.'s class sentence embeddings (with the same split)
    <root>/text_c10/<class>/<image>.txt
    <root>/CUB_200_2011/...    or  <root>/jpg/ + imagelabels.mat + setid.mat (raw images)

The per-instance table (features, labels, image names, texts) is cached as memory-mapped Arrow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from zsbench.data import cache
from zsbench.data.raw_images import RawImages, resolve_image_files
from zsbench.data.reed_text import read_texts
from zsbench.data.xlsa17 import load_features, load_splits
from zsbench.errors import DataError, UserError
from zsbench.interfaces import DatasetBundle

TEXT_MODES = ("auto", "instance", "none")
TEXT_FOLDER = "text_c10"
SENTENCES_FILE = "sent_splits.mat"  # xlsa17 CUB's class-level sentence embeddings
TEXT_FORMAT = "cleaned-v2"  # in the table's cache key: bump when reading texts changes


def load_xlsa17_bundle(
    name: str,
    root: Path,
    *,
    features: str = "res101.mat",
    splits: str = "att_splits.mat",
    text: str = "auto",
    images: bool = True,
    raw_layout: Callable[[Path], RawImages | None] | None = None,
    default_class_names: Callable[[int], tuple[str, ...]] | None = None,
) -> DatasetBundle:
    """Read, check and combine a data set's files into a bundle.

    ``text``: "auto" uses ``text_c10/`` when it exists, "instance" requires it, "none" ignores
    it (class embeddings are then the only side information). ``images``: attach raw image
    paths when ``raw_layout(root)`` finds an image folder. ``default_class_names(C)`` names the
    classes when the split file has no ``allclasses_names``.
    """
    root = Path(root)
    if text not in TEXT_MODES:
        raise UserError(f"dataset {name!r}: option text={text!r} is not one of {', '.join(TEXT_MODES)}")
    if not root.is_dir():
        from zsbench.data.download import REGISTRY as DOWNLOADABLE

        fetch = f"run `zsbench data download {name} --root {root}`, " if name in DOWNLOADABLE else ""
        raise DataError(root, f"data folder of {name!r} not found: {fetch}set the dataset's root option, "
                              f"or set ZSBENCH_DATA to the folder that holds {root.name}/ (data sets without "
                              "a root are looked for in $ZSBENCH_DATA/<data set>)")
    feature_path, split_path, text_dir = root / features, root / splits, root / TEXT_FOLDER
    if text == "instance" and not text_dir.is_dir():
        raise DataError(text_dir, "per-image texts requested (text: instance) but the folder is "
                                  "missing; download them or use text: auto / none")
    use_text = text != "none" and text_dir.is_dir()
    raw = raw_layout(root) if images and raw_layout is not None else None
    table = _instance_table(feature_path, raw, text_dir if use_text else None)
    labels = cache.read_column(table, "label")
    split_file = load_splits(split_path, len(labels), labels)
    class_names = split_file.class_names
    if class_names is None:
        count = len(split_file.class_embeddings)
        class_names = default_class_names(count) if default_class_names else tuple(
            f"class_{k:03d}" for k in range(1, count + 1))
    has_features = "features" in table.column_names
    if raw is not None and not has_features:
        labels = _labels_by_name(labels, raw.class_names, class_names)
    image_files = _image_files(table, raw, feature_path if has_features else None)
    embeddings = split_file.class_embeddings
    sentence_path, sentence_files = root / SENTENCES_FILE, ()
    sentences = embeddings if split_path.name == SENTENCES_FILE else None
    if sentences is None and sentence_path.is_file():
        sentences, sentence_files = _class_sentences(sentence_path, labels, class_names), (sentence_path,)
    embeddings_info = f"class embeddings ({split_path.stem.split('_')[0]}, {embeddings.shape[1]}-d)"
    side = [embeddings_info]
    if use_text:
        side.insert(0, f"per-image text ({TEXT_FOLDER})")
    return DatasetBundle(
        name=name,
        labels=labels,
        class_names=tuple(class_names),
        splits=split_file.splits,
        features=cache.read_matrix(table, "features") if has_features else None,
        feature_name=feature_path.stem if has_features else None,
        image_files=image_files,
        texts=cache.read_column(table, "texts") if use_text else None,
        class_embeddings=embeddings,
        class_sentences=sentences,
        side_information=" + ".join(side),
        embeddings_info=embeddings_info,
        source=f"{root} ({', '.join(p.name for p in (feature_path, split_path, text_dir) if p.exists())})",
        origins={"features": str(feature_path), "class_embeddings": f"{split_path}: `att`"},
        files=_files_read(feature_path, split_path, text_dir if use_text else None, raw, image_files)
        + sentence_files,
    )


def _class_sentences(path: Path, labels: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """``att`` of a second split file (CUB's ``sent_splits.mat``) as rows of ``class_names``: its
    classes must be the same ones, in any order when it names them."""
    other = load_splits(path, len(labels), labels)
    if other.class_names is None:
        if len(other.class_embeddings) != len(class_names):
            raise DataError(path, f"`att` describes {len(other.class_embeddings)} classes, but the "
                                  f"split file describes {len(class_names)}")
        return other.class_embeddings
    missing = sorted(set(class_names) - set(other.class_names))
    if missing:
        raise DataError(path, f"`allclasses_names` lacks class {missing[0]!r} of the split file "
                              f"({len(missing)} missing)")
    position = {n: k for k, n in enumerate(other.class_names)}
    return other.class_embeddings[[position[n] for n in class_names]]


def _files_read(feature_path: Path, split_path: Path, text_dir: Path | None, raw: RawImages | None,
                image_files: tuple[Path, ...] | None) -> tuple[Path, ...]:
    """Every file the bundle was built from, for the data identity of its results."""
    files = [p for p in (feature_path, split_path) if p.is_file()]
    if text_dir is not None:
        files += [Path(path) for path, _ in cache._walk(str(text_dir))]
    if raw is not None:
        files += raw.sources
    return tuple(files) + tuple(image_files or ())


def _instance_table(feature_path: Path, raw: RawImages | None, text_dir: Path | None):
    """Per-instance columns from the feature file (or, without one, the raw image layout)."""
    if not feature_path.is_file() and raw is None:
        raise DataError(feature_path, "feature file not found, and no raw images to read instead: "
                                      "run `zsbench data download` or set the `features` option")
    sources = [feature_path] if feature_path.is_file() else list(raw.sources)
    if text_dir is not None:
        sources.append(text_dir)
    key = cache.source_key(sources, texts=TEXT_FORMAT if text_dir is not None else False,
                           raw=raw is not None)

    def build() -> dict[str, pa.Array]:
        if feature_path.is_file():
            features, labels, stored = load_features(feature_path)
            columns = {"features": cache.matrix_column(features)}
        else:
            order = raw.xlsa17_order
            labels, stored = raw.labels[order], tuple(raw.relative[i] for i in order)
            columns = {}
        columns["label"] = pa.array(labels, type=pa.int64())
        if stored is not None:
            columns["image_file"] = pa.array(stored, type=pa.string())
        if text_dir is not None:
            if stored is None:
                raise DataError(feature_path, "has no `image_files`, needed to match the texts of "
                                              f"{text_dir} to images")
            columns["texts"] = pa.array(read_texts(text_dir, stored, labels),
                                        type=pa.list_(pa.string()))
        return columns

    return cache.cached_table(key, build)


def _labels_by_name(labels: np.ndarray, raw_names: tuple[str, ...], names: tuple[str, ...]) -> np.ndarray:
    """Raw-layout class ids re-numbered to the split file's class order (its ``att`` columns),
    when the split file names every raw class; otherwise the raw ids already are that order."""
    if not set(raw_names) <= set(names):
        return labels
    position = {n: k for k, n in enumerate(names)}
    return np.array([position[n] for n in raw_names], dtype=np.int64)[labels]


def _image_files(table, raw: RawImages | None, feature_path: Path | None) -> tuple[Path, ...] | None:
    if raw is None or "image_file" not in table.column_names:
        return None
    stored = cache.read_column(table, "image_file")
    files = (resolve_image_files(stored, raw, feature_path) if feature_path is not None
             else tuple(raw.root / s for s in stored))
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        hint = ("set images: false to use the features file only" if feature_path is not None else
                "the images are the only instance input here: restore the missing files from the "
                "data set's image archive, or download the images again into a new folder "
                "(`zsbench data download <dataset> --images --root NEW_FOLDER`) and set the "
                "dataset's root to it")
        raise DataError(missing[0], f"image not found ({len(missing)} of {len(files)} missing "
                                    f"under {raw.root}); {hint}")
    return files
