"""benchmarks/gzsl.yaml's CUB entry on a user's full CUB: the xlsa17 files (res101.mat,
att_splits.mat, sent_splits.mat) and Reed et al.'s text_c10, checked on a synthetic layout with
the full data set's counts (200 classes, 11,788 images, the xlsa17 split sizes; 8-d features)
and on the real cub50 folder given as the entry's root."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
import scipy.io
from support.paths import ROOT

from zsbench.evaluation import protocol
from zsbench.registry import get_registry
from zsbench.runner.grid import load_dataset
from zsbench.spec import load_spec

GZSL = ROOT / "benchmarks" / "gzsl.yaml"
SIZES = {"trainval": 7057, "test_seen": 1764, "test_unseen": 2967, "train": 5875, "val": 2946}


def _cells(strings: list[str]) -> np.ndarray:
    out = np.empty((len(strings), 1), dtype=object)
    out[:, 0] = strings
    return out


def write_full_cub(root: Path, seed: int = 0) -> None:
    """200 classes in xlsa17's layout: 150 seen (100 train + 50 validation-unseen), 50 unseen;
    train_loc / val_loc cover every seen image, trainval / test_seen split them (as xlsa17's do)."""
    rng = np.random.default_rng(seed)
    # images per class, chosen so every split has xlsa17's size
    train_classes = [59] * 75 + [58] * 25  # 5,875 images
    val_classes = [59] * 46 + [58] * 4  # 2,946
    unseen_classes = [60] * 17 + [59] * 33  # 2,967
    counts = np.array(train_classes + val_classes + unseen_classes)
    order = rng.permutation(200)  # which class ids are train / validation / unseen is scattered
    labels = np.repeat(order, counts)
    role = np.repeat(np.array(["train"] * 100 + ["val"] * 50 + ["unseen"] * 50), counts)
    seen = np.flatnonzero(role != "unseen")
    test_seen = np.sort(rng.choice(seen, SIZES["test_seen"], replace=False))
    names = [f"{k + 1:03d}.Bird_{k + 1}" for k in range(200)]
    files = [f"/BS/xlsa17/CUB_200_2011/images/{names[c]}/Bird_{c + 1}_{i:05d}_{i}.jpg"
             for i, c in enumerate(labels)]
    features = rng.normal(size=(8, len(labels))).astype(np.float32)
    scipy.io.savemat(root / "res101.mat", {"features": features, "labels": labels[:, None] + 1,
                                            "image_files": _cells(files)})
    loc = {"trainval_loc": np.setdiff1d(seen, test_seen), "test_seen_loc": test_seen,
           "test_unseen_loc": np.flatnonzero(role == "unseen"),
           "train_loc": np.flatnonzero(role == "train"), "val_loc": np.flatnonzero(role == "val")}
    loc = {k: v[:, None] + 1 for k, v in loc.items()}
    class_names = _cells(names)
    scipy.io.savemat(root / "att_splits.mat", {**loc, "att": rng.random((312, 200)), "allclasses_names": class_names})
    scipy.io.savemat(root / "sent_splits.mat", {**loc, "att": rng.normal(size=(1024, 200)),
                                                 "allclasses_names": class_names})
    for i, (c, f) in enumerate(zip(labels, files, strict=True)):
        folder = root / "text_c10" / names[c]
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(f).stem
        (folder / f"{stem}.txt").write_text("".join(f"this is bird {c} caption {k} of image {i}\n" for k in range(10)))


def gzsl_cub_entry():
    spec = load_spec(GZSL, get_registry())
    (entry,) = [d for d in spec.datasets if d.label == "cub"]
    return entry


@pytest.fixture(scope="module")
def full_cub(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    (data / "cub").mkdir()
    write_full_cub(data / "cub")
    return data


def test_the_gzsl_cub_entry_reads_a_full_xlsa17_cub(full_cub, monkeypatch):
    monkeypatch.setenv("ZSBENCH_DATA", str(full_cub))
    b = load_dataset(gzsl_cub_entry(), get_registry())
    assert len(b.labels) == 11788 and len(b.class_names) == 200
    assert {k: len(v) for k, v in b.splits.as_dict().items()} == SIZES
    assert len(b.texts) == 11788 and all(len(t) == 10 for t in b.texts)
    # the entry's split file is sent_splits.mat: Reed's class sentences are its class embeddings
    assert b.class_embeddings.shape == (200, 1024) and b.class_sentences is b.class_embeddings
    test, val = protocol.test_stage(b), protocol.validation_stage(b, 0)
    assert (len(test.seen_classes), len(test.unseen_classes)) == (150, 50)
    assert (len(val.seen_classes), len(val.unseen_classes)) == (100, 50)
    side = protocol.class_side(b, test)  # what gzsl.yaml's CLAREL (auto) is given
    assert side.embeddings.shape == (200, 1024) and len(side.texts) == 200


def test_attributes_beside_the_sentences(full_cub, monkeypatch):
    monkeypatch.setenv("ZSBENCH_DATA", str(full_cub))
    entry = gzsl_cub_entry()
    b = load_dataset(attrs.evolve(entry, options={**entry.options, "splits": "att_splits.mat"}), get_registry())
    assert b.class_embeddings.shape == (200, 312) and b.class_sentences.shape == (200, 1024)
    assert full_cub / "cub" / "sent_splits.mat" in b.files


@pytest.mark.realdata
def test_the_gzsl_cub_entry_on_cub50_as_its_root():
    from shared_data import SHARED_DATA

    root = SHARED_DATA / "cub50"
    if not (root / "efficientnet_lite0.mat").is_file():
        pytest.skip("../shared/data/cub50 is not present")
    entry = gzsl_cub_entry()
    entry = attrs.evolve(entry, root=str(root), options={**entry.options, "features": "efficientnet_lite0.mat",
                                                         "images": False})
    b = load_dataset(entry, get_registry())
    assert len(b.labels) == 2889 and b.class_embeddings.shape == (50, 1024) and len(b.texts) == 2889
    test = protocol.test_stage(b)
    assert (len(test.seen_classes), len(test.unseen_classes)) == (40, 10)
    assert len(protocol.class_side(b, test).texts) == 50
