from __future__ import annotations

import importlib

import attrs
import numpy as np
import pytest
import yaml
from toy_plugin import toy_bundle

from zsbench.cli import main
from zsbench.registry import Registry
from zsbench.runner.audit import poison_test_split, poisoned_data_folder
from zsbench.testing import assert_no_peeking


@pytest.fixture
def registry():
    extra = [(name, importlib.import_module(f"{name}_plugin"), None, None) for name in ("toy", "peeking")]
    return Registry.from_entry_points(extra=extra)


@pytest.mark.parametrize("method, calibrators", [
    ("least-squares", ("none", "metric-rescaling")),
    ("eszsl", ("none", "calibrated-stacking")),
    ("ale", ("calibrated-stacking",)),
    ("eszsl-standard", ("none",)),  # training statistics travel in the scorer, never the batch's
])
def test_honest_methods_pass(registry, method, calibrators):
    options = {"epochs": 2} if method == "ale" else {"feature_norm": "standard"} if method == "eszsl-standard" else {}
    method = method.removesuffix("-standard")
    result = assert_no_peeking(method, toy_bundle(), registry=registry, calibrators=calibrators, options=options,
                               grid={} if method == "ale" else None)
    assert result.passed and result.checked >= 5


def test_poisoning_replaces_the_test_split_and_nothing_else():
    b = toy_bundle()
    p = poison_test_split(b, "nan")
    test = np.union1d(b.splits.test_seen, b.splits.test_unseen)
    rest = np.setdiff1d(np.arange(len(b.labels)), test)
    assert np.isnan(p.features[test]).all() and np.array_equal(p.features[rest], b.features[rest])
    assert np.array_equal(p.labels[rest], b.labels[rest])
    unseen = np.unique(b.labels[b.splits.test_unseen])
    assert np.isnan(p.class_embeddings[unseen]).all()
    seen = np.setdiff1d(np.arange(b.num_classes), unseen)
    assert np.array_equal(p.class_embeddings[seen], b.class_embeddings[seen])


def test_choosing_on_the_test_stage_is_caught(registry, monkeypatch):
    """A mutant of zsbench: the validation stage replaced by the test stage (in the audit's
    processes, where the peeking plugin applies it on import)."""
    monkeypatch.setenv("ZSBENCH_TEST_CHOOSE_ON_TEST", "1")
    with pytest.raises(AssertionError, match=r"'least-squares'.*\n- .*moved when the test split was replaced"):
        assert_no_peeking("least-squares", toy_bundle(), registry=registry)


def test_a_method_peeking_at_test_features_is_named_with_its_choice(registry):
    with pytest.raises(AssertionError) as caught:
        assert_no_peeking("stack-peeker", toy_bundle(), registry=registry, calibrators=("calibrated-stacking",))
    message = str(caught.value)
    assert "'stack-peeker'" in message
    assert "calibrated-stacking: calibration parameter moved when the test split was replaced (random)" in message
    assert "calibrated-stacking: validation H moved when the test split was replaced (nan)" in message


def test_a_method_peeking_at_test_images_caption_embeddings_is_caught(registry):
    """Per-image caption embeddings are computed by the data set for every image, test images
    included: poisoning must replace them as it replaces the captions they come from."""
    from support.toy import captioned

    with pytest.raises(AssertionError) as caught:
        assert_no_peeking("caption-peeker", captioned("stage"), registry=registry, grid={}, poisons=("random",))
    assert "'caption-peeker'" in str(caught.value) and "validation H moved" in str(caught.value)


def test_a_transductive_scorer_is_caught(registry):
    with pytest.raises(AssertionError, match=r"'transductive'.*\n- grid point defaults: scores change when the "
                                             r"evaluation set is scored in chunks"):
        assert_no_peeking("transductive", toy_bundle(), registry=registry, poisons=("random",))


def _spec(tmp_path, methods):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "audit", "seeds": 1, "datasets": [{"name": "toy"}], "methods": methods}))
    return str(path)


@pytest.fixture
def cli_registry(registry, monkeypatch):
    monkeypatch.setattr("zsbench.cli.get_registry", lambda strict=None: registry)


