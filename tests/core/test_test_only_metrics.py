"""AUSUC and the oracle H are computed on test, after every choice, and never feed one."""

from __future__ import annotations

import torch

from zsbench.evaluation import stages as evaluation
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore

SPEC = {
    "name": "toy-bench",
    "seeds": 2,
    "datasets": [{"name": "toy"}],
    "methods": [{"name": "ls", "method": "least-squares", "calibrators": ["none", "metric-rescaling"]}],
}
REPORTED_ONLY = {"ausuc", "oracle_H", "wall_time", "created_at", "id"}


def rows(toy_registry, path):
    with ResultStore(path) as store:
        run_spec(parse_spec(SPEC, "toy.yaml", toy_registry), store, LocalBackend(toy_registry, torch.device("cpu"), show_progress=False))
        return store.rows()


def test_rows_carry_ausuc_and_an_oracle_at_least_the_chosen_h(toy_registry, tmp_path):
    stored = rows(toy_registry, tmp_path / "r.sqlite")
    assert len(stored) == 4
    for r in stored:
        assert 0 < r["ausuc"] <= 1
        if r["calibrator"] == "none":
            assert r["oracle_H"] is None
        else:  # the chosen parameter is one of the values the oracle maximises over
            assert r["oracle_H"] >= r["H"] - 1e-12
    by_seed = {}
    for r in stored:  # one scorer per seed here: AUSUC does not depend on the calibrator
        by_seed.setdefault((r["seed"], r["hyperparameters"]["ridge"]), set()).add(r["ausuc"])
    assert all(len(values) == 1 for values in by_seed.values())


def test_changing_the_test_only_metrics_changes_no_chosen_value(toy_registry, tmp_path, monkeypatch):
    honest = rows(toy_registry, tmp_path / "honest.sqlite")
    calls = []

    def hostile(*args, **kwargs):  # a different value on every call, still a valid accuracy
        calls.append(args)
        return 0.999 - len(calls) * 1e-4

    monkeypatch.setattr(evaluation, "ausuc", hostile)
    monkeypatch.setattr(evaluation, "oracle_h", hostile)
    changed = rows(toy_registry, tmp_path / "changed.sqlite")
    made = {0.999 - n * 1e-4 for n in range(1, len(calls) + 1)}
    assert calls and len(changed) == len(honest)
    assert all(r["ausuc"] in made and (r["oracle_H"] is None or r["oracle_H"] in made) for r in changed)
    assert [r["ausuc"] for r in honest] != [r["ausuc"] for r in changed]
    strip = [{k: v for k, v in r.items() if k not in REPORTED_ONLY} for r in honest]
    assert strip == [{k: v for k, v in r.items() if k not in REPORTED_ONLY} for r in changed]
