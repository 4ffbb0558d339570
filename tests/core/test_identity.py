from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from support.paths import TESTS
from toy_plugin import toy_bundle

from zsbench.cli import main
from zsbench.errors import DataError
from zsbench.registry import Registry
from zsbench.runner import identity
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.export import export_rows, read_jsonl_rows
from zsbench.store.sqlite import ResultStore

SPEC = {"name": "edit", "seeds": 1, "datasets": [{"name": "toy"}],
        "methods": [{"name": "ls", "method": "least-squares", "grid": {"ridge": [1.0]}}]}


def _editable_plugin(tmp_path, monkeypatch):
    """A copy of the toy plugin as its own module, whose source a test may edit."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    shutil.copy(TESTS / "toy_plugin.py", folder / "editable_toy.py")
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop("editable_toy", None)
    module = importlib.import_module("editable_toy")
    return folder / "editable_toy.py", Registry.from_entry_points(extra=[("editable", module, "editable-toy", "1.0")])


def _run(registry, db, spec=SPEC):
    with ResultStore(db) as store:
        done, skipped, failures = run_spec(parse_spec(spec, "s.yaml", registry), store,
                                           LocalBackend(registry, torch.device("cpu"), show_progress=False))
        assert not failures
        return done, skipped, store.rows()


def _superseded(db) -> list[dict]:
    with ResultStore(db, readonly=True) as store:
        return store.rows(superseded=True)


def test_editing_a_methods_source_recomputes_its_rows_and_marks_old_ones_stale(tmp_path, monkeypatch):
    source, registry = _editable_plugin(tmp_path, monkeypatch)
    db = tmp_path / "r.sqlite"
    done, skipped, rows = _run(registry, db)
    assert len(done) == 1 and not skipped
    code = rows[0]["provenance"]["code"]
    assert code["components"]["method:least-squares"] == "editable_toy"
    assert code["packages"]["editable_toy"]["distribution"] == "editable-toy"
    assert identity.stale_reasons(rows[0], registry) == []
    assert _run(registry, db)[1]  # unchanged code: skipped
    source.write_text(source.read_text() + "\n# an edit that could change numbers\n")
    done, skipped, rows = _run(registry, db)
    assert len(done) == 1 and not skipped  # recomputed under a new run key
    (new,) = rows  # the rerun supersedes the old row, which is still stored
    (old,) = _superseded(db)
    assert old["run_key"] != new["run_key"]
    assert identity.stale_reasons(old, registry) == [  # the toy data set lives in the same module
        "dataset:toy: editable_toy source changed", "method:least-squares: editable_toy source changed"]
    assert identity.stale_reasons(new, registry) == []


def test_results_stale_lists_rows_from_other_code(tmp_path, monkeypatch, capsys):
    source, registry = _editable_plugin(tmp_path, monkeypatch)
    db = tmp_path / "r.sqlite"
    _run(registry, db)
    monkeypatch.setattr("zsbench.cli.get_registry", lambda strict=None: registry)
    main(["results", "--results", str(db), "--stale"])
    assert "every row came from the current code and data" in capsys.readouterr().out
    source.write_text(source.read_text() + "\n# edited\n")
    main(["results", "--results", str(db), "--stale", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert "method:least-squares: editable_toy source changed" in row["stale"]


def test_core_code_and_data_are_part_of_the_identity(toy_registry):
    # CLAREL's options class declares loss and image_encoder as components (component_option).
    method = {"plugin": "clarel", "options": {"loss": {"name": "clarel"}},
              "grid": {"image_encoder": [{"name": "feature-projection"}]}, "calibrators": [{"name": "metric-rescaling"}]}
    code = identity.code_identity(toy_registry, method, {"plugin": "toy"})
    assert set(code["components"]) == {"method:clarel", "dataset:toy", "loss:clarel",
                                       "encoder:feature-projection", "calibrator:metric-rescaling"}
    assert code["components"]["calibrator:metric-rescaling"] == "zsbench_calibrators"
    changed = {**code, "core": "0" * 16}
    assert identity.code_differences(code, code) == []
    assert identity.code_differences(code, changed) == ["zsbench core code changed"]
    a, b = toy_bundle(), toy_bundle(noise=2.5)
    assert identity.content_digest(a) == identity.content_digest(toy_bundle())
    assert identity.content_digest(a) != identity.content_digest(b)


def test_file_hashes_are_cached_by_size_and_mtime(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(b"one")
    (data / "sub").mkdir()
    (data / "sub" / "b.bin").write_bytes(b"two")
    cache = tmp_path / "cache"
    files = identity.file_identity([data / "a.bin", data / "sub" / "b.bin"], identity.FileHashes(cache))
    assert [f["name"] for f in files] == ["a.bin", "sub/b.bin"] and files[0]["size"] == 3
    recorded = {"files": files}
    assert identity.data_differences(recorded, identity.FileHashes(cache)) == []
    # Same size and mtime: the cached hash is trusted (nothing is read again) ...
    stat = (data / "a.bin").stat()
    (data / "a.bin").write_bytes(b"ONE")
    os.utime(data / "a.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert identity.data_differences(recorded, identity.FileHashes(cache)) == []
    # ... a new mtime makes it hash again and see the change; a removed file is named.
    os.utime(data / "a.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (data / "sub" / "b.bin").unlink()
    assert identity.data_differences(recorded, identity.FileHashes(cache)) == [
        f"{(data / 'a.bin').resolve()} changed", f"{(data / 'sub' / 'b.bin').resolve()} is gone"]


def test_a_changed_data_file_recomputes(toy_registry, tmp_path, monkeypatch):
    """The synthetic data set is written in the real formats: edit one of its caption files."""
    spec = {"name": "syn", "seeds": 1,
            "datasets": [{"name": "syn", "plugin": "synthetic", "root": str(tmp_path / "data"), "num_classes": 12,
                          "per_class": 10, "images": False}],
            "methods": [{"name": "eszsl", "grid": {"gamma": [1.0], "lam": [1.0]}}]}
    db = tmp_path / "r.sqlite"
    _, _, rows = _run(toy_registry, db, spec)
    files = rows[0]["provenance"]["data"]["files"]
    assert any(f["name"].endswith("att_splits.mat") for f in files)
    text = next(Path(f["path"]) for f in files if f["path"].endswith(".txt"))
    assert _run(toy_registry, db, spec)[1]  # unchanged: skipped
    text.write_text(text.read_text() + "a new sentence\n")
    done, skipped, rows = _run(toy_registry, db, spec)
    assert len(done) == 1 and not skipped
    assert identity.stale_reasons(_superseded(db)[0], toy_registry) == [f"{text.resolve()} changed"]


def test_export_and_read_back_jsonl(tmp_path, toy_registry):
    _, _, rows = _run(toy_registry, tmp_path / "r.sqlite")
    rows = [{**r, "curves": {}} for r in rows]
    (path,) = export_rows(rows, tmp_path / "out")
    assert path.name == "toy.jsonl"
    back = read_jsonl_rows(tmp_path / "out")
    assert back == [{k: v for k, v in r.items() if k != "id"} for r in rows]
    first = path.read_bytes()
    export_rows(list(reversed(rows)), tmp_path / "out")
    assert path.read_bytes() == first  # same rows, same bytes


def test_exported_rows_list_their_data_files_once(toy_registry, tmp_path):
    """The file lists go to one manifest beside the rows; read back, each row is whole again, and a
    data file edited afterwards is still seen as a change."""
    spec = {"name": "syn", "seeds": 2,
            "datasets": [{"name": "syn", "plugin": "synthetic", "root": str(tmp_path / "data"), "num_classes": 12,
                          "per_class": 10, "images": False}],
            "methods": [{"name": "eszsl", "grid": {"gamma": [1.0], "lam": [1.0]}}]}
    _, _, rows = _run(toy_registry, tmp_path / "r.sqlite", spec)
    rows = [{k: v for k, v in r.items() if k != "id"} | {"curves": {}} for r in rows]
    assert len(rows) == 2 and len(rows[0]["provenance"]["data"]["files"]) > 10
    (path,) = export_rows(rows, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "syn.files.json").read_text())
    assert len(manifest) == 1 and '"sha256"' not in path.read_text()  # one list, no row repeats it
    back = read_jsonl_rows(path)
    assert back == sorted(rows, key=lambda r: r["seed"])
    text = next(Path(f["path"]) for f in back[0]["provenance"]["data"]["files"] if f["path"].endswith(".txt"))
    text.write_text(text.read_text() + "a new sentence\n")
    assert identity.stale_reasons(back[1], toy_registry) == [f"{text.resolve()} changed"]
    (tmp_path / "out" / "syn.files.json").unlink()
    with pytest.raises(DataError, match="syn.files.json.*missing: syn.jsonl line 1"):
        read_jsonl_rows(tmp_path / "out")


def test_leaderboard_flags_or_refuses_stale_rows(tmp_path, monkeypatch, capsys):
    source, registry = _editable_plugin(tmp_path, monkeypatch)
    _, _, rows = _run(registry, tmp_path / "r.sqlite")
    export_rows([{**r, "curves": {}} for r in rows], tmp_path / "rows")
    monkeypatch.setattr("zsbench.registry.get_registry", lambda strict=None: registry)
    args = ["leaderboard", "--results", str(tmp_path / "rows"), "--out", str(tmp_path / "site"), "--no-plots"]
    main([*args, "--stale", "refuse"])  # current rows: written
    assert "stale" not in (tmp_path / "site" / "toy.md").read_text().lower()
    source.write_text(source.read_text() + "\n# edited\n")
    main(args)
    page = (tmp_path / "site" / "toy.md").read_text()
    assert "| ls (stale) |" in page  # the row is marked in the ranking, and why is said below it
    assert "dataset:toy: editable_toy source changed, method:least-squares: editable_toy source changed" in page
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--stale", "refuse"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2 and "1 of 1 result row(s) did not come from the current code and data" in err


def test_every_module_an_evaluation_runs_is_in_the_code_identity(tmp_path, monkeypatch):
    """Traces a real run (CLAREL with its encoders, a calibrator, the synthetic loaders) and
    requires every zsbench source file it executed to be hashed into the run key: a module on
    the evaluation path, or a component's package."""
    from zsbench.evaluation.stages import execute
    from zsbench.registry import get_registry
    from zsbench.runner.grid import identify, plan

    monkeypatch.setenv("ZSBENCH_DATA", str(tmp_path / "data"))
    registry = get_registry()
    raw = {"name": "trace", "seeds": 1, "datasets": [{"name": "synthetic"}],
           "methods": [{"name": "clarel", "method": "clarel", "embed_dim": 16, "steps": 4, "eval_every": None,
                        "checkpoint_every": None, "text_encoder": {"name": "class-projection"},
                        "grid": {"image_encoder": [{"name": "feature-projection"}]},
                        "calibrators": ["none", "metric-rescaling"]}]}
    spec = parse_spec(raw, "trace.yaml", registry)
    backend = LocalBackend(registry, torch.device("cpu"), show_progress=False)
    bundle = backend.bundle(spec.datasets[0])
    [task] = identify(plan(spec), registry, {"synthetic": bundle})
    executed = set()

    def record(frame, event, arg):
        executed.add(frame.f_code.co_filename)

    sys.setprofile(record)
    try:
        execute(task, registry, bundle, torch.device("cpu"), tmp_path / "cache", show_progress=False)
    finally:
        sys.setprofile(None)
    code = task.identity.code
    roots = {m for c in code["components"].values() for m in identity._zsbench_imports(c)}
    hashed = {str(identity._module_file(m)) for m in identity.core_modules(roots)}
    # identity.py runs only to compute the run key, which is not a number.
    hashed.add(str(identity._module_file("zsbench.runner.identity")))
    for package in code["packages"]:
        hashed |= {str(p) for p in identity.package_files(package)[1]}
    zsbench_root = str(identity.PACKAGE)
    ran = {f for f in executed if f.startswith(zsbench_root) or "/plugins/zsbench_" in f}
    assert ran - hashed == set(), f"ran during an evaluation but not in its code identity: {sorted(ran - hashed)}"
    assert {"zsbench.spec", "zsbench.encoders"} <= set(identity.core_modules(roots))


def test_stale_checks_reuse_each_components_and_data_identity(tmp_path, monkeypatch):
    """A leaderboard's hundreds of rows share a few component sets and data sets: each is
    identified once per check, and every row still gets its reasons."""
    source, registry = _editable_plugin(tmp_path, monkeypatch)
    [row] = _run(registry, tmp_path / "r.sqlite")[2]
    calls = {"code": 0, "data": 0}
    for name, kind in (("code_identity", "code"), ("data_differences", "data")):
        original = getattr(identity, name)
        monkeypatch.setattr(identity, name, lambda *a, _f=original, _k=kind, **k: calls.__setitem__(_k, calls[_k] + 1) or _f(*a, **k))
    check = identity.StaleCheck(registry)
    assert [check.reasons(row) for _ in range(3)] == [[]] * 3
    other = {**row, "provenance": {**row["provenance"], "data": {**row["provenance"]["data"], "content": "x"}}}
    assert check.reasons(other) == []
    assert calls == {"code": 1, "data": 2}
    source.write_text(source.read_text() + "\n# edited\n")
    assert "method:least-squares: editable_toy source changed" in identity.StaleCheck(registry).reasons(row)
