"""The code path that makes the numbers: derived from imports, hashed whole into every run key,
free of import circles."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from zsbench.runner import identity
from zsbench.runner.grid import identify, plan
from zsbench.spec import parse_spec

ZSBENCH = identity.PACKAGE
SPEC = {"name": "path", "seeds": 1, "datasets": [{"name": "toy"}],
        "methods": [{"name": "ls", "method": "least-squares", "grid": {"ridge": [1.0]}}]}


def _loaded_by(module: str) -> set[str]:
    """The zsbench modules importing ``module`` loads, in a fresh interpreter."""
    code = (f"import json, sys, {module}, zsbench; "
            "print(json.dumps([zsbench.__file__, sorted(m for m in sys.modules if m.split('.')[0] == 'zsbench')]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ZSBENCH.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    where, loaded = json.loads(done.stdout.splitlines()[-1])
    assert Path(where).resolve().parent == ZSBENCH, f"the subprocess imported another zsbench: {where}"
    return set(loaded)


def test_every_module_the_evaluation_loads_is_on_the_hashed_path():
    loaded = _loaded_by(identity.EVALUATION)
    assert identity.EVALUATION in loaded and "zsbench.evaluation.protocol" in loaded
    missing = loaded - set(identity.core_modules())
    assert not missing, f"loaded by `import {identity.EVALUATION}` but left out of the run key: {sorted(missing)}"


def test_the_runner_and_the_identity_code_are_off_the_evaluation_path():
    """Planning, backends, resume and run keys change no number: editing them keeps every row."""
    modules = set(identity.core_modules())
    assert not modules & {"zsbench.runner.grid", "zsbench.runner.identity", "zsbench.api", "zsbench.cli"}
    assert not _loaded_by(identity.EVALUATION) & {"zsbench.runner.grid", "zsbench.runner.identity"}


def _run_key(registry, bundle) -> str:
    identity.core_source_hash.cache_clear()
    [task] = identify(plan(parse_spec(SPEC, "path.yaml", registry)), registry, {"toy": bundle})
    return task.key


def test_an_edit_to_any_module_on_the_evaluation_path_changes_the_run_key(toy_registry, tmp_path, monkeypatch):
    from toy_plugin import toy_bundle

    bundle = toy_bundle()
    base = _run_key(toy_registry, bundle)
    assert _run_key(toy_registry, bundle) == base  # unchanged code: the same key
    original = identity._module_file
    modules = identity.core_modules()
    assert {identity.EVALUATION, "zsbench.evaluation.protocol", "zsbench.evaluation.calibration", "zsbench.spec"} <= set(modules)
    for name in modules:
        edited = tmp_path / f"{name}.py"
        edited.write_bytes(original(name).read_bytes() + b"\n# edited\n")
        monkeypatch.setattr(identity, "_module_file", lambda m, name=name, edited=edited: edited if m == name else original(m))
        assert _run_key(toy_registry, bundle) != base, f"editing {name} leaves run keys unchanged"
    monkeypatch.setattr(identity, "_module_file", original)
    assert _run_key(toy_registry, bundle) == base


def test_a_module_the_evaluation_starts_importing_joins_the_path(tmp_path, monkeypatch):
    """The path follows the source: a new import in the evaluation brings its module in."""
    original = identity._module_file
    assert "zsbench.store.export" not in identity.core_modules()
    edited = tmp_path / "evaluation.py"
    edited.write_text(original(identity.EVALUATION).read_text() + "\n\ndef _helper():\n    from zsbench.store import export\n")
    monkeypatch.setattr(identity, "_module_file", lambda m: edited if m == identity.EVALUATION else original(m))
    assert "zsbench.store.export" in identity.core_modules()


def _module_level_imports() -> dict[str, set[str]]:
    """zsbench module -> the zsbench modules its module-level statements import (not those in
    functions, nor under ``if TYPE_CHECKING:``; a package its submodule imports implicitly is
    no edge)."""
    files = {}
    for path in ZSBENCH.rglob("*.py"):
        parts = list(path.relative_to(ZSBENCH.parent).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo, edges = list(ast.parse(path.read_text()).body), set()
        while todo:
            node = todo.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in (getattr(node.test, "id", None), getattr(node.test, "attr", None)):
                todo += node.orelse
                continue
            todo += ast.iter_child_nodes(node)
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                module = ".".join(filter(None, (base, node.module)))
                edges |= {f"{module}.{a.name}" if f"{module}.{a.name}" in files else module for a in node.names}
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules in import order, the first repeated), or None."""
    state: dict[str, str] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target, stack)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_zsbench_modules_import_each_other_in_a_circle():
    graph = _module_level_imports()
    assert graph["zsbench.runner.grid"] >= {"zsbench.evaluation.stages", "zsbench.runner.identity"}  # the graph sees imports
    cycle = _cycle(graph)
    assert cycle is None, "zsbench modules import each other in a circle: " + " -> ".join(cycle)


def test_the_circle_check_finds_a_circle():
    graph = _module_level_imports()
    graph["zsbench.runner.identity"] = graph["zsbench.runner.identity"] | {"zsbench.runner.grid"}
    cycle = _cycle(graph)
    assert cycle[0] == cycle[-1] and set(cycle) == {"zsbench.runner.identity", "zsbench.runner.grid"}


def test_the_evaluation_runs_through_its_typed_records(toy_registry, tmp_path):
    """``execute`` on a task of the toy data: one row per calibrator, numbers from the selection
    the validation stage made."""
    from toy_plugin import toy_bundle

    from zsbench.evaluation.stages import RunSetup, execute, select_on_validation

    bundle = toy_bundle()
    spec = {**SPEC, "methods": [{"name": "ls", "method": "least-squares", "grid": {"ridge": [0.1, 10.0]},
                                 "calibrators": ["none", "metric-rescaling"]}]}
    [task] = plan(parse_spec(spec, "path.yaml", toy_registry))
    setup = RunSetup.of(task, toy_registry, bundle, torch.device("cpu"), tmp_path, show_progress=False)
    selection = select_on_validation(setup)
    assert set(selection.chosen) == {"none", "metric-rescaling"} and len(selection.sweeps) == 2
    rows = execute(task, toy_registry, bundle, torch.device("cpu"), tmp_path, show_progress=False)
    assert sorted(r.calibrator for r in rows) == ["metric-rescaling", "none"]
    for row in rows:
        choice = selection.chosen[row.calibrator]
        assert row.hyperparameters == selection.points[choice.index] and row.val_H == choice.val_H
        assert row.provenance == {"grid_edges": task.method.grid_edges(row.hyperparameters)}
