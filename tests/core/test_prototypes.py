"""Which captions describe a class (``prototype_captions``) and which side information a method
entry gets (``side_information``): through the protocol and through a whole run."""

from __future__ import annotations

import types

import attrs
import numpy as np
import pytest
import torch
from support.paths import ROOT
from support.toy import captioned
from toy_plugin import LeastSquares

import zsbench
from zsbench.errors import DataError
from zsbench.evaluation import protocol
from zsbench.registry import Registry
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore


def _images_in(side) -> set[int]:
    return {int(t.split()[1]) for group in side.texts or () for t in group}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_unscored_prototypes_never_use_a_scored_image(seed):
    b = captioned()
    for stage in (protocol.validation_stage(b, seed), protocol.test_stage(b, seed)):
        scored = set(stage.eval_indices.tolist())
        side = protocol.class_side(b, stage)
        assert not _images_in(side) & scored
        # caption means come from the same images: no scored image's one-hot column is used
        means = protocol.class_side(b, stage, "caption-means").embeddings
        assert not means[:, sorted(scored)].any()
        # every unseen class keeps scored images and has held-out ones describing it
        for c in stage.unseen_classes:
            scored_c = (b.labels[stage.eval_unseen] == c).sum()
            held = (b.labels[stage.prototype_images] == c).sum()
            assert scored_c > 0 and held == round(protocol.PROTOTYPE_FRACTION * (scored_c + held))
        assert not np.intersect1d(stage.prototype_images, stage.eval_indices).size
        # seen classes are described by their training images only
        seen_images = {i for i in _images_in(side) if b.labels[i] in stage.seen_classes}
        assert seen_images == set(stage.fit.tolist())


def test_stage_prototypes_are_the_papers_every_stage_image():
    b = captioned("stage")
    stage = protocol.test_stage(b)
    assert not len(stage.prototype_images)
    assert len(stage.eval_unseen) == len(b.splits.test_unseen)
    expected = set(np.concatenate([stage.fit, stage.eval_indices]).tolist())
    assert _images_in(protocol.class_side(b, stage)) == expected


def test_unscored_is_the_same_split_for_every_side_information():
    b = captioned()
    plain = attrs.evolve(b, texts=None)  # attributes only: still the same scored images
    for seed in (0, 3):
        assert np.array_equal(protocol.test_stage(b, seed).eval_unseen,
                              protocol.test_stage(plain, seed).eval_unseen)
    no_captions = attrs.evolve(b, texts=None, caption_embeddings=None)
    assert len(protocol.test_stage(no_captions).eval_unseen) == len(b.splits.test_unseen)


def test_side_information_selects_what_the_method_gets():
    b = captioned()
    stage = protocol.test_stage(b)
    fit = protocol.fit_data(b, stage, "class-embeddings")
    assert fit.texts is None and fit.classes.texts is None
    np.testing.assert_array_equal(fit.classes.embeddings, b.class_embeddings[stage.classes])
    fit = protocol.fit_data(b, stage, "captions")
    assert fit.classes.embeddings is None and len(fit.texts) == len(stage.fit)
    fit = protocol.fit_data(b, stage, "caption-means")
    assert fit.texts is None and fit.classes.embeddings.shape == (len(stage.classes), len(b.labels))
    assert protocol.side_information(b, "caption-means") == f"class-mean caption embeddings (one-hot, {len(b.labels)}-d)"
    with pytest.raises(DataError, match="side_information 'caption-means' needs per-image caption"):
        protocol.class_side(attrs.evolve(b, caption_embeddings=None), stage, "caption-means")
    with pytest.raises(DataError, match="not one of"):
        protocol.class_side(b, stage, "attributes")


def test_unscored_needs_two_images_per_unseen_class():
    b = captioned()
    single = b.splits.test_unseen[np.r_[0, 30:90]]  # class 9 keeps a single image
    with pytest.raises(DataError, match="single image"):
        protocol.test_stage(attrs.evolve(b, splits=attrs.evolve(b.splits, test_unseen=single)))


class _Spy(LeastSquares):
    """Least squares on the class embeddings given; records every FitData and scored input."""

    seen: list = []

    def fit(self, data, context):
        scorer = super().fit(data, context)
        spy = self

        class Recorder:
            def scores(self, inputs):
                spy.seen.append((data, inputs))
                return scorer.scores(inputs)

        return Recorder()


