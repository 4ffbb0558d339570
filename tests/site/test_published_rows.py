"""The published leaderboard is data: its rows are committed (docs/leaderboard/results/) and must
come from the current code, and a cheap slice of them reruns to the same numbers: the same bits in
the numeric environment the rows recorded, within the declared tolerance in another."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import slice_run
from support.paths import ROOT

from zsbench.cli import main
from zsbench.evaluation.environment import environment_differences
from zsbench.registry import get_registry
from zsbench.runner.identity import code_differences, code_identity
from zsbench.store.export import read_jsonl_rows
from zsbench.store.tolerance import cross_machine_accuracy_tolerance, cross_machine_tolerance

ROWS = ROOT / "docs" / "leaderboard" / "results"
SLICE = ("eszsl", "ale")
NUMBERS = slice_run.NUMBERS
REGENERATE = "scripts/regenerate-leaderboard.sh"


PAGES = ("flo", "cub-subset")  # one committed rows file and one page per published data set


def published(dataset: str = "flo") -> list[dict]:
    return read_jsonl_rows(ROWS / f"{dataset}.jsonl")


def test_committed_rows_come_from_the_current_code():
    """Fails when code a published row depends on changed since it was produced: regenerate."""
    registry = get_registry()
    rows = [r for page in PAGES for r in published(page)]
    assert {r["method"] for r in published()} >= set(SLICE)
    stale = {}
    for r in rows:
        config = r["provenance"]["config"]
        if why := code_differences(r["provenance"]["code"], code_identity(registry, config["method"], config["dataset"])):
            stale[f"{r['method']} / {r['calibrator']} / seed {r['seed']}"] = why
    assert not stale, f"published rows from other code; run {REGENERATE}: {stale}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The leaderboard written from the committed rows, once for the tests that read it."""
    out = tmp_path_factory.mktemp("leaderboard")
    main(["leaderboard", "--results", str(ROWS), "--out", str(out), "--no-plots", "--stale", "flag"])
    return out


def test_pages_are_generated_from_the_committed_rows(generated):
    for page in PAGES:
        committed = (ROOT / "docs" / "leaderboard" / f"{page}.md").read_text()
        generated_page = (generated / f"{page}.md").read_text()
        # A method is marked (stale) where this machine lacks the data files its rows read.
        table = [line.replace(" (stale) |", " |") for line in generated_page.splitlines() if line.startswith("| ")]
        assert table and all(line in committed for line in table), \
            f"docs/leaderboard/{page}.md is not from its rows; run {REGENERATE}"


def compare(row: dict, old: dict, where: str) -> None:
    """Exactly when ``row`` ran in the numeric environment ``old`` recorded, else within the
    declared cross-machine tolerance of its method; the message says which applied and why."""
    differences = environment_differences(old["provenance"].get("environment"), row["provenance"]["environment"])
    name = f"{row['method']} / {row['calibrator']} / seed {row['seed']} against {where}"
    if not differences:
        for k in NUMBERS:
            assert row[k] == old[k], f"{name}: {k} {row[k]!r} != {old[k]!r} (exact: same numeric environment)"
        assert row["hyperparameters"] == old["hyperparameters"], f"{name}: exact comparison, other grid point"
        return
    h, acc = cross_machine_tolerance(row["method"]), cross_machine_accuracy_tolerance(row["method"])
    why = f"within the declared cross-machine tolerance (H {h}, u and s {acc}), environment differs: {differences[:3]}"
    assert abs(row["H"] - old["H"]) <= h, f"{name}: H {row['H']:.6f} vs {old['H']:.6f}, {why}"
    for k in ("u", "s"):
        assert abs(row[k] - old[k]) <= acc, f"{name}: {k} {row[k]:.6f} vs {old[k]:.6f}, {why}"
def test_the_regeneration_writes_every_leaderboard_snippet_a_docs_page_includes(generated):
    """What scripts/regenerate-leaderboard.sh writes after the runs, from the committed rows:
    the leaderboard, then every benchmarks/*_tables.py; no page may include a snippet of
    docs/leaderboard that neither writes (it would survive a regeneration stale, or be deleted)."""
    script = (ROOT / REGENERATE).read_text()
    assert 'for tables in benchmarks/*_tables.py' in script and '--results "$OUT/results" --out "$OUT"' in script
    for tables in sorted((ROOT / "benchmarks").glob("*_tables.py")):
        done = subprocess.run([sys.executable, str(tables), "--results", str(ROWS), "--out", str(generated)],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, f"{tables.name}: {done.stderr}"
    included = {name for page in (ROOT / "docs").rglob("*.md")
                for name in re.findall(r'^\s*--8<--\s+"leaderboard/(_[^"/:]+)(?::[^"]*)?"', page.read_text(), re.M)}
    assert {"_top-rows.md", "_run-times.md", "_cub-subset-results.md"} <= included
    # Snippets the regeneration script writes itself (its runs' GNU times, the calibration-transfer
    # table beside its figure): checked for presence in the script only.
    by_script = {name for name in included if f'"$OUT/{name}"' in script}
    assert {"_regeneration-times.md", "_calibration-transfer-flo.md"} <= by_script
    included -= by_script
    assert not [name for name in included if not (generated / name).is_file()]
    for name in included - {"_top-rows.md"}:  # the top rows mark rows stale where data files are absent
        assert (generated / name).read_text() == (ROOT / "docs" / "leaderboard" / name).read_text(), \
            f"docs/leaderboard/{name} is not from the committed rows; run {REGENERATE}"


@pytest.mark.realdata
@pytest.mark.slow
def test_a_slice_of_the_published_rows_reruns_to_the_same_numbers(shared_data, monkeypatch):
    monkeypatch.setenv("ZSBENCH_DATA", str(shared_data))
    rerun = slice_run.rerun(list(SLICE), [0])
    committed = {(r["run_key"], r["calibrator"]): r for r in published()}
    assert len(rerun) == 4
    for row in rerun:
        old = committed.get((row["run_key"], row["calibrator"]))
        assert old is not None, f"{row['method']} / {row['calibrator']}: no published row with run key {row['run_key']}; run {REGENERATE}"
        compare(row, old, "the published row")


@pytest.mark.realdata
@pytest.mark.slow
def test_other_threads_and_kernels_stay_within_the_declared_tolerance(shared_data):
    """The slice run in two fresh processes, one torch thread and the default kernels against two
    threads, AVX2 kernels and MKL's per-CPU branch: the environment differs, so within tolerance."""
    def run(threads: int, **settings: str) -> dict:
        env = {**os.environ, "ZSBENCH_DATA": str(shared_data), "PYTHONPATH": os.pathsep.join(sys.path), **settings}
        out = subprocess.run([sys.executable, str(ROOT / "tests" / "slice_run.py"), ",".join(SLICE), "0", str(threads)],
                             env=env, capture_output=True, text=True, check=True, timeout=1800)
        return {(r["method"], r["calibrator"]): r for r in json.loads(out.stdout)}

    base = run(1)
    other = run(2, ATEN_CPU_CAPABILITY="avx2", MKL_CBWR="AUTO")
    assert base.keys() == other.keys() and len(base) == 4
    for key, row in other.items():
        assert environment_differences(base[key]["provenance"]["environment"], row["provenance"]["environment"])
        compare(row, base[key], "one thread, default kernels")
