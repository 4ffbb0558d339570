"""End-to-end through the ``zsbench`` console script, on the synthetic data set and real loaders."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from support.cli import SMALL, ZSBENCH, write, zsbench


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Environment for the subprocess test; in-process calls get it through monkeypatch."""
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    return dict(os.environ)


def test_subprocess_console_script_works(env):
    out = subprocess.run([*ZSBENCH, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "Usage: zsbench" in out.stdout


def test_help_of_every_verb_stands_on_its_own():
    top = zsbench("--help")
    assert top.returncode == 0 and "run" in top.stdout and "validate" in top.stdout
    for verb in ("run", "validate", "plugins", "results", "data", "leaderboard"):
        out = zsbench(verb, "--help")
        assert out.returncode == 0, out.stderr
        assert "Usage:" in out.stdout and len(out.stdout.splitlines()) > 4


def test_plugins_json_lists_first_party_plugins_with_distribution():
    out = zsbench("plugins", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    names = {(c["kind"], c["name"]): c for c in data["components"]}
    for key in [("calibrator", "metric-rescaling"), ("dataset", "flo"), ("dataset", "synthetic"),
                ("method", "clarel"), ("method", "eszsl"), ("loss", "retrieval"), ("encoder", "cnn-lstm")]:
        assert key in names, key
        assert names[key]["distribution"] == "zsbench"
    assert data["problems"] == []


def test_run_results_and_resume(tmp_path, env):
    spec = write(tmp_path, SMALL)
    db = tmp_path / "r.sqlite"
    first = zsbench("run", spec, "--results", db, "--quiet", env=env)
    assert first.returncode == 0, first.stderr
    assert "2 run(s) done, 0 already" in first.stdout
    assert "eszsl + calibrated-stacking" in first.stdout  # the summary table
    rows = json.loads(zsbench("results", "--results", db, "--json", env=env).stdout)
    assert {(r["method"], r["calibrator"], r["seed"]) for r in rows} == {
        ("eszsl", c, s) for c in ("none", "calibrated-stacking") for s in (0, 1)
    }
    again = zsbench("run", spec, "--results", db, "--quiet", env=env)
    assert again.returncode == 0 and "0 run(s) done, 2 already" in again.stdout
    assert json.loads(zsbench("results", "--results", db, "--json", env=env).stdout) == rows


@pytest.mark.parametrize(
    "text,expected",
    [
        ("name: x\nseeds: [0\n", "not valid YAML at line"),
        (SMALL.replace("name: eszsl", "name: eszsl\n    method: no-such-method"), "methods[0].method: unknown method 'no-such-method'; known methods:"),
        (SMALL.replace("calibrators: [none, calibrated-stacking]", "calibrators: [none, calibrated-stacking]\n    lamda: 3"),
         "methods[0].lamda: unknown option for method 'eszsl'"),
    ],
)
def test_user_mistakes_exit_2_with_one_paragraph(tmp_path, env, text, expected):
    spec = write(tmp_path, text)
    for verb in ("validate", "run"):
        out = zsbench(verb, spec, "--results", tmp_path / "r.sqlite", env=env) if verb == "run" else zsbench(verb, spec, env=env)
        assert out.returncode == 2, out.stdout + out.stderr
        assert expected in " ".join(out.stderr.split()), out.stderr
        assert "Traceback" not in out.stderr and str(spec) in out.stderr


def test_missing_data_folder_exits_2_naming_it(tmp_path, env):
    missing = tmp_path / "nowhere" / "flo"
    spec = write(tmp_path, f"""
        name: missing
        datasets:
          - name: flo
            root: {missing}
        methods:
          - name: eszsl
        """)
    out = zsbench("run", spec, "--results", tmp_path / "r.sqlite", env=env)
    assert out.returncode == 2, out.stderr
    assert str(missing) in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_a_killed_run_resumes_without_recomputing_finished_rows(tmp_path, env):
    # ALE for 40 epochs: each run takes a second or so even on a fast machine, so the kill lands
    # between runs however quickly this machine finishes one.
    spec = write(tmp_path, SMALL.replace("seeds: 2", "seeds: 6").replace("eszsl", "ale\n    epochs: 40"))
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen([*ZSBENCH, "run", str(spec), "--results", str(db), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finished_runs() -> int:
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db) as con:
                return con.execute("SELECT COUNT(DISTINCT run_key) FROM results").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    deadline = time.time() + 300
    while finished_runs() < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = json.loads(zsbench("results", "--results", db, "--json", env=env).stdout)
    done_before = len({r["run_key"] for r in before})
    assert 2 <= done_before < 6
    out = zsbench("run", spec, "--results", db, "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    assert f"{6 - done_before} run(s) done, {done_before} already" in out.stdout
    after = json.loads(zsbench("results", "--results", db, "--json", env=env).stdout)
    kept = {r["id"]: r for r in after}
    assert all(kept[r["id"]] == r for r in before)  # finished rows untouched
    assert len({r["run_key"] for r in after}) == 6


def test_ray_resource_options_are_checked_before_any_work(tmp_path, env):
    spec = write(tmp_path, SMALL)
    out = zsbench("run", spec, "--results", tmp_path / "r.sqlite", "--gpus-per-task", "0.5")
    assert out.returncode == 2 and "add --backend ray" in out.stderr
    out = zsbench("run", spec, "--results", tmp_path / "r.sqlite", "--backend", "ray", "--cpus-per-task", "0")
    assert out.returncode == 2 and "--cpus-per-task must be a positive number" in out.stderr
    assert not (tmp_path / "r.sqlite").exists()