def test_a_run_never_shows_a_scorer_the_captions_of_what_it_scores(tmp_path):
    """Through the runner: each scored batch is traced (features are one-hot image ids) and
    no caption of a scored image is in anything the method was given."""
    b = captioned()
    n = len(b.labels)
    b = attrs.evolve(b, features=np.eye(n, dtype=np.float32))
    plugin = types.SimpleNamespace(
        register_datasets=zsbench.hookimpl(lambda register: register("captioned", lambda root: b)),
        register_methods=zsbench.hookimpl(lambda register: register("spy", lambda: _Spy())),
    )
    registry = Registry.from_entry_points(extra=[("spy", plugin, None, None)])
    spec = {"name": "spy", "seeds": 2, "datasets": [{"name": "captioned"}],
            "methods": [{"name": m, "method": "spy", "side_information": m, "grid": {}}
                        for m in ("auto", "caption-means")]}
    _Spy.seen = []
    with ResultStore(tmp_path / "r.sqlite") as store:
        done, _, failures = run_spec(parse_spec(spec, "spy.yaml", registry), store,
                                     LocalBackend(registry, torch.device("cpu"), show_progress=False))
        rows = store.rows()
    assert len(done) == 4 and not failures
    assert {r["side_information"] for r in rows} == {
        "toy class embeddings", f"class-mean caption embeddings (one-hot, {n}-d)"}
    assert len(_Spy.seen) == 8  # 4 runs x (validation + test)
    for data, inputs in _Spy.seen:
        scored = set(np.flatnonzero(inputs.features.any(0)).tolist())
        assert scored and not _images_in(data.classes) & scored
        described = data.classes.embeddings if data.classes.embeddings.shape[1] == n else None
        if described is not None:
            assert not described[:, sorted(scored)].any()


def test_spec_side_information_is_checked_and_keeps_old_run_keys(toy_registry):
    from zsbench.errors import SpecError

    base = {"name": "t", "datasets": [{"name": "toy"}], "methods": [{"name": "ls", "method": "least-squares"}]}
    plain = parse_spec(base, "t.yaml", toy_registry).methods[0]
    assert plain.side_information == "auto" and "side_information" not in plain.as_dict()
    given = dict(base, methods=[{"name": "ls", "method": "least-squares", "side_information": "captions"}])
    assert parse_spec(given, "t.yaml", toy_registry).methods[0].as_dict()["side_information"] == "captions"
    bad = dict(base, methods=[{"name": "ls", "method": "least-squares", "side_information": "attributes"}])
    with pytest.raises(SpecError, match=r"methods\[0\].side_information: expected one of auto"):
        parse_spec(bad, "t.yaml", toy_registry)


def test_a_root_may_name_the_data_home(monkeypatch, tmp_path):
    from zsbench.paths import dataset_root

    monkeypatch.setenv("ZSBENCH_DATA", str(tmp_path))
    assert dataset_root("cub", "${ZSBENCH_DATA}/cub-subset") == tmp_path / "cub-subset"
    assert dataset_root("cub", "$ZSBENCH_DATA/cub-subset") == tmp_path / "cub-subset"
    monkeypatch.delenv("ZSBENCH_DATA")
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "c"))
    assert dataset_root("cub", "${ZSBENCH_DATA}/x") == tmp_path / "c" / "data" / "x"


def test_the_cub_subset_spec_is_valid_and_complete():
    """Every row of the claim is in it, each told its side information, on 5+ seeds."""

    from zsbench.spec import load_spec

    spec = load_spec(ROOT / "zsbench" / "specs" / "cub-subset.yaml", zsbench.get_registry())
    assert len(spec.seeds) >= 5 and len(spec.datasets) == 1
    assert spec.datasets[0].options["prototype_captions"] == "unscored"
    sides = {m.label: m.side_information for m in spec.methods}
    assert sides["clarel-captions-cnn-lstm"] == sides["clarel-captions-minilm"] == "captions"
    assert sides["clarel-caption-means"] == "caption-means" and sides["clarel-attributes"] == "class-embeddings"
    for baseline in ("eszsl", "ale", "sje", "devise", "f-clswgan", "cada-vae"):
        assert sides[f"{baseline}-attributes"] == "class-embeddings"
        assert sides[f"{baseline}-caption-means"] == "caption-means"
    assert all(len(m.calibrators) == 2 and m.calibrators[0].name == "none" for m in spec.methods)
