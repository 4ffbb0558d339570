"""Reed et al. (CVPR 2016) per-image descriptions: ``text_c10/<class folder>/<image stem>.txt``.

One description per line (10 per image in the official archives). A text file belongs to the
image with the same file stem, wherever the feature file says the image lives; class folders
are named like ``001.Black_footed_Albatross`` (CUB) or ``class_00001`` (Oxford flowers).

The released CUB captions are lower case with their typos, which are kept. Some separate their
words with U+FFFD replacement characters (bytes that an earlier re-encoding lost, 182 in classes
001-010): those, and any run of whitespace, read as one space. Blank lines are skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from zsbench.errors import DataError

_FOLDER_NUMBER = re.compile(r"^(?:class_)?(\d+)(?:\.|$)")
_SEPARATORS = re.compile(r"[\s\ufffd]+")


def clean_line(line: str) -> str:
    """A description with replacement characters and whitespace runs as single spaces, trimmed."""
    return _SEPARATORS.sub(" ", line).strip()


def class_folder_label(folder: str, class_names: Sequence[str] | None = None) -> int | None:
    """The 0-based class id a class folder names, or None when it names none.

    A folder that is one of ``class_names`` (e.g. xlsa17's ``allclasses_names``) is that class;
    otherwise its number is 1-based: ``001.Black_footed_Albatross`` and ``class_00001`` are 0.
    """
    if class_names is not None and folder in class_names:
        return list(class_names).index(folder)
    match = _FOLDER_NUMBER.match(folder)
    return int(match.group(1)) - 1 if match else None


def image_stem(image_file: str) -> str:
    """``/any/where/001.Black_footed_Albatross/x_0046_18.jpg`` -> ``x_0046_18`` (any separator)."""
    return os.path.splitext(image_file.replace("\\", "/").rsplit("/", 1)[-1])[0]


def index_text_files(text_dir: Path) -> dict[str, Path]:
    """Image stem -> its text file, over every class folder of ``text_dir``."""
    if not text_dir.is_dir():
        raise DataError(text_dir, "text folder not found")
    index: dict[str, Path] = {}
    for folder in sorted(os.scandir(text_dir), key=lambda e: e.name):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder.path):
            if not entry.name.endswith(".txt"):
                continue
            stem = entry.name[:-4]
            if stem in index:
                raise DataError(Path(entry.path), f"duplicate text for image {stem!r}, also in "
                                                  f"{index[stem]}")
            index[stem] = Path(entry.path)
    if not index:
        raise DataError(text_dir, "no text files: expected text_c10/<class folder>/<image>.txt")
    return index


def read_texts(
    text_dir: Path,
    image_files: Sequence[str],
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> list[list[str]]:
    """The descriptions of each image, in the order of ``image_files``.

    With ``labels``, every class folder must hold the texts of one class only, and each class
    must keep its texts in one folder (a misfiled text would teach a method the wrong class).
    """
    text_dir = Path(text_dir)
    index = index_text_files(text_dir)
    stems = [image_stem(f) for f in image_files]
    files = [index.get(s) for s in stems]
    if None in files:
        i = files.index(None)
        folder = _expected_folder(image_files[i], labels, i, files, text_dir, class_names)
        missing = sum(f is None for f in files)
        raise DataError(text_dir / folder / f"{stems[i]}.txt",
                        f"missing text file for image {image_files[i]!r} (instance {i + 1}); "
                        f"{missing} of {len(files)} images have no text")
    if labels is not None:
        _check_folder_classes(files, labels)
    return [_read_lines(f) for f in files]


def _read_lines(path: Path) -> list[str]:
    lines = [clean_line(line) for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(path, "is empty: expected one description per line")
    return lines


def _expected_folder(image_file: str, labels: np.ndarray | None, i: int, files: list[Path | None],
                     text_dir: Path, class_names: Sequence[str] | None) -> str:
    """Where the missing text should be: the image's own class folder when its path has one
    (CUB), else the folder whose name numbers its class (Oxford ``class_00001``)."""
    parent = PurePosixPath(image_file.replace("\\", "/")).parent.name
    if (text_dir / parent).is_dir() or (class_names is not None and parent in class_names):
        return parent
    if labels is not None:
        for folder in sorted(p.name for p in text_dir.iterdir() if p.is_dir()):
            if class_folder_label(folder, class_names) == labels[i]:
                return folder
        return f"class_{labels[i] + 1:05d}"
    return "<class folder>"


def _check_folder_classes(files: list[Path], labels: np.ndarray) -> None:
    folders = np.array([str(f.parent) for f in files])
    pairs = np.unique(np.stack([folders, labels.astype(str)], axis=1), axis=0)
    for column, what in ((0, "folder"), (1, "class")):
        values, counts = np.unique(pairs[:, column], return_counts=True)
        if (counts > 1).any():
            bad = values[counts > 1][0]
            other = pairs[pairs[:, column] == bad][:, 1 - column]
            if what == "folder":
                raise DataError(bad, f"holds texts of images of several classes: labels "
                                     f"{', '.join(str(int(c) + 1) for c in other)} (1-based)")
            raise DataError(Path(other[0]).parent, f"class {int(bad) + 1} (1-based) has its texts "
                                                   f"in several folders: {', '.join(other)}")
