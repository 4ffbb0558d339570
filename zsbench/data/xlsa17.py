"""Xian et al. (xlsa17) files: a feature file and a split file, MATLAB v5 or v7.3.

Feature file (``res101.mat`` layout): ``features`` D x N, ``labels`` N x 1 (1-based),
``image_files`` N x 1. Split file (``att_splits.mat`` / ``sent_splits.mat``): 1-based instance
indices ``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc``, ``train_loc``, ``val_loc``,
class side information ``att`` E x C and, when present, ``allclasses_names``.
Everything returned here is 0-based and instance-major (N x D, C x E); every inconsistency
raises ``DataError`` naming the file and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import scipy.io

from zsbench.errors import DataError, is_resource_error, resource_error
from zsbench.interfaces import SPLIT_NAMES, Splits

PathLike = str | os.PathLike


class FeatureFile(NamedTuple):
    features: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64, 0-based
    image_files: tuple[str, ...] | None  # as stored in the file (often another machine's paths)


class SplitFile(NamedTuple):
    splits: Splits
    class_embeddings: np.ndarray  # (C, E) float32
    class_names: tuple[str, ...] | None


def read_mat(path: PathLike) -> dict[str, Any]:
    """The variables of a MATLAB file, with MATLAB's shapes whatever the file version."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        if h5py.is_hdf5(path):
            return _read_v73(path)
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - scipy/h5py raise many types for a damaged file
        if is_resource_error(exc):
            raise resource_error(path, exc) from exc
        raise DataError(
            path, f"cannot read this MATLAB file ({type(exc).__name__}: {exc}); it may be truncated "
            "or not a .mat file: download it again"
        ) from exc


def _read_v73(path: Path) -> dict[str, Any]:
    # HDF5 stores MATLAB's column-major arrays with reversed axes: transpose them back.
    with h5py.File(path, "r") as f:
        return {k: _h5_value(f, f[k]) for k in f.keys()
                if not k.startswith("#") and isinstance(f[k], h5py.Dataset)}


def _h5_value(f: h5py.File, node: h5py.Dataset) -> np.ndarray:
    kind = node.attrs.get("MATLAB_class", b"double")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if node.attrs.get("MATLAB_empty", 0):
        return np.zeros((0, 0), dtype=object if kind in ("cell", "char") else float)
    data = node[()]
    if kind == "cell":
        out = np.empty(data.shape, dtype=object)
        for i in np.ndindex(data.shape):
            out[i] = _h5_value(f, f[data[i]])
        return out.T
    if kind == "char":
        rows = np.atleast_2d(np.asarray(data).T)
        return np.array(["".join(map(chr, row)) for row in rows])
    return np.asarray(data).T


def as_strings(value: Any) -> tuple[str, ...]:
    """A MATLAB cell array of strings (or a char matrix) as Python strings, in MATLAB order."""
    arr = np.asarray(value)
    if arr.dtype == object:
        return tuple("".join(as_strings(x)) for x in arr.ravel(order="F"))
    return tuple(str(s) for s in arr.ravel(order="F"))


def one_based_to_index(values: Any, path: PathLike, field: str) -> np.ndarray:
    """1-based integer indices or labels of a MATLAB file as a 0-based int64 vector."""
    arr = np.asarray(values)
    if arr.size and arr.dtype.kind not in "iuf":
        raise DataError(path, f"`{field}` must hold numbers, found {arr.dtype}")
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) > 1):
        raise DataError(path, f"`{field}` must be a vector, found shape {' x '.join(map(str, arr.shape))}")
    flat = arr.ravel()
    as_int = flat.astype(np.int64)
    if not np.array_equal(as_int, flat):
        raise DataError(path, f"`{field}` must hold whole numbers, found {flat[as_int != flat][0]}")
    if flat.size and as_int.min() < 1:
        raise DataError(path, f"`{field}` holds {as_int.min()}, but it is 1-based (MATLAB): "
                              "the smallest valid value is 1")
    return as_int - 1


def orient_rows(matrix: Any, rows: int, path: PathLike, field: str, rows_are: str) -> np.ndarray:
    """``matrix`` as ``rows`` x width: xlsa17 stores width x rows, but either layout is read.

    ``rows_are`` says where ``rows`` comes from, for the error message.
    """
    arr = np.asarray(matrix)
    if arr.ndim != 2:
        raise DataError(path, f"`{field}` must be a matrix, found {arr.ndim} dimensions")
    if arr.shape[1] == rows:
        return arr.T
    if arr.shape[0] == rows:
        return arr
    raise DataError(
        path, f"`{field}` has shape {arr.shape[0]} x {arr.shape[1]}, but neither axis matches the "
        f"{rows} {rows_are}: wrong matrix, or a file from another data set"
    )


def _require(mat: dict[str, Any], path: PathLike, fields: tuple[str, ...]) -> None:
    missing = [f for f in fields if f not in mat]
    if missing:
        raise DataError(path, f"missing field(s) {', '.join(f'`{f}`' for f in missing)} "
                              f"(found: {', '.join(sorted(mat)) or 'none'})")


