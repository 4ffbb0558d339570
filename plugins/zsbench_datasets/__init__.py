"""Built-in Dataset plugins: ``cub``, ``flo``, ``xlsa17`` (any data set in that layout) and
``synthetic``.

Each reads a folder in the xlsa17 layout (feature file + split file), adds Reed et al.
per-image texts from ``text_c10/`` and raw image paths when they are there, and checks every
file on the way (see ``zsbench.data``). ``zsbench data download cub|flo`` fills such a folder.
The options are declared here; the loaders (``builders``) are imported when a run loads data.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

import attrs

import zsbench
from zsbench import ge, integer, one_of, option
from zsbench.side_information import PROTOTYPE_CAPTIONS

Text = Literal["auto", "instance", "none"]
TEXT_DOC = "per-image sentences: `auto` (`text_c10/` when present), `instance` (required) or `none`"
text_option = option("auto", one_of("auto", "instance", "none"), doc=TEXT_DOC)


@zsbench.component("dataset", "cub", build="zsbench_datasets.builders:Cub")
@attrs.frozen
class CubOptions:
    """CUB-200-2011 (Xian et al. GZSL split, 150 seen / 50 unseen birds), Reed et al. texts.

    Any subset of CUB's classes in the same layout works too (e.g. ``cub-subset``: 10 classes,
    3 unseen, with its own split file): class ids follow the split file.
    """

    features: str = option("res101.mat", doc="the feature file")
    splits: str = option("auto", doc="`auto`: `sent_splits.mat` (class sentence embeddings) when present, "
                                     "else `att_splits.mat` (312 attributes); or a file name")
    text: Text = text_option
    images: bool = option(True, doc="attach `CUB_200_2011/images` paths when that folder is there")
    attributes: str = option("split-file", one_of("split-file", "cub-file"),
                             doc="`split-file`: the split file's `att`; `cub-file`: CUB's "
                                 "`class_attribute_labels_continuous.txt`, L2-normalised per class as xlsa17's `att`")
    caption_model: str | None = option(None, doc="a frozen sentence model (`all-MiniLM-L6-v2` or a local model folder) "
                                             "whose per-image caption embeddings give class-mean caption embeddings "
                                             "(a method's `side_information: caption-means`)")
    prototype_captions: str = option("stage", one_of(*PROTOTYPE_CAPTIONS),
                                     doc="`stage` (the paper's: every image of a stage describes its class) or "
                                         "`unscored` (no scored image's captions describe a class)")

    def __attrs_post_init__(self) -> None:
        if self.caption_model is not None and self.text == "none":
            raise zsbench.OptionError("caption_model embeds the per-image captions, which text: none drops")


@zsbench.component("dataset", "flo", build="zsbench_datasets.builders:Flo")
@attrs.frozen
class FloOptions:
    """Oxford FLOWERS-102 (Xian et al. GZSL split, 82 seen / 20 unseen), Reed et al. texts."""

    features: str = option("res101.mat", doc="the feature file (e.g. `efficientnet_lite0.mat`)")
    splits: str = option("att_splits.mat", doc="the split file")
    text: Text = text_option
    images: bool = option(True, doc="attach `jpg/` image paths when the Oxford files are there")


@zsbench.component("dataset", "xlsa17", build="zsbench_datasets.builders:Xlsa17")
@attrs.frozen
class Xlsa17Options:
    """Any data set in the xlsa17 layout (AWA2, SUN, APY, ...): features + split file."""

    subset: str = option("", doc="the sub-folder of `root` holding the data set, and its name "
                                 "(`name` is the spec's row label)")
    features: str = option("res101.mat", doc="the feature file")
    splits: str = option("att_splits.mat", doc="the split file")
    text: Text = text_option


@zsbench.component("dataset", "synthetic", build="zsbench_datasets.builders:Synthetic")
@attrs.frozen
class SyntheticOptions:
    """A small synthetic fine-grained data set (written on first use, in the real formats)."""

    num_classes: int = option(30, integer(5), doc="classes")
    per_class: int = option(40, integer(5), doc="images per class")
    feature_dim: int = option(64, integer(1), doc="feature width")
    embedding_dim: int = option(32, integer(1), doc="class-embedding width")
    noise: float = option(1.5, ge(0), doc="feature noise; higher is harder")
    seed: int = option(0, integer(0), doc="the generator's seed (the data, not the run)")
    text: Text = text_option
    images: bool = option(True, doc="attach the written images")


DATASETS = (CubOptions, FloOptions, Xlsa17Options, SyntheticOptions)


@zsbench.hookimpl
def register_datasets(register):
    for declared in DATASETS:
        register(declared)


def __getattr__(name: str) -> Any:
    if name in ("Cub", "Flo", "Xlsa17", "Synthetic"):  # the loaders (numpy, scipy)
        return getattr(importlib.import_module("zsbench_datasets.builders"), name)
    raise AttributeError(f"module 'zsbench_datasets' has no attribute {name!r}")
