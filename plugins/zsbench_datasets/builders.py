"""The built-in data sets' loaders (numpy, scipy), imported when a run loads one; their options
are declared in ``zsbench_datasets``.

Each reads a folder in the xlsa17 layout (feature file + split file), adds Reed et al.
per-image texts from ``text_c10/`` and raw image paths when they are there, and checks every
file on the way (see ``zsbench.data``). ``zsbench data download cub|flo`` fills such a folder.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import attrs

from zsbench.data.bundle import load_xlsa17_bundle
from zsbench.data.class_attributes import read_class_attributes
from zsbench.data.raw_images import (
    check_oxford_root,
    cub_layout,
    flower_class_names,
    has_raw_images,
    oxford_layout,
)
from zsbench.data.sentence_embeddings import image_caption_embeddings
from zsbench.data.synthetic import variant_name, write_synthetic
from zsbench.errors import DataError
from zsbench.interfaces import DatasetBundle
from zsbench_datasets import CubOptions, FloOptions, SyntheticOptions, Xlsa17Options


def build_cub(root: Path, **options: Any) -> DatasetBundle:
    """CUB-200-2011; ``splits`` "auto" takes ``sent_splits.mat`` when present, else ``att_splits.mat``."""
    o = CubOptions(**options)
    splits = o.splits
    if splits == "auto":
        splits = "sent_splits.mat" if (Path(root) / "sent_splits.mat").is_file() else "att_splits.mat"
    bundle = load_xlsa17_bundle("cub", root, features=o.features, splits=splits, text=o.text,
                                images=o.images, raw_layout=cub_layout)
    changes: dict[str, Any] = {"prototype_captions": o.prototype_captions}
    if o.attributes == "cub-file":
        att = read_class_attributes(Path(root), bundle.class_names)
        info = f"class embeddings (CUB attributes file, {att.shape[1]}-d)"
        changes.update(class_embeddings=att, embeddings_info=info,
                       side_information=bundle.side_information.replace(bundle.embeddings_info, info))
    if o.caption_model is not None:
        if bundle.texts is None:
            raise DataError(Path(root) / "text_c10", "caption_model needs the per-image captions")
        changes.update(caption_embeddings=image_caption_embeddings(o.caption_model, bundle.texts),
                       caption_encoder=o.caption_model)
    return attrs.evolve(bundle, **changes)


def build_flo(root: Path, **options: Any) -> DatasetBundle:
    """Oxford FLOWERS-102; class names come from ``cat_to_name.json`` when present."""
    o = FloOptions(**options)
    if o.images and not (Path(root) / o.features).is_file() and has_raw_images(root):
        try:
            check_oxford_root(root, o.splits)  # read from the images alone: name what is missing
        except DataError as exc:  # a misspelled feature file is the likelier mistake: name it first
            raise DataError(Path(root) / o.features, f"feature file not found (the `features` option), so the "
                                                     f"images would be read instead, but: {exc}") from None
    return load_xlsa17_bundle("flo", root, features=o.features, splits=o.splits, text=o.text,
                              images=o.images, raw_layout=oxford_layout,
                              default_class_names=partial(flower_class_names, root))


def build_xlsa17(root: Path, **options: Any) -> DatasetBundle:
    """Any xlsa17-layout data set. ``root`` is its folder, or the folder holding it as
    ``<root>/<subset>`` (e.g. the extracted ``xlsa17/data`` folder with subset AWA2)."""
    o = Xlsa17Options(**options)
    root = Path(root)
    if o.subset and not (root / o.features).is_file() and (root / o.subset).is_dir():
        root = root / o.subset
    return load_xlsa17_bundle(o.subset or "xlsa17", root, features=o.features, splits=o.splits, text=o.text)


def build_synthetic(root: Path, **options: Any) -> DatasetBundle:
    """The synthetic data set, in ``<root>/synthetic-<parameters>/`` (each image has ~10 attribute
    sentences)."""
    o = SyntheticOptions(**options)
    params = dict(num_classes=o.num_classes, per_class=o.per_class, feature_dim=o.feature_dim,
                  embedding_dim=o.embedding_dim, noise=o.noise, seed=o.seed)
    folder = write_synthetic(Path(root) / variant_name(**params), **params)
    return load_xlsa17_bundle("synthetic", folder, text=o.text, images=o.images,
                              raw_layout=oxford_layout)
