"""CUB-200-2011's own class attributes: ``attributes/class_attribute_labels_continuous.txt``.

One row per class in ``classes.txt`` order, 312 space-separated percentages (how often
annotators marked each attribute). xlsa17's ``att`` is these rows L2-normalised per class, which
is what ``read_class_attributes`` returns, so either file gives the same side information.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsbench.errors import DataError

ATTRIBUTES_FILE = Path("CUB_200_2011") / "attributes" / "class_attribute_labels_continuous.txt"
CLASSES_FILE = Path("CUB_200_2011") / "classes.txt"


def read_class_attributes(root: Path, class_names: tuple[str, ...]) -> np.ndarray:
    """(C, 312) float32 L2-normalised attributes, rows in the order of ``class_names``."""
    path, classes = Path(root) / ATTRIBUTES_FILE, Path(root) / CLASSES_FILE
    for f in (path, classes):
        if not f.is_file():
            raise DataError(f, "not found: CUB's attribute file needs the CUB_200_2011 release layout")
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(path, f"expected one row of numbers per class: {exc}") from None
    names = [line.split(maxsplit=1)[1].strip() for line in classes.read_text().splitlines() if line.strip()]
    if len(names) != len(values):
        raise DataError(path, f"has {len(values)} rows but {classes.name} lists {len(names)} classes")
    missing = [n for n in class_names if n not in names]
    if missing:
        raise DataError(classes, f"does not list class {missing[0]!r} of the split file")
    rows = values[[names.index(n) for n in class_names]]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.isfinite(rows).all() or (norms == 0).any():
        raise DataError(path, "has a class with no (or non-finite) attribute values")
    return (rows / norms).astype(np.float32)
