"""Small FLO folders in the Oxford release layout (jpg/ + imagelabels.mat + setid.mat +
att_splits.mat) built from real images of ../shared/data/flo, for the raw-image path.

The split file is MADE HERE in the xlsa17 layout from the real class roles: unseen = Oxford
classes 1-20 (test_unseen); validation-unseen = 21-40 (val; their first image in trainval, the
second in test_seen); classes 41-102 are train (both images, in trainval); ``att`` is real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from zsbench.data.xlsa17 import read_mat


def write_flo_subset(root: Path, flo: Path, images: dict[str, Path]) -> Path:
    """``root`` with ``jpg/`` linking ``images`` (Oxford name -> file), two per class."""
    labels_all = read_mat(flo / "imagelabels.mat")["labels"].ravel().astype(int)
    root.mkdir(parents=True, exist_ok=True)
    (root / "jpg").mkdir()
    names = sorted(images)
    for k, name in enumerate(names, start=1):
        (root / "jpg" / f"image_{k:05d}.jpg").symlink_to(images[name])
    labels = np.array([labels_all[int(n[6:11]) - 1] for n in names])
    (root / "cat_to_name.json").symlink_to(flo / "cat_to_name.json")
    scipy.io.savemat(root / "imagelabels.mat", {"labels": labels[None, :].astype(np.uint8)})
    ids = np.arange(1, len(names) + 1)
    scipy.io.savemat(root / "setid.mat", {"trnid": ids[None, :].astype(np.uint16),
                                          "valid": np.zeros((1, 0), np.uint16),
                                          "tstid": np.zeros((1, 0), np.uint16)})
    first = np.array([i == int(np.flatnonzero(labels == labels[i])[0]) for i in range(len(labels))])
    unseen, val_classes = labels <= 20, (labels > 20) & (labels <= 40)
    train = ~unseen & ~val_classes  # both images: the validation stage holds one out per class
    loc = {
        "trainval_loc": ids[train | (val_classes & first)], "test_seen_loc": ids[val_classes & ~first],
        "test_unseen_loc": ids[unseen], "val_loc": ids[val_classes & first], "train_loc": ids[train],
    }
    att = read_mat(flo / "att_splits.mat")["att"]
    scipy.io.savemat(root / "att_splits.mat", {**{k: v[:, None].astype(np.float64) for k, v in loc.items()},
                                               "att": att})
    return root


def sample_images(flo: Path) -> dict[str, Path]:
    """The 204 downscaled real images (two per class)."""
    return {p.name: p for p in sorted((flo / "images_sample" / "jpg").glob("*.jpg"))}


def originals_and_samples(flo: Path) -> dict[str, Path]:
    """The 102 original-resolution images, completed to two per class by the sample copies."""
    out = sample_images(flo)
    out.update({p.name: p for p in (flo / "images_fullres" / "jpg").glob("*.jpg")})
    return out
