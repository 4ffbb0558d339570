"""Reed et al. text folders: matched to images by file stem, checked for missing and misfiled
texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures.matfiles import write_texts
from hypothesis import given
from hypothesis import strategies as st

from zsbench.data.reed_text import class_folder_label, image_stem, read_texts
from zsbench.errors import DataError

CUB_FILES = [f"/BS/xian/CUB_200_2011/images/{c:03d}.Bird_{c}/Bird_{c}_{i:04d}_{i}.jpg"
             for c in (1, 2) for i in range(3)]
LABELS = np.repeat([0, 1], 3)


def test_texts_follow_image_order_not_folder_order(tmp_path):
    write_texts(tmp_path, CUB_FILES, LABELS)
    order = [4, 0, 5, 1]
    texts = read_texts(tmp_path / "text_c10", [CUB_FILES[i] for i in order], LABELS[order])
    for i, lines in zip(order, texts, strict=True):
        assert len(lines) == 3
        assert all(Path(CUB_FILES[i]).stem in line for line in lines)


def test_blank_lines_and_windows_paths(tmp_path):
    folder = tmp_path / "text_c10" / "class_00001"
    folder.mkdir(parents=True)
    (folder / "image_00001.txt").write_text("first line\r\n\r\n  second line  \n")
    assert read_texts(tmp_path / "text_c10", ["C:\\data\\jpg\\image_00001.jpg"]) == [
        ["first line", "second line"]]


@pytest.mark.parametrize("folder,names,expected", [
    ("001.Black_footed_Albatross", None, 0),
    ("200.Common_Yellowthroat", None, 199),
    ("class_00001", None, 0),
    ("class_00102", None, 101),
    ("002.Laysan_Albatross", ("002.Laysan_Albatross", "001.Black_footed_Albatross"), 0),
    ("jpg", None, None),
])
def test_class_folder_label(folder, names, expected):
    assert class_folder_label(folder, names) == expected


@given(st.integers(1, 99999))
def test_both_folder_styles_number_classes_alike(number):
    assert class_folder_label(f"class_{number:05d}") == number - 1
    assert class_folder_label(f"{number:03d}.Some_Bird") == number - 1


@given(st.sampled_from(["/a/b/", "C:\\x\\", "", "rel/"]), st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True))
def test_image_stem_any_separator(prefix, stem):
    assert image_stem(f"{prefix}{stem}.jpg") == stem


def test_missing_text_names_the_expected_file(tmp_path):
    write_texts(tmp_path, CUB_FILES, LABELS)
    missing = tmp_path / "text_c10" / "002.Bird_2" / "Bird_2_0001_1.txt"
    missing.unlink()
    with pytest.raises(DataError) as info:
        read_texts(tmp_path / "text_c10", CUB_FILES, LABELS)
    assert str(info.value).startswith(f"{missing}: missing text file for image")
    assert "instance 5" in str(info.value) and "1 of 6 images have no text" in str(info.value)


def test_missing_flower_text_points_at_the_class_folder(tmp_path):
    files = [f"jpg/image_{i:05d}.jpg" for i in range(1, 5)]
    labels = np.array([0, 0, 1, 1])
    for f, label in zip(files[:3], labels[:3], strict=True):
        folder = tmp_path / "text_c10" / f"class_{label + 1:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{Path(f).stem}.txt").write_text("a flower\n")
    with pytest.raises(DataError) as info:
        read_texts(tmp_path / "text_c10", files, labels)
    assert str(tmp_path / "text_c10" / "class_00002" / "image_00004.txt") in str(info.value)


def test_misfiled_text_is_caught(tmp_path):
    write_texts(tmp_path, CUB_FILES, LABELS)
    src = tmp_path / "text_c10" / "002.Bird_2" / "Bird_2_0002_2.txt"
    src.rename(tmp_path / "text_c10" / "001.Bird_1" / src.name)
    with pytest.raises(DataError, match=r"001\.Bird_1: holds texts of images of several classes"):
        read_texts(tmp_path / "text_c10", CUB_FILES, LABELS)


def test_class_split_over_folders_is_caught(tmp_path):
    write_texts(tmp_path, CUB_FILES, LABELS)
    extra = tmp_path / "text_c10" / "003.Elsewhere"
    extra.mkdir()
    src = tmp_path / "text_c10" / "001.Bird_1" / "Bird_1_0000_0.txt"
    src.rename(extra / src.name)
    with pytest.raises(DataError, match=r"class 1 \(1-based\) has its texts in several folders"):
        read_texts(tmp_path / "text_c10", CUB_FILES, LABELS)


def test_empty_text_file_and_duplicates(tmp_path):
    write_texts(tmp_path, CUB_FILES, LABELS)
    empty = tmp_path / "text_c10" / "001.Bird_1" / "Bird_1_0001_1.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="is empty: expected one description per line") as info:
        read_texts(tmp_path / "text_c10", CUB_FILES, LABELS)
    assert str(empty) in str(info.value)
    empty.write_text("ok\n")
    (tmp_path / "text_c10" / "002.Bird_2" / empty.name).write_text("again\n")
    with pytest.raises(DataError, match="duplicate text for image 'Bird_1_0001_1'"):
        read_texts(tmp_path / "text_c10", CUB_FILES, LABELS)


def test_missing_or_empty_text_folder(tmp_path):
    with pytest.raises(DataError, match="text folder not found"):
        read_texts(tmp_path / "text_c10", CUB_FILES)
    (tmp_path / "text_c10" / "001.x").mkdir(parents=True)
    with pytest.raises(DataError, match="no text files"):
        read_texts(tmp_path / "text_c10", CUB_FILES)