def load_features(path: PathLike) -> FeatureFile:
    """Features (N x D float32), 0-based labels and image file names of a feature file."""
    mat = read_mat(path)
    _require(mat, path, ("features", "labels"))
    labels = one_based_to_index(mat["labels"], path, "labels")
    n = len(labels)
    if n == 0:
        raise DataError(path, "`labels` is empty")
    features = orient_rows(mat["features"], n, path, "features", "instances in `labels`")
    image_files = as_strings(mat["image_files"]) if "image_files" in mat else None
    if image_files is not None and len(image_files) != n:
        raise DataError(path, f"`image_files` has {len(image_files)} entries but `labels` has {n}")
    return FeatureFile(np.ascontiguousarray(features, dtype=np.float32), labels, image_files)


def load_splits(path: PathLike, num_instances: int, labels: np.ndarray | None = None) -> SplitFile:
    """The GZSL splits, class embeddings (C x E) and class names of a split file, checked.

    ``labels`` (0-based, from the feature file) enables the class-level checks: seen and
    unseen classes disjoint, validation classes disjoint from training classes.
    """
    mat = read_mat(path)
    _require(mat, path, tuple(f"{name}_loc" for name in SPLIT_NAMES) + ("att",))
    idx = {name: _split_indices(mat, path, name, num_instances) for name in SPLIT_NAMES}
    for a, b in (("trainval", "test_seen"), ("trainval", "test_unseen"),
                 ("test_seen", "test_unseen"), ("train", "val")):
        both = np.intersect1d(idx[a], idx[b])
        if both.size:
            raise DataError(path, f"`{a}_loc` and `{b}_loc` share {both.size} instance(s), "
                                  f"e.g. {both[0] + 1} (1-based); they must be disjoint")
    names = as_strings(mat["allclasses_names"]) if "allclasses_names" in mat else None
    if names is not None:
        num_classes, counted = len(names), "classes in `allclasses_names`"
    elif labels is not None:
        num_classes, counted = int(labels.max()) + 1, "classes in the feature file's `labels`"
    else:
        num_classes, counted = np.asarray(mat["att"]).shape[-1], "columns of `att`"
    att = orient_rows(mat["att"], num_classes, path, "att", counted)
    if labels is not None:
        if len(labels) != num_instances:
            raise DataError(path, f"got {len(labels)} labels for {num_instances} instances")
        if labels.max() >= num_classes:
            raise DataError(path, f"`att` describes {num_classes} classes, but the feature file's "
                                  f"labels go up to {labels.max() + 1}")
        _check_classes(path, idx, labels)
    splits = Splits(**idx)
    return SplitFile(splits, np.ascontiguousarray(att, dtype=np.float32), names)


def _split_indices(mat: dict[str, Any], path: PathLike, name: str, num_instances: int) -> np.ndarray:
    field = f"{name}_loc"
    loc = one_based_to_index(mat[field], path, field)
    if loc.size == 0:
        raise DataError(path, f"`{field}` is empty: every split needs instances")
    if loc.max() >= num_instances:
        raise DataError(path, f"`{field}` holds index {loc.max() + 1} (1-based), out of range: the "
                              f"feature file has {num_instances} instances")
    unique, counts = np.unique(loc, return_counts=True)
    if unique.size != loc.size:
        raise DataError(path, f"`{field}` lists instance {unique[counts > 1][0] + 1} (1-based) "
                              "more than once")
    return loc


def _class_list(classes: np.ndarray) -> str:
    shown = ", ".join(str(c + 1) for c in classes[:5])
    return shown + (f" and {classes.size - 5} more" if classes.size > 5 else "")


def _check_classes(path: PathLike, idx: dict[str, np.ndarray], labels: np.ndarray) -> None:
    classes = {name: np.unique(labels[i]) for name, i in idx.items()}
    seen = np.union1d(classes["trainval"], classes["test_seen"])
    problems = (
        (np.intersect1d(seen, classes["test_unseen"]),
         "seen and unseen classes overlap: class(es) {} (1-based) are in `test_unseen_loc` and in "
         "`trainval_loc`/`test_seen_loc`"),
        (np.setdiff1d(classes["test_seen"], classes["trainval"]),
         "`test_seen_loc` has class(es) {} (1-based) with no instance in `trainval_loc`"),
        (np.intersect1d(classes["train"], classes["val"]),
         "`val_loc` must hold validation-unseen classes, but class(es) {} (1-based) are also in "
         "`train_loc`"),
        (np.intersect1d(np.union1d(classes["train"], classes["val"]), classes["test_unseen"]),
         "`train_loc`/`val_loc` contain test-unseen class(es) {} (1-based)"),
    )
    for bad, message in problems:
        if bad.size:
            raise DataError(path, message.format(_class_list(bad)))
