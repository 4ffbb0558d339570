"""Each row names the numeric environment that produced it, and two environments are compared
on what changes the bits."""

from __future__ import annotations

import copy
import json

import torch

from zsbench.evaluation.environment import environment, environment_differences
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore


def test_rows_record_the_pinned_environment(toy_registry, tmp_path):
    spec = {"name": "env", "seeds": 1, "datasets": [{"name": "toy"}], "methods": [{"name": "ls", "method": "least-squares"}]}
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_spec(parse_spec(spec, "env.yaml", toy_registry), store, LocalBackend(toy_registry, torch.device("cpu"), show_progress=False))
        [row] = store.rows()
    env = row["provenance"]["environment"]
    assert json.loads(json.dumps(env)) == env
    assert env["torch"]["threads"] == 1 and env["torch"]["deterministic"] is True
    assert env["torch"]["version"] == torch.__version__ and env["cpu"]["machine"]
    assert all(int(pool["num_threads"]) == 1 for pool in env["blas"])
    assert environment_differences(env, environment()) == []


def test_differences_name_what_changes_the_bits():
    here = environment()
    other = copy.deepcopy(here)
    other["cpu"]["model"], other["cpu"]["cores"], other["torch"]["threads"] = "another CPU", 1024, 7
    assert environment_differences(here, here) == []
    assert [d.split(":")[0] for d in environment_differences(here, other)] == ["cpu.model", "torch.threads"]
    assert environment_differences(None, here) == ["no environment recorded (a row from an older zsbench)"]
