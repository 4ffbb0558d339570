"""Outputs and hostile files met before any work: an unwritable --out, --root or cache folder is a
named error (exit 2) given up front, and a decompression-bomb image is an unreadable image."""

from __future__ import annotations

import os

import pytest
from support.cli import ONE_RUN, one_paragraph, write, zsbench

from zsbench import encoders

UNWRITABLE = "/proc/zsbench-no-such-folder"  # nobody, root included, creates a folder here

FEATURES_SPEC = """
name: feats
datasets:
  - name: synthetic
    num_classes: 12
    per_class: 6
    text: none
    backbone: {name: efficientnet-lite0, resize: 40, crop: 32}
methods: [{name: eszsl}]
"""


def test_features_out_unwritable_is_refused_before_extracting(toy):
    result = zsbench("features", write(toy, FEATURES_SPEC), "--out", f"{UNWRITABLE}/x.mat", "--quiet")
    message = one_paragraph(result)
    assert result.returncode == 2 and f"--out {UNWRITABLE}: cannot write there" in message
    assert not (toy / "cache" / "tables").exists()  # nothing was extracted


def test_export_out_unwritable_is_a_named_error(toy):
    assert zsbench("run", write(toy, ONE_RUN), "--quiet").returncode == 0
    result = zsbench("export", "--out", UNWRITABLE)
    assert result.returncode == 2 and f"--out {UNWRITABLE}: cannot write there" in one_paragraph(result)


def test_data_download_root_unwritable_is_a_named_error(toy):
    result = zsbench("data", "download", "flo", "--root", UNWRITABLE)
    message = one_paragraph(result)
    assert result.returncode == 2 and f"--root {UNWRITABLE}: cannot write there" in message


def test_a_cache_folder_that_cannot_be_written_stops_run_with_the_variable_named(toy, monkeypatch):
    blocked = toy / "not a folder"
    blocked.write_text("")
    monkeypatch.setenv("ZSBENCH_CACHE", str(blocked / "cache"))  # like a read-only home
    result = zsbench("run", write(toy, ONE_RUN), "--quiet")
    message = one_paragraph(result)
    assert result.returncode == 2 and "the cache folder" in message and "set ZSBENCH_CACHE" in message
    assert not (toy / "results.sqlite").exists()


def test_a_decompression_bomb_image_is_an_unreadable_image_named(tmp_path, monkeypatch):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2x the limit: PIL refuses it
    images = encoders.ImageFiles([bomb], lambda image: image, (3, 8, 8))
    _, error = images[0]
    assert "decompression bomb" in error.lower()
    with pytest.raises(encoders.UnreadableImageError, match=r"bomb\.png: cannot read image"):
        encoders.check_decoded([bomb], [error])
    assert os.path.exists(bomb)
