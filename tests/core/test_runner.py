from __future__ import annotations

import importlib
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_plugin import toy_bundle

import zsbench
from zsbench import DatasetBundle
from zsbench.errors import DataError
from zsbench.registry import Registry
from zsbench.runner.grid import Failure, LocalBackend, plan, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore

SPEC = {
    "name": "toy-bench",
    "seeds": 2,
    "datasets": [{"name": "toy"}],
    "methods": [
        {"name": "ls", "method": "least-squares", "calibrators": ["none", "metric-rescaling"]},
        {"name": "broken", "method": "least-squares", "fail": True},
    ],
}


def run(toy_registry, tmp_path, force=False, spec=SPEC):
    parsed = parse_spec(spec, "toy.yaml", toy_registry)
    with ResultStore(tmp_path / "r.sqlite") as store:
        backend = LocalBackend(toy_registry, torch.device("cpu"), show_progress=False)
        done, skipped, failures = run_spec(parsed, store, backend, force=force)
        return done, skipped, failures, store.rows()


def test_runs_store_rows_and_isolate_a_failing_method(toy_registry, tmp_path):
    done, skipped, failures, rows = run(toy_registry, tmp_path)
    assert len(done) == 2 and not skipped
    assert [f.task.method.label for f in failures] == ["broken", "broken"]
    assert all(isinstance(f, Failure) and "asked to fail" in f.message and not f.user_error for f in failures)
    assert {(r["method"], r["calibrator"], r["seed"]) for r in rows} == {
        ("ls", c, s) for c in ("none", "metric-rescaling") for s in (0, 1)
    }
    for r in rows:
        assert 0 <= r["u"] <= 1 and 0 <= r["s"] <= 1 and r["provenance"]["spec_hash"] == r["spec_hash"]
        assert r["hyperparameters"]["ridge"] in (0.1, 10.0)  # chosen from the default grid
    cal = [r for r in rows if r["calibrator"] == "metric-rescaling"]
    assert all(r["calibration_param"] is not None for r in cal)


def test_resume_skips_finished_runs_and_force_reruns(toy_registry, tmp_path):
    first = run(toy_registry, tmp_path)[3]
    done, skipped, failures, rows = run(toy_registry, tmp_path)
    assert not done and len(skipped) == 2 and len(failures) == 2  # the broken method is retried
    assert rows == first
    done, skipped, _, rows = run(toy_registry, tmp_path, force=True)
    assert len(done) == 2 and not skipped
    assert [(r["u"], r["s"], r["H"]) for r in rows] == [(r["u"], r["s"], r["H"]) for r in first]  # same seeds, same numbers


def test_changing_a_method_option_makes_a_new_run(toy_registry, tmp_path):
    run(toy_registry, tmp_path)
    spec = {**SPEC, "methods": [{"name": "ls", "method": "least-squares", "grid": {"ridge": [3.0]}}]}
    done, skipped, _, _ = run(toy_registry, tmp_path, spec=spec)
    assert len(done) == 2 and not skipped


def test_plan_is_the_full_grid(toy_registry):
    tasks = plan(parse_spec(SPEC, "toy.yaml", toy_registry))
    assert len(tasks) == 4 and len({t.key for t in tasks}) == 4


def test_rows_record_the_classes_and_test_images_of_their_test_stage(toy_registry, tmp_path):
    from zsbench.evaluation import protocol
    from zsbench.runner.grid import load_dataset

    rows = run(toy_registry, tmp_path)[3]
    bundle = load_dataset(parse_spec(SPEC, "toy.yaml", toy_registry).datasets[0], toy_registry)
    for r in rows:
        stage = protocol.test_stage(bundle, r["seed"])
        assert r["provenance"]["counts"] == {
            "seen_classes": len(np.unique(bundle.labels[stage.eval_seen])),
            "unseen_classes": len(np.unique(bundle.labels[stage.eval_unseen])),
            "test_seen_images": len(stage.eval_seen), "test_unseen_images": len(stage.eval_unseen)}
        assert r["provenance"]["counts"]["unseen_classes"] > 0


