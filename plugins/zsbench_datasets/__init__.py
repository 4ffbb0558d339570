"""Built-in Dataset plugins: ``cub``, ``flo``, ``xlsa17`` (any data set in that layout) and
``synthetic``.

Each reads a folder in the xlsa17 layout (feature file + split file), adds Reed et al.
per-image texts from ``text_c10/`` and raw image paths when they are there, and checks every
file on the way (see ``zsbench.data``). ``zsbench data download cub|flo`` fills such a folder.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import zsbench
from zsbench.data.bundle import load_xlsa17_bundle
from zsbench.data.raw_images import (
    check_oxford_root,
    cub_layout,
    flower_class_names,
    has_raw_images,
    oxford_layout,
)
from zsbench.data.synthetic import variant_name, write_synthetic
from zsbench.interfaces import DatasetBundle


def build_cub(root: Path, features: str = "res101.mat", splits: str = "auto", text: str = "auto",
              images: bool = True) -> DatasetBundle:
    """CUB-200-2011 (Xian et al. GZSL split, 150 seen / 50 unseen birds), Reed et al. texts.

    ``splits``: "auto" takes ``sent_splits.mat`` (class sentence embeddings) when present, else
    ``att_splits.mat`` (312 attributes). ``text``: auto | instance | none. ``images``: attach
    ``CUB_200_2011/images`` paths when that folder is there.
    """
    if splits == "auto":
        splits = "sent_splits.mat" if (Path(root) / "sent_splits.mat").is_file() else "att_splits.mat"
    return load_xlsa17_bundle("cub", root, features=features, splits=splits, text=text,
                              images=images, raw_layout=cub_layout)


def build_flo(root: Path, features: str = "res101.mat", splits: str = "att_splits.mat",
              text: str = "auto", images: bool = True) -> DatasetBundle:
    """Oxford FLOWERS-102 (Xian et al. GZSL split, 82 seen / 20 unseen), Reed et al. texts.

    Class names come from ``cat_to_name.json`` when present. ``text``: auto | instance | none.
    ``images``: attach ``jpg/`` paths when the Oxford files are there.
    """
    if images and not (Path(root) / features).is_file() and has_raw_images(root):
        check_oxford_root(root, splits)  # read from the images alone: name what is missing
    return load_xlsa17_bundle("flo", root, features=features, splits=splits, text=text,
                              images=images, raw_layout=oxford_layout,
                              default_class_names=partial(flower_class_names, root))


def build_xlsa17(root: Path, subset: str = "", features: str = "res101.mat",
                 splits: str = "att_splits.mat", text: str = "auto") -> DatasetBundle:
    """Any data set in the xlsa17 layout (AWA2, SUN, APY, ...): features + split file.

    ``root`` is the data set's folder, or the folder holding it as ``<root>/<subset>`` (e.g.
    the extracted ``xlsa17/data`` folder with subset AWA2). Per-image texts are read from
    ``text_c10/`` when present. (``subset``, not ``name``: ``name`` is a spec's label key.)
    """
    root = Path(root)
    if subset and not (root / features).is_file() and (root / subset).is_dir():
        root = root / subset
    return load_xlsa17_bundle(subset or "xlsa17", root, features=features, splits=splits, text=text)


def build_synthetic(root: Path, num_classes: int = 30, per_class: int = 40, feature_dim: int = 64,
                    embedding_dim: int = 32, noise: float = 1.5, seed: int = 0,
                    text: str = "auto", images: bool = True) -> DatasetBundle:
    """A small synthetic fine-grained data set (written on first use, in the real formats).

    Lives in ``<root>/synthetic-<parameters>/``; each image has ~10 attribute sentences, and
    ``noise`` scales the feature noise (higher is harder).
    """
    params = dict(num_classes=num_classes, per_class=per_class, feature_dim=feature_dim,
                  embedding_dim=embedding_dim, noise=noise, seed=seed)
    folder = write_synthetic(Path(root) / variant_name(**params), **params)
    return load_xlsa17_bundle("synthetic", folder, text=text, images=images,
                              raw_layout=oxford_layout)


@zsbench.hookimpl
def register_datasets(register):
    register("cub", build_cub)
    register("flo", build_flo)
    register("xlsa17", build_xlsa17)
    register("synthetic", build_synthetic)
