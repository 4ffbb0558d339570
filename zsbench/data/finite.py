"""Finiteness of a data set's numeric inputs, checked where they are loaded.

A NaN or an infinity in features or class embeddings silently turns into scores, then into a
row that looks real (all-NaN features gave H = 0.0). So a bundle with non-finite values is an
error naming the file, the field and how many rows; a dataset entry with ``drop_nonfinite:
true`` leaves the affected instances out instead (class embeddings cannot be dropped: every
class needs its side information).
"""

from __future__ import annotations

import attrs
import numpy as np

from zsbench.errors import DataError
from zsbench.interfaces import DatasetBundle, Splits


def nonfinite_rows(matrix: np.ndarray) -> np.ndarray:
    """A boolean mask of the rows holding a NaN or an infinity."""
    return ~np.isfinite(matrix).all(axis=1)


def _where(bundle: DatasetBundle, field: str) -> str:
    return bundle.origins.get(field) or bundle.source or f"dataset {bundle.name!r}"


def _example(bad: np.ndarray) -> str:
    rows = np.flatnonzero(bad)
    return ", ".join(str(r + 1) for r in rows[:5]) + (" ..." if rows.size > 5 else "")


def finite_bundle(bundle: DatasetBundle, drop: bool = False) -> DatasetBundle:
    """``bundle`` when its features and class embeddings are finite; with ``drop``, a copy
    without the instances whose features are not; otherwise a ``DataError``."""
    if bundle.class_embeddings is not None:
        bad = nonfinite_rows(bundle.class_embeddings)
        if bad.any():
            raise DataError(
                _where(bundle, "class_embeddings"),
                f"class embeddings (attributes) hold non-finite values (NaN or infinite) for "
                f"{int(bad.sum())} of {len(bad)} classes (rows {_example(bad)}, 1-based); every "
                "class needs finite side information, so fix or replace the file",
            )
    if bundle.features is None:
        return bundle
    bad = nonfinite_rows(bundle.features)
    if not bad.any():
        return bundle
    where = _where(bundle, "features")
    if not drop:
        raise DataError(
            where,
            f"`features` hold non-finite values (NaN or infinite) in {int(bad.sum())} of {len(bad)} "
            f"rows (instances {_example(bad)}, 1-based); fix the file, or set `drop_nonfinite: true` "
            "on this dataset entry of the spec to leave those instances out",
        )
    if bad.all():
        raise DataError(where, f"`features` are non-finite (NaN or infinite) in all {len(bad)} rows: "
                               "nothing is left to run on")
    return _without(bundle, bad)


def _without(bundle: DatasetBundle, bad: np.ndarray) -> DatasetBundle:
    """The bundle minus the instances in ``bad``, with split indices renumbered."""
    keep = ~bad
    new_index = np.cumsum(keep) - 1
    splits = Splits(**{name: new_index[idx[keep[idx]]] for name, idx in bundle.splits.as_dict().items()})
    kept = np.flatnonzero(keep)
    return attrs.evolve(
        bundle,
        labels=bundle.labels[keep],
        splits=splits,
        features=np.ascontiguousarray(bundle.features[keep]),
        image_files=None if bundle.image_files is None else tuple(bundle.image_files[i] for i in kept),
        texts=None if bundle.texts is None else [bundle.texts[i] for i in kept],
        source=f"{bundle.source} ({int(bad.sum())} instance(s) with non-finite features dropped)",
    )
