"""The Python API: in-process components, Results as data, errors as exceptions, specs by name."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import textwrap
import types
from typing import ClassVar

import numpy as np
import pytest
import torch
from support.api import RIDGE_CELL, run_cell, toy_dataset
from toy_plugin import LeastSquares

import zsbench
from zsbench import api
from zsbench.errors import PluginError, SpecError, UserError
from zsbench.registry import Registry
from zsbench.runner.backends.ray import plugin_refs
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import MethodSpec, parse_spec
from zsbench.store.sqlite import ResultStore


@pytest.fixture(autouse=True)
def session(monkeypatch):
    """Each test starts with no in-process component and leaves none behind."""
    monkeypatch.setattr(api, "_session", {})
    api.register(toy_dataset, name="toy", kind="dataset")
    torch.set_num_threads(1)


def evaluate(method, tmp_path, **kwargs):
    kwargs.setdefault("calibrators", ["none", "metric-rescaling"])
    return zsbench.evaluate(method, datasets=["toy"], seeds=2, results=tmp_path / "r.sqlite", quiet=True,
                            grid={"ridge": [0.1, 10.0]}, **kwargs)


def test_a_method_defined_in_a_cell_gives_a_data_frame_with_cis(tmp_path):
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    results = evaluate(method, tmp_path)
    frame = results.to_pandas()
    assert len(frame) == 4 and set(frame.calibrator) == {"none", "metric-rescaling"}
    assert frame[["u", "s", "H"]].notna().all().all() and (frame.H <= 1).all()
    assert {json.loads(c)["ridge"] for c in frame.choices} <= {0.1, 10.0}
    assert set(frame.method_plugin) == {"NotebookRidge"} and frame.run_key.notna().all()
    summary = results.summary()
    assert list(summary.calibrator) == ["none", "metric-rescaling"] and (summary.seeds == 2).all()
    assert summary[["H", "H_ci"]].notna().all().all()
    assert "<table>" in results._repr_html_()
    assert results.to_arrow().num_rows == 4


def test_editing_the_cell_recomputes_and_rerunning_it_unchanged_does_not(tmp_path):
    first = evaluate(run_cell(RIDGE_CELL, 1)["NotebookRidge"], tmp_path)
    again = evaluate(run_cell(RIDGE_CELL, 2)["NotebookRidge"], tmp_path)  # the same cell run again
    assert len(again.outcome.skipped) == 2 and not again.outcome.done
    assert [r["run_key"] for r in again.rows] == [r["run_key"] for r in first.rows]
    edited = RIDGE_CELL.replace("self.ridge * torch.eye", "2 * self.ridge * torch.eye")
    changed = evaluate(run_cell(edited, 3)["NotebookRidge"], tmp_path)
    assert len(changed.outcome.done) == 2 and not changed.outcome.skipped
    assert {r["run_key"] for r in changed.rows}.isdisjoint(r["run_key"] for r in first.rows)


def test_the_same_method_packaged_as_a_plugin_gives_identical_rows(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "notebook_ridge_plugin.py").write_text(RIDGE_CELL + textwrap.dedent('''
        @zsbench.hookimpl
        def register_methods(register):
            register("NotebookRidge", NotebookRidge)
    '''))
    monkeypatch.syspath_prepend(str(package))
    module = importlib.import_module("notebook_ridge_plugin")
    in_process = evaluate(run_cell(RIDGE_CELL, 1)["NotebookRidge"], tmp_path)
    toy = importlib.import_module("toy_plugin")
    registry = Registry.from_entry_points(extra=[("toy", toy, None, None), ("ridge", module, None, None)])
    spec = parse_spec({"name": "packaged", "seeds": 2, "datasets": [{"name": "toy"}],
                       "methods": [{"name": "NotebookRidge", "calibrators": ["none", "metric-rescaling"],
                                    "grid": {"ridge": [0.1, 10.0]}}]}, "packaged.yaml", registry)
    with ResultStore(tmp_path / "packaged.sqlite") as store:
        run_spec(spec, store, LocalBackend(registry, torch.device("cpu"), show_progress=False))
        packaged = store.rows()
    numbers = ("seed", "calibrator", "u", "s", "H", "zsl", "val_H", "calibration_param", "hyperparameters")
    assert [[r[k] for k in numbers] for r in packaged] == [[r[k] for k in numbers] for r in in_process.rows]


def test_an_in_process_method_goes_through_the_option_schema(tmp_path):
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    with pytest.raises(SpecError, match=r"ridg: unknown option for method 'NotebookRidge' \(did you mean 'ridge'\?\); known options: ridge"):
        evaluate(method, tmp_path, options={"ridg": 1.0})
    with pytest.raises(SpecError, match=r"methods\[0\]\.ridge: expected a number, got 'x'"):
        zsbench.evaluate(method, datasets=["toy"], options={"ridge": "x"}, quiet=True)


def test_api_errors_are_exceptions_with_the_cli_messages(tmp_path):
    with pytest.raises(SpecError, match="unknown method 'no-such-method'"):
        zsbench.evaluate("no-such-method", datasets=["toy"], quiet=True)
    with pytest.raises(SpecError, match="no spec of that name ships with zsbench; did you mean 'demo'"):
        zsbench.run("dmeo", tmp_path / "r.sqlite")
    with pytest.raises(UserError, match="no results database here"):
        zsbench.load_results(tmp_path / "none.sqlite")
    with pytest.raises(PluginError, match="taken by plugin 'baselines'"):
        zsbench.register(toy_dataset, name="eszsl", kind="method")


def test_run_takes_yaml_text_and_load_results_reads_the_rows_back(tmp_path):
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    zsbench.register(method, name="ridge-nb")
    spec = "name: text-spec\nseeds: 1\ndatasets: [{name: toy}]\nmethods: [{name: ridge-nb}]\n"
    results = zsbench.run(spec, tmp_path / "r.sqlite", quiet=True)
    assert results.spec_name == "text-spec" and len(results) == 1 and not results.failures
    assert zsbench.load_results(tmp_path / "r.sqlite").rows == results.rows


def test_list_plugins_takes_wildcards_and_lists_in_process_components():
    assert [e.name for e in zsbench.list_plugins("calibrator", "cal*")] == ["calibrated-stacking", "calibrated-stacking-quantile"]
    toy = zsbench.list_plugins("dataset", "to?")
    assert [(e.name, e.plugin, e.in_process) for e in toy] == [("toy", "in-process", True)]
    with pytest.raises(PluginError, match="kind 'methods'"):
        zsbench.list_plugins("methods")


def test_registered_is_a_context_manager():
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    with zsbench.registered(scoped=method):
        assert [e.name for e in zsbench.list_plugins("method", "scoped")] == ["scoped"]
    assert zsbench.list_plugins("method", "scoped") == []


def test_audit_checks_an_in_process_method():
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    (result,) = zsbench.audit(method=method, datasets=["toy"], grid={"ridge": [0.1, 10.0]})
    assert result.passed and result.checked > 0 and result.method == "NotebookRidge"


def test_audit_is_the_function_even_after_the_audit_modules_are_imported():
    for module in ("zsbench.runner.audit", "zsbench.cli.audit"):
        importlib.import_module(module)
    assert zsbench.audit is api.audit
    assert sys.modules["zsbench.runner.audit"].audit_spec


def test_audit_catches_an_in_process_method_that_memorises_the_test_split():
    """Defined in this function, so no process can import it: it reaches the audit's fresh
    processes by value, and its memory (a class attribute) is caught there."""

    class TestScaleMemoriser(LeastSquares):
        memory: ClassVar[dict[str, float]] = {}

        def fit(self, data, context):
            if "scale" not in self.memory:  # the runner's full data set, found on the stack
                bundle = next(f.frame.f_locals["bundle"] for f in inspect.stack()
                              if isinstance(f.frame.f_locals.get("bundle"), zsbench.DatasetBundle))
                test = np.union1d(bundle.splits.test_seen, bundle.splits.test_unseen)
                self.memory["scale"] = float(np.nan_to_num(np.abs(bundle.features[test]).mean(), nan=1e6))
            self.ridge = self.memory["scale"]
            return super().fit(data, context)

    (result,) = zsbench.audit(method=TestScaleMemoriser, datasets=["toy"], grid={})
    assert result.error is None and not result.passed
    assert "none: validation H moved when the test split was replaced (random)" in "\n".join(result.problems)


def test_a_plugin_module_run_as_a_script_is_refused_by_name():
    script = types.ModuleType("__main__")
    script.register_methods = zsbench.hookimpl(lambda register: register("scripted", LeastSquares))
    with pytest.raises(UserError, match="plugin 'script' is defined in the script being run"):
        plugin_refs(Registry([("script", script, None, None)]))


def test_an_in_process_component_that_cannot_be_pickled_is_named_with_the_fix():
    import threading

    api.register(LeastSquares(), name="locked")
    api._session[("method", "locked")].lock = threading.Lock()
    with pytest.raises(UserError, match="in-process components cannot be sent to another process: "
                                        "TypeError: cannot pickle '_thread.lock' object; keep unpicklable state"):
        plugin_refs(api.registry())


def test_a_grid_value_chosen_at_an_edge_is_warned_about_and_recorded(tmp_path, capsys):
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    results = zsbench.evaluate(method, datasets=["toy"], seeds=1, grid={"ridge": [1e-3, 1e-2, 1e6]},
                               results=None, calibrators=["none"])
    (row,) = results.rows
    assert row["hyperparameters"] == {"ridge": 1e-3} and row["provenance"]["grid_edges"] == ["ridge"]
    assert results.to_pandas().grid_edges.tolist() == ["ridge"]
    shown = capsys.readouterr()
    assert "ridge=0.001 was chosen at the edge of its grid [0.001, 0.01, 1000000.0]" in shown.out
    assert "toy / NotebookRidge / seed 0: grid:" in shown.err and "0/3 [" in shown.err  # grid progress, of 3
    spec = MethodSpec("m", "m", {}, {"ridge": [0.1, 1.0, 10.0], "k": ["a", "b", "c"], "two": [1, 2]}, ())
    assert spec.grid_edges({"ridge": 10.0, "k": "c", "two": 1}) == ["ridge"]  # two values: no inside to prefer
    assert spec.grid_edges({"ridge": 1.0, "k": "a", "two": 2}) == []


def image_projection(context):
    """A feature projection known only to this session's registry."""
    from zsbench_clarel.encoders import VectorProjection

    return VectorProjection("image", "features", context.input_dim, context.embed_dim, 0.0)


