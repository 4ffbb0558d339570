"""Write tiny xlsa17-style files, as MATLAB v5 (scipy) or v7.3 (HDF5, MATLAB's conventions)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

_CLASSES = {np.dtype("float64"): "double", np.dtype("float32"): "single",
            np.dtype("int32"): "int32", np.dtype("int64"): "int64", np.dtype("uint16"): "uint16",
            np.dtype("uint8"): "uint8"}


def cell(strings) -> np.ndarray:
    """A MATLAB N x 1 cell array of strings, as scipy writes it."""
    return np.array([[s] for s in strings], dtype=object)


def write_v73(path: Path, variables: dict) -> None:
    """A MATLAB v7.3 file: HDF5 with reversed axes, chars as uint16, cells as references."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for name, value in variables.items():
            _put(f, refs, name, value)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, written by zsbench tests".ljust(116))


def _put(parent, refs, name, value):
    value = np.asarray(value)
    if value.dtype == object:
        out = np.empty(value.shape[::-1], dtype=h5py.ref_dtype)
        for i, item in enumerate(value.ravel(order="F")):
            child = _put(refs, refs, f"{name}_{i}", np.asarray(item).ravel()[0])
            out[np.unravel_index(i, value.shape[::-1], order="C")] = child.ref
        ds = parent.create_dataset(name, data=out)
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
        return ds
    if value.dtype.kind == "U":
        chars = np.array([ord(c) for c in str(value)], dtype=np.uint16)[:, None]
        ds = parent.create_dataset(name, data=chars)
        ds.attrs["MATLAB_class"] = np.bytes_("char")
        ds.attrs["MATLAB_int_decode"] = np.int32(2)
        return ds
    ds = parent.create_dataset(name, data=np.atleast_2d(value).T)
    ds.attrs["MATLAB_class"] = np.bytes_(_CLASSES[value.dtype])
    return ds


def write_mat(path: Path, variables: dict, version: str = "5") -> Path:
    if version == "7.3":
        write_v73(path, variables)
    else:
        scipy.io.savemat(path, variables)
    return path


def tiny_xlsa17(root: Path, version: str = "5", features_layout: str = "DxN", **overrides) -> dict:
    """A consistent 6-class data set (2 unseen, 2 validation-unseen, 2 train classes, 4 images
    each): res101.mat + att_splits.mat. ``overrides`` replace split-file variables (None
    removes one). Returns what was written, 0-based, for assertions."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 4)
    features = rng.normal(size=(24, 5)).astype(np.float32)
    files = [f"/elsewhere/images/{c + 1:03d}.Class_{c + 1}/img_{i:02d}.jpg"
             for i, c in enumerate(labels)]
    root.mkdir(parents=True, exist_ok=True)
    write_mat(root / "res101.mat", {
        "features": features.T if features_layout == "DxN" else features,
        "labels": (labels + 1.0)[:, None],
        "image_files": cell(files),
    }, version)
    unseen, val, train = (0, 1), (2, 3), (4, 5)
    test_seen = np.array([i for c in (*val, *train) for i in np.flatnonzero(labels == c)[:1]])
    splits = {
        "trainval": np.setdiff1d(np.flatnonzero(~np.isin(labels, unseen)), test_seen),
        "test_seen": test_seen,
        "test_unseen": np.flatnonzero(np.isin(labels, unseen)),
        "train": np.flatnonzero(np.isin(labels, train)),
        "val": np.flatnonzero(np.isin(labels, val)),
    }
    att = rng.normal(size=(6, 3))
    variables = {f"{k}_loc": (v + 1)[:, None].astype(np.uint16) for k, v in splits.items()}
    variables |= {"att": att.T, "allclasses_names": cell(f"{c + 1:03d}.Class_{c + 1}" for c in range(6))}
    for key, value in overrides.items():
        if value is None:
            variables.pop(key)
        else:
            variables[key] = value
    write_mat(root / "att_splits.mat", variables, version)
    return {"labels": labels, "features": features, "files": files, "splits": splits, "att": att}


def write_texts(root: Path, files, labels, per_image: int = 3) -> None:
    """Reed-style text_c10/<class folder>/<image stem>.txt for each image."""
    for f, label in zip(files, labels, strict=True):
        folder = root / "text_c10" / Path(f).parent.name
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"sentence {k} about class {label} image {Path(f).stem}" for k in range(per_image)]
        (folder / f"{Path(f).stem}.txt").write_text("\n".join(lines) + "\n")
