"""Built-in Dataset plugins: ``cub``, ``flo``, ``xlsa17`` (any data set in that layout) and
``synthetic``.

Each reads a folder in the xlsa17 layout (feature file + split file), adds Reed et al.
per-image texts from ``text_c10/`` and raw image paths when they are there, and checks every
file on the way (see ``zsbench.data``). ``zsbench data download cub|flo`` fills such a folder.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import attrs

import zsbench
from zsbench.data.bundle import load_xlsa17_bundle
from zsbench.data.class_attributes import read_class_attributes
from zsbench.data.raw_images import cub_layout, flower_class_names, oxford_layout
from zsbench.data.sentence_embeddings import image_caption_embeddings
from zsbench.data.synthetic import variant_name, write_synthetic
from zsbench.errors import DataError, UserError
from zsbench.interfaces import PROTOTYPE_CAPTIONS, DatasetBundle


def build_cub(root: Path, features: str = "res101.mat", splits: str = "auto", text: str = "auto",
              images: bool = True, attributes: str = "split-file", caption_encoder: str | None = None,
              prototype_captions: str = "stage") -> DatasetBundle:
    """CUB-200-2011 (Xian et al. GZSL split, 150 seen / 50 unseen birds), Reed et al. texts.

    Any subset of CUB's classes in the same layout works too (e.g. ``cub-subset``: 10 classes,
    3 unseen, with its own split file): class ids follow the split file. ``splits``: "auto"
    takes ``sent_splits.mat`` (class sentence embeddings) when present, else ``att_splits.mat``
    (312 attributes). ``text``: auto | instance | none. ``images``: attach
    ``CUB_200_2011/images`` paths when that folder is there. ``attributes``: "split-file" (the
    split file's ``att``) or "cub-file" (CUB's ``class_attribute_labels_continuous.txt``,
    L2-normalised per class as xlsa17's ``att`` is). ``caption_encoder``: a frozen sentence
    encoder ("all-MiniLM-L6-v2" or a local model folder) whose per-image caption embeddings give
    class-mean caption embeddings (a method's ``side_information: caption-means``).
    ``prototype_captions``: "stage" (the paper's: every image of a stage describes its class) or
    "unscored" (no scored image's captions describe a class; see ``zsbench.protocol``).
    """
    if splits == "auto":
        splits = "sent_splits.mat" if (Path(root) / "sent_splits.mat").is_file() else "att_splits.mat"
    for option, value, allowed in (("attributes", attributes, ("split-file", "cub-file")),
                                   ("prototype_captions", prototype_captions, PROTOTYPE_CAPTIONS)):
        if value not in allowed:
            raise UserError(f"dataset 'cub': option {option}={value!r} is not one of {', '.join(allowed)}")
    if caption_encoder is not None and text == "none":
        raise UserError("dataset 'cub': caption_encoder embeds the per-image captions, which text: none drops")
    bundle = load_xlsa17_bundle("cub", root, features=features, splits=splits, text=text,
                                images=images, raw_layout=cub_layout)
    changes: dict = {"prototype_captions": prototype_captions}
    if attributes == "cub-file":
        att = read_class_attributes(Path(root), bundle.class_names)
        info = f"class embeddings (CUB attributes file, {att.shape[1]}-d)"
        changes.update(class_embeddings=att, embeddings_info=info,
                       side_information=bundle.side_information.replace(bundle.embeddings_info, info))
    if caption_encoder is not None:
        if bundle.texts is None:
            raise DataError(Path(root) / "text_c10", "caption_encoder needs the per-image captions")
        changes.update(caption_embeddings=image_caption_embeddings(caption_encoder, bundle.texts),
                       caption_encoder=caption_encoder)
    return attrs.evolve(bundle, **changes)


def build_flo(root: Path, features: str = "res101.mat", splits: str = "att_splits.mat",
              text: str = "auto", images: bool = True) -> DatasetBundle:
    """Oxford FLOWERS-102 (Xian et al. GZSL split, 82 seen / 20 unseen), Reed et al. texts.

    Class names come from ``cat_to_name.json`` when present. ``text``: auto | instance | none.
    ``images``: attach ``jpg/`` paths when the Oxford files are there.
    """
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
