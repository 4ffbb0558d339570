"""CUB_200_2011 and Oxford-102 raw layouts, and matching xlsa17 image names to local files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from zsbench.data.raw_images import (
    cub_layout,
    flower_class_names,
    oxford_layout,
    read_cub,
    resolve_image_files,
)
from zsbench.errors import DataError


def _cub(root, classes=("001.Black_footed_Albatross", "002.Laysan_Albatross"), per_class=2):
    folder = root / "CUB_200_2011"
    images, labels = [], []
    for c, name in enumerate(classes, start=1):
        for i in range(per_class):
            rel = f"{name}/{name.split('.')[1]}_{i:04d}.jpg"
            (folder / "images" / name).mkdir(parents=True, exist_ok=True)
            (folder / "images" / rel).write_bytes(b"jpg")
            images.append(rel)
            labels.append(c)
    (folder / "images.txt").write_text("".join(f"{i} {p}\n" for i, p in enumerate(images, 1)))
    (folder / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(labels, 1)))
    (folder / "classes.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(classes, 1)))
    return folder


def _oxford(root, labels=(1, 1, 2, 2, 2), trnid=(2, 5), valid=(1,), tstid=(3, 4), images=True):
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    scipy.io.savemat(root / "setid.mat", {k: np.array([v], dtype=np.uint16)
                                          for k, v in (("trnid", trnid), ("valid", valid), ("tstid", tstid))})
    if images:
        (root / "jpg").mkdir()
        for i in range(1, len(labels) + 1):
            (root / "jpg" / f"image_{i:05d}.jpg").write_bytes(b"jpg")
    return root


def test_cub_layout(tmp_path):
    assert cub_layout(tmp_path) is None
    _cub(tmp_path)
    raw = cub_layout(tmp_path)
    np.testing.assert_array_equal(raw.labels, [0, 0, 1, 1])
    assert raw.class_names == ("001.Black_footed_Albatross", "002.Laysan_Albatross")
    assert raw.files[2] == tmp_path / "CUB_200_2011/images/002.Laysan_Albatross/Laysan_Albatross_0000.jpg"
    assert raw.missing() == []
    np.testing.assert_array_equal(raw.xlsa17_order, np.arange(4))


def test_cub_bad_index_files(tmp_path):
    folder = _cub(tmp_path)
    (folder / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n")
    with pytest.raises(DataError, match="image_class_labels.txt: no label for image id 4"):
        read_cub(folder)
    (folder / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n4 3\n")
    with pytest.raises(DataError, match=r"class id 3 is not in classes.txt \(2 classes\)"):
        read_cub(folder)
    (folder / "images.txt").write_text("1\n")
    with pytest.raises(DataError, match="images.txt: line 1 should have 2 fields"):
        read_cub(folder)


def test_oxford_layout_and_xlsa17_order(tmp_path):
    assert oxford_layout(tmp_path) is None
    _oxford(tmp_path)
    raw = oxford_layout(tmp_path)
    np.testing.assert_array_equal(raw.labels, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(raw.xlsa17_order, [1, 4, 0, 2, 3])  # trnid, valid, tstid
    np.testing.assert_array_equal(raw.official_splits["valid"], [0])
    assert raw.class_names == ("class_001", "class_002")
    assert raw.relative[0] == "image_00001.jpg"


def test_oxford_split_ids_must_cover_every_image_once(tmp_path):
    _oxford(tmp_path, tstid=(3,))
    with pytest.raises(DataError, match=r"setid.mat: `trnid`, `valid` and `tstid` together should "
                                        r"list each of the 5 images once, found 4"):
        oxford_layout(tmp_path)
    _oxford(tmp_path / "b", tstid=(3, 4, 9))
    with pytest.raises(DataError, match="`tstid` holds image id 9"):
        oxford_layout(tmp_path / "b")


def test_flower_class_names_from_json(tmp_path):
    (tmp_path / "cat_to_name.json").write_text(json.dumps({"2": "b", "1": "a"}))
    assert flower_class_names(tmp_path, 2) == ("a", "b")
    with pytest.raises(DataError, match=r"cat_to_name.json: has no name for class\(es\) 3"):
        flower_class_names(tmp_path, 3)
    (tmp_path / "cat_to_name.json").write_text("{")
    with pytest.raises(DataError, match="is not valid JSON"):
        flower_class_names(tmp_path, 2)


def test_resolve_xlsa17_names_to_local_images(tmp_path):
    raw = cub_layout(_cub(tmp_path).parent)
    stored = ["/BS/Deep_Fragments/work/MSc/CUB_200_2011/images/002.Laysan_Albatross/Laysan_Albatross_0001.jpg",
              "C:\\cub\\images\\001.Black_footed_Albatross\\Black_footed_Albatross_0000.jpg"]
    files = resolve_image_files(stored, raw, tmp_path / "res101.mat")
    assert files == (raw.files[3], raw.files[0])
    with pytest.raises(DataError, match=r"res101.mat: `image_files` entry "
                                        r"'001.Black_footed_Albatross/Nope.jpg' has no image"):
        resolve_image_files(["x/001.Black_footed_Albatross/Nope.jpg"], raw, tmp_path / "res101.mat")


def test_resolve_flower_names(tmp_path):
    raw = oxford_layout(_oxford(tmp_path))
    files = resolve_image_files(["jpg/image_00003.jpg", "/x/Flowers/jpg/image_00001.jpg"], raw,
                                tmp_path / "res101.mat")
    assert files == (tmp_path / "jpg" / "image_00003.jpg", tmp_path / "jpg" / "image_00001.jpg")
