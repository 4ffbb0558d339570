"""The built-in Dataset plugins (cub, flo, xlsa17, synthetic) through the plugin registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_fixtures.matfiles import tiny_xlsa17, write_texts

import zsbench.data.bundle as bundle_module
from zsbench.errors import DataError, UserError
from zsbench.interfaces import DatasetBundle
from zsbench.registry import get_registry


@pytest.fixture
def registry():
    return get_registry()


def _cub_folder(root: Path, texts: bool = True, images: bool = True) -> dict:
    written = tiny_xlsa17(root)
    if texts:
        write_texts(root, written["files"], written["labels"])
    if images:
        cub = root / "CUB_200_2011"
        rel = ["/".join(Path(f).parts[-2:]) for f in written["files"]]
        for r in rel:
            (cub / "images" / r).parent.mkdir(parents=True, exist_ok=True)
            (cub / "images" / r).write_bytes(b"jpg")
        (cub / "images.txt").write_text("".join(f"{i} {r}\n" for i, r in enumerate(rel, 1)))
        (cub / "image_class_labels.txt").write_text(
            "".join(f"{i} {c + 1}\n" for i, c in enumerate(written["labels"], 1)))
        (cub / "classes.txt").write_text("".join(f"{c} {c:03d}.Class_{c}\n" for c in range(1, 7)))
    return written


def test_plugins_are_registered_with_documented_options(registry):
    assert {"cub", "flo", "xlsa17", "synthetic"} <= set(registry.names("dataset"))
    assert list(registry.get("dataset", "flo").options()) == ["features", "splits", "text", "images"]
    assert "num_classes" in registry.get("dataset", "synthetic").options()
    assert registry.get("dataset", "cub").description.startswith("CUB-200-2011")


def test_cub_bundle_with_texts_and_images(tmp_path, registry):
    written = _cub_folder(tmp_path)
    b = registry.build("dataset", "cub", root=tmp_path)
    assert isinstance(b, DatasetBundle) and b.name == "cub"
    np.testing.assert_allclose(b.features, written["features"])
    assert b.feature_name == "res101" and b.class_names[0] == "001.Class_1"
    assert b.texts[5][0].startswith("sentence 0 about class 1 image img_05")
    assert b.image_files[5] == tmp_path / "CUB_200_2011/images/002.Class_2/img_05.jpg"
    assert b.side_information == "per-image text (text_c10) + class embeddings (att, 3-d)"
    assert "res101.mat" in b.source and "text_c10" in b.source


def test_cub_prefers_sent_splits(tmp_path, registry):
    _cub_folder(tmp_path, texts=False, images=False)
    (tmp_path / "att_splits.mat").rename(tmp_path / "sent_splits.mat")
    b = registry.build("dataset", "cub", root=tmp_path)
    assert b.side_information == "class embeddings (sent, 3-d)" and b.texts is None


def test_text_modes(tmp_path, registry):
    _cub_folder(tmp_path, texts=False, images=False)
    assert registry.build("dataset", "cub", root=tmp_path, text="auto").texts is None
    with pytest.raises(DataError, match=r"text_c10: per-image texts requested \(text: instance\)"):
        registry.build("dataset", "cub", root=tmp_path, text="instance")
    with pytest.raises(UserError, match="dataset 'cub': option 'text' must be one of 'auto', 'instance', 'none', got 'sometimes'"):
        registry.build("dataset", "cub", root=tmp_path, text="sometimes")
    write_texts(tmp_path, tiny_xlsa17(tmp_path)["files"], np.repeat(np.arange(6), 4))
    assert registry.build("dataset", "cub", root=tmp_path, text="none").texts is None
    assert len(registry.build("dataset", "cub", root=tmp_path, text="instance").texts) == 24


def test_images_option_and_missing_image(tmp_path, registry):
    _cub_folder(tmp_path, texts=False)
    assert registry.build("dataset", "cub", root=tmp_path, images=False).image_files is None
    (tmp_path / "CUB_200_2011/images/003.Class_3/img_09.jpg").unlink()
    with pytest.raises(DataError, match=r"img_09.jpg: image not found \(1 of 24 missing"):
        registry.build("dataset", "cub", root=tmp_path)


def test_images_without_a_feature_file(tmp_path, registry):
    written = _cub_folder(tmp_path)
    (tmp_path / "res101.mat").unlink()
    b = registry.build("dataset", "cub", root=tmp_path)
    assert b.features is None and b.feature_name is None and len(b.image_files) == 24
    np.testing.assert_array_equal(b.labels, written["labels"])
    assert len(b.texts) == 24


def test_cache_is_used_and_invalidated(tmp_path, registry, monkeypatch):
    _cub_folder(tmp_path, images=False)
    first = registry.build("dataset", "cub", root=tmp_path)
    monkeypatch.setattr(bundle_module, "load_features", lambda path: pytest.fail("cache missed"))
    again = registry.build("dataset", "cub", root=tmp_path)
    np.testing.assert_array_equal(first.features, again.features)
    assert first.texts == again.texts
    text = next((tmp_path / "text_c10").glob("*/*.txt"))
    text.write_text("changed and longer than before\n")
    with pytest.raises(pytest.fail.Exception, match="cache missed"):
        registry.build("dataset", "cub", root=tmp_path)


def test_flo_class_names_from_json_else_numbered(tmp_path, registry):
    tiny_xlsa17(tmp_path, allclasses_names=None)
    assert registry.build("dataset", "flo", root=tmp_path).class_names[:2] == ("class_001", "class_002")
    (tmp_path / "cat_to_name.json").write_text(json.dumps({str(k): f"flower {k}" for k in range(1, 7)}))
    assert registry.build("dataset", "flo", root=tmp_path).class_names[5] == "flower 6"


def test_missing_folder_and_files(tmp_path, registry):
    with pytest.raises(DataError, match="data folder of 'flo' not found: run `zsbench data download flo"):
        registry.build("dataset", "flo", root=tmp_path / "absent")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(DataError, match="res101.mat: feature file not found"):
        registry.build("dataset", "flo", root=tmp_path / "empty")


def test_generic_xlsa17_folder_by_name(tmp_path, registry):
    tiny_xlsa17(tmp_path / "AWA2")
    b = registry.build("dataset", "xlsa17", root=tmp_path, subset="AWA2")
    assert b.name == "AWA2" and b.num_classes == 6 and b.image_files is None


def test_synthetic_written_once_then_loaded(tmp_path, registry):
    options = dict(num_classes=8, per_class=6, seed=1)
    b = registry.build("dataset", "synthetic", root=tmp_path, **options)
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("synthetic-")
    assert b.features.shape == (48, 64) and b.class_embeddings.shape == (8, 32)
    assert len(b.texts) == 48 and len(b.image_files) == 48
    assert b.side_information.startswith("per-image text")
    again = registry.build("dataset", "synthetic", root=tmp_path, **options)
    np.testing.assert_array_equal(b.features, again.features)
    other = registry.build("dataset", "synthetic", root=tmp_path, num_classes=8, per_class=6, seed=2)
    assert len(list(tmp_path.iterdir())) == 2 and not np.allclose(other.features, b.features)
    assert registry.build("dataset", "synthetic", root=tmp_path, text="none", **options).texts is None
