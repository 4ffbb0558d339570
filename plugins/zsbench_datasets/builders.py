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


@attrs.frozen
class Cub(CubOptions):
    def build(self, root: Path) -> DatasetBundle:
        """CUB-200-2011; ``splits`` "auto" takes ``sent_splits.mat`` when present, else ``att_splits.mat``."""
        splits = self.splits
        if splits == "auto":
            splits = "sent_splits.mat" if (Path(root) / "sent_splits.mat").is_file() else "att_splits.mat"
        bundle = load_xlsa17_bundle("cub", root, features=self.features, splits=splits, text=self.text,
                                    images=self.images, raw_layout=cub_layout)
        changes: dict[str, Any] = {"prototype_captions": self.prototype_captions}
        if self.attributes == "cub-file":
            att = read_class_attributes(Path(root), bundle.class_names)
            info = f"class embeddings (CUB attributes file, {att.shape[1]}-d)"
            changes.update(class_embeddings=att, embeddings_info=info,
                           side_information=bundle.side_information.replace(bundle.embeddings_info, info))
        if self.caption_model is not None:
            if bundle.texts is None:
                raise DataError(Path(root) / "text_c10", "caption_model needs the per-image captions")
            changes.update(caption_embeddings=image_caption_embeddings(self.caption_model, bundle.texts),
                           caption_encoder=self.caption_model)
        return attrs.evolve(bundle, **changes)


@attrs.frozen
class Flo(FloOptions):
    def build(self, root: Path) -> DatasetBundle:
        """Oxford FLOWERS-102; class names come from ``cat_to_name.json`` when present."""
        if self.images and not (Path(root) / self.features).is_file() and has_raw_images(root):
            try:
                check_oxford_root(root, self.splits)  # read from the images alone: name what is missing
            except DataError as exc:  # a misspelled feature file is the likelier mistake: name it first
                raise DataError(Path(root) / self.features, f"feature file not found (the `features` option), so the "
                                                         f"images would be read instead, but: {exc}") from None
        return load_xlsa17_bundle("flo", root, features=self.features, splits=self.splits, text=self.text,
                                  images=self.images, raw_layout=oxford_layout,
                                  default_class_names=partial(flower_class_names, root))


@attrs.frozen
class Xlsa17(Xlsa17Options):
    def build(self, root: Path) -> DatasetBundle:
        """Any xlsa17-layout data set. ``root`` is its folder, or the folder holding it as
        ``<root>/<subset>`` (e.g. the extracted ``xlsa17/data`` folder with subset AWA2)."""
        root = Path(root)
        if self.subset and not (root / self.features).is_file() and (root / self.subset).is_dir():
            root = root / self.subset
        return load_xlsa17_bundle(self.subset or "xlsa17", root, features=self.features, splits=self.splits, text=self.text)


@attrs.frozen
class Synthetic(SyntheticOptions):
    def build(self, root: Path) -> DatasetBundle:
        """The synthetic data set, in ``<root>/synthetic-<parameters>/`` (each image has ~10 attribute
        sentences)."""
        params = dict(num_classes=self.num_classes, per_class=self.per_class, feature_dim=self.feature_dim,
                      embedding_dim=self.embedding_dim, noise=self.noise, seed=self.seed)
        folder = write_synthetic(Path(root) / variant_name(**params), **params)
        return load_xlsa17_bundle("synthetic", folder, text=self.text, images=self.images,
                                  raw_layout=oxford_layout)