def retrieval(context):
    """CLAREL's retrieval loss under a name known only to this session's registry."""
    from zsbench_clarel.losses import Retrieval

    return Retrieval().build(context)


def test_clarel_builds_encoders_and_losses_from_the_runs_registry(tmp_path):
    zsbench.register(image_projection, name="session-projection", kind="encoder")
    zsbench.register(retrieval, name="session-retrieval", kind="loss")
    assert "session-projection" not in zsbench.get_registry().names("encoder")
    results = zsbench.evaluate("clarel", datasets=["toy"], seeds=1, results=None, quiet=True,
                               options={"image_encoder": {"name": "session-projection"}, "text_encoder": "class-projection",
                                        "loss": {"name": "session-retrieval"}, "embed_dim": 8, "steps": 20, "batch_size": 6,
                                        "eval_every": None, "checkpoint_every": None})
    assert not results.failures and len(results) == 1
    code = results.rows[0]["provenance"]["code"]["components"]
    assert code["encoder:session-projection"] == "<in-process encoder session-projection>"


def test_the_html_table_escapes_labels():
    row = {"dataset": "d", "method": "<script>alert(1)</script>", "calibrator": "none", "seed": 0,
           "u": 0.5, "s": 0.5, "H": 0.5, "zsl": 0.5}
    shown = zsbench.Results((row,), failures=("<img src=x>: failed",))._repr_html_()
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "&lt;img src=x&gt;" in shown


def test_an_object_is_identified_by_its_class_source_and_attributes(tmp_path):
    method = run_cell(RIDGE_CELL, 1)["NotebookRidge"]
    kwargs = dict(datasets=["toy"], seeds=1, results=tmp_path / "r.sqlite", quiet=True, calibrators=["none"])
    small = zsbench.evaluate(method(0.1), name="ridge-object", **kwargs)
    same = zsbench.evaluate(method(0.1), name="ridge-object", **kwargs)
    large = zsbench.evaluate(method(1e4), name="ridge-object", **kwargs)
    assert same.outcome.skipped and not same.outcome.done
    assert large.outcome.done and large.rows[0]["run_key"] != small.rows[0]["run_key"]