def test_rows_carry_each_test_images_correctness_and_it_gives_their_u_and_s(toy_registry, tmp_path):
    from zsbench.store.rows import per_class_means

    rows = run(toy_registry, tmp_path)[3]
    for r in rows:
        counts, groups = r["provenance"]["counts"], r["per_image"]
        assert sum(groups["unseen"]["sizes"]) == counts["test_unseen_images"]
        assert sum(groups["seen"]["sizes"]) == counts["test_seen_images"]
        assert float(per_class_means(groups["unseen"]).mean()) == pytest.approx(r["u"], abs=1e-12)
        assert float(per_class_means(groups["seen"]).mean()) == pytest.approx(r["s"], abs=1e-12)
    calibrated = {r["seed"]: r["per_image"] for r in rows if r["calibrator"] == "metric-rescaling"}
    plain = {r["seed"]: r["per_image"] for r in rows if r["calibrator"] == "none"}
    assert calibrated != plain  # each row's bits are at its own calibration parameter


def _observed(build) -> Registry:
    """The installed plugins, the toy method and an 'observed' data set: the toy one, built by
    ``build(root, seed, missing)``."""
    plugin = types.SimpleNamespace(
        register_datasets=zsbench.hookimpl(lambda register: register("observed", build)),
        register_methods=importlib.import_module("toy_plugin").register_methods,
    )
    return Registry.from_entry_points(extra=[("observed", plugin, None, None)])


def _two_data_sets(tmp_path, missing: bool = False) -> dict:
    return {"name": "order", "seeds": 2, "methods": [{"name": "ls", "method": "least-squares", "grid": {"ridge": [1.0]}}],
            "datasets": [{"name": "a", "plugin": "observed", "root": str(tmp_path / "a")},
                         {"name": "b", "plugin": "observed", "root": str(tmp_path / "b"), "seed": 1,
                          "missing": missing}]}


def _build(root: Path, seed: int = 0, missing: bool = False) -> DatasetBundle:
    if missing:
        raise DataError(Path(root) / "features.mat", "feature file not found (the `features` option)")
    return toy_bundle(seed=seed)


def test_a_data_set_is_run_and_stored_before_the_next_one_is_loaded(tmp_path):
    """Loading a data set can take an hour (its backbone's features): the rows of the ones before
    it are in the store, and reported, by then."""
    events = []
    with ResultStore(tmp_path / "r.sqlite") as store:
        def build(root: Path, seed: int = 0, missing: bool = False) -> DatasetBundle:
            events.append(("load", Path(root).name, sorted({r["dataset"] for r in store.rows()})))
            return _build(root, seed, missing)

        registry = _observed(build)
        spec = parse_spec(_two_data_sets(tmp_path), "order.yaml", registry)

        def run():
            return run_spec(spec, store, LocalBackend(registry, torch.device("cpu"), show_progress=False),
                            on_done=lambda task, outcome: events.append(("done", task.dataset.label)))

        done, skipped, failures = run()
        assert len(done) == 4 and not skipped and not failures
        assert events == [("load", "a", []), ("done", "a"), ("done", "a"),
                          ("load", "b", ["a"]), ("done", "b"), ("done", "b")]
        events.clear()
        done, skipped, failures = run()  # a rerun loads each data set for its run keys, and skips
    assert not done and [t.dataset.label for t in skipped] == ["a", "a", "b", "b"] and not failures
    assert events == [("load", "a", ["a", "b"]), ("load", "b", ["a", "b"])]


def test_a_data_set_that_fails_to_load_stops_the_run_and_keeps_the_rows_before_it(tmp_path, monkeypatch, capsys):
    """Through the CLI: the data error is the named one (exit 2), after the first data set's runs
    were stored; the repaired spec then runs the second data set only."""
    from zsbench import api
    from zsbench.cli import main

    registry = _observed(_build)
    monkeypatch.setattr("zsbench.cli.get_registry", lambda strict=None: registry)
    spec, db = tmp_path / "order.yaml", tmp_path / "r.sqlite"
    spec.write_text(json.dumps(_two_data_sets(tmp_path, missing=True)))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(spec), "--results", str(db), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2
    assert f"error: {tmp_path / 'b' / 'features.mat'}: feature file not found (the `features` option)" in err
    with ResultStore(db, readonly=True) as store:
        assert sorted((r["dataset"], r["seed"]) for r in store.rows()) == [("a", 0), ("a", 1)]
    outcome = api.run(_two_data_sets(tmp_path), db, device="cpu", quiet=True, plugins=registry).outcome
    assert [t.dataset.label for t in outcome.skipped] == ["a", "a"]
    assert [t.dataset.label for t in outcome.done] == ["b", "b"] and not outcome.failures