def test_cli_audit_passes_honest_and_fails_peeking_methods(cli_registry, tmp_path, capsys):
    spec = _spec(tmp_path, [{"name": "ls", "method": "least-squares", "calibrators": ["none", "metric-rescaling"]},
                            {"name": "cheat", "method": "stack-peeker"}])
    with pytest.raises(SystemExit) as exit_:
        main(["audit", spec])
    out = capsys.readouterr().out
    assert exit_.value.code == 1
    assert "ok: toy / ls / seed 0" in out
    assert "PEEKS: toy / cheat / seed 0: none: validation" in out
    assert "1 of 2 method run(s) passed the audit" in out
    main(["audit", spec, "--method", "ls"])  # passes: no exit
    assert "1 of 1 method run(s) passed" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "--method nope: no such method entry; entries: ls"),
    (["--seed", "5"], "--seed 5 is not one of the spec's seeds [0]"),
])
def test_cli_audit_bad_input_is_one_paragraph_exit_2(cli_registry, tmp_path, capsys, args, message):
    spec = _spec(tmp_path, [{"name": "ls", "method": "least-squares"}])
    with pytest.raises(SystemExit) as exit_:
        main(["audit", spec, *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in " ".join(err.split()) and "Traceback" not in err


def test_cli_audit_bad_spec_is_the_same_error_as_run(cli_registry, tmp_path, capsys):
    spec = _spec(tmp_path, [{"name": "ls", "method": "least-squares", "ridge": "high"}])
    errors = []
    for verb in ("audit", "run"):
        with pytest.raises(SystemExit) as exit_:
            main([verb, spec, "--results", str(tmp_path / "r.sqlite")] if verb == "run" else [verb, spec])
        assert exit_.value.code == 2
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1] and "methods[0].ridge: expected a number" in errors[0]


@pytest.mark.parametrize("method, caught", [
    ("memoriser", "none: validation H moved when the test split was replaced (random)"),
    ("test-stage-peeker", "the test-stage model at grid point {} changed when the test split was replaced (random)"),
    ("first-batch-centring", "the test-stage model at grid point {} changed when the test split was replaced (random)"),
])
def test_peeking_across_stages_or_only_at_test_time_is_caught(registry, method, caught):
    with pytest.raises(AssertionError) as raised:
        assert_no_peeking(method, toy_bundle(), registry=registry, grid={}, poisons=("random",))
    assert f"'{method}'" in str(raised.value) and caught in str(raised.value)


def test_a_method_reading_the_data_files_itself_is_caught(registry, cli_registry, tmp_path, monkeypatch, capsys):
    from peeking_plugin import save_toy_files

    monkeypatch.setenv("ZSBENCH_DATA", str(tmp_path / "data"))
    save_toy_files(tmp_path / "data" / "toy-files")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "audit", "seeds": 1, "datasets": [{"name": "toy-files"}],
                                    "methods": [{"name": "reader", "method": "disk-reader"},
                                                {"name": "ls", "method": "least-squares"}]}))
    with pytest.raises(SystemExit) as exit_:
        main(["audit", str(path)])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 1
    assert "PEEKS: toy-files / reader / seed 0: the method failed when the test split was replaced (random)" in out
    assert "ok: toy-files / ls / seed 0" in out and "1 of 2 method run(s) passed" in out


def test_the_poisoned_data_folder_links_only_non_test_images(tmp_path):
    b = toy_bundle()
    root = tmp_path / "root"
    (root / "img").mkdir(parents=True)
    files = []
    for i in range(len(b.labels)):
        files.append(root / "img" / f"{i}.png")
        files[-1].write_bytes(b"image %d" % i)
    (root / "labels.txt").write_text("all labels")
    b = attrs.evolve(b, image_files=tuple(files))
    poisoned_data_folder(root, b, tmp_path / "copy")
    test = set(np.union1d(b.splits.test_seen, b.splits.test_unseen).tolist())
    for i, f in enumerate(files):
        copy = tmp_path / "copy" / "img" / f.name
        assert copy.is_symlink() == (i not in test)
        assert (copy.read_bytes() == f.read_bytes()) == (i not in test)
    copied = (tmp_path / "copy" / "labels.txt").read_bytes()
    assert len(copied) == len("all labels") and copied != b"all labels"


def test_cli_audit_records_crashing_and_exiting_methods_and_goes_on(cli_registry, tmp_path, capsys):
    spec = _spec(tmp_path, [{"name": "crash", "method": "crashing"}, {"name": "exit", "method": "exiting"},
                            {"name": "dies", "method": "dying"}, {"name": "ls", "method": "least-squares"}])
    with pytest.raises(SystemExit) as exit_:
        main(["audit", spec])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 1
    assert "FAILED: toy / crash / seed 0: the method failed, so it was not audited: RuntimeError: crashing on purpose" in out
    assert "FAILED: toy / exit / seed 0: the method failed, so it was not audited: SystemExit: 3" in out
    assert "FAILED: toy / dies / seed 0: the method failed, so it was not audited: the method ended the audit's process (exit code 9)" in out
    assert "ok: toy / ls / seed 0" in out and "1 of 4 method run(s) passed the audit" in out


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_cli_audit_bad_tolerance_is_named_exit_2(cli_registry, tmp_path, capsys, value):
    spec = _spec(tmp_path, [{"name": "ls", "method": "least-squares"}])
    with pytest.raises(SystemExit) as exit_:
        main(["audit", spec, "--tolerance", value])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2 and "--tolerance" in err and "expected a finite number >= 0" in err
    assert "Traceback" not in err


def test_the_test_stage_keeps_its_unseen_caption_prototypes_when_the_test_split_is_poisoned(tmp_path):
    """With unscored caption prototypes, a held-out part of each unseen class's test images
    describes the class: the test-stage check must leave that side information alone (else every
    caption-prototype method is reported as peeking), while the validation check still poisons it."""
    from support.toy import captioned

    from zsbench.evaluation import protocol

    bundle = captioned()
    reference = protocol.class_side(bundle, protocol.test_stage(bundle, 0), "caption-means")
    for kind in ("random", "shuffle"):
        kept = poison_test_split(bundle, kind, 0, tmp_path / kind, side_information=False)
        side = protocol.class_side(kept, protocol.test_stage(kept, 0), "caption-means")
        np.testing.assert_array_equal(side.embeddings, reference.embeddings)
        assert not np.array_equal(kept.labels[kept.splits.test_seen], bundle.labels[bundle.splits.test_seen])
        poisoned = poison_test_split(bundle, kind, 0, tmp_path / f"{kind}-all")
        assert not np.array_equal(poisoned.labels, bundle.labels)
        test = np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)
        rest = np.setdiff1d(np.arange(len(bundle.labels)), test)
        assert not np.array_equal(poisoned.caption_embeddings[test], bundle.caption_embeddings[test])
        np.testing.assert_array_equal(poisoned.caption_embeddings[rest], bundle.caption_embeddings[rest])
