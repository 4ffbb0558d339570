"""The published leaderboard is data: its rows are committed (docs/leaderboard/results/) and must
come from the current code, and a cheap slice of them reruns to the same numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from zsbench.cli import main
from zsbench.export import read_jsonl_rows
from zsbench.identity import code_differences, code_identity
from zsbench.registry import get_registry
from zsbench.runner import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store import ResultStore

REPO = Path(__file__).resolve().parents[1]
ROWS = REPO / "docs" / "leaderboard" / "results"
SPEC = REPO / "benchmarks" / "flo-efficientnet.yaml"
SLICE = ("eszsl", "ale")
NUMBERS = ("u", "s", "H", "zsl", "val_u", "val_s", "val_H", "calibration_param")
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


def test_pages_are_generated_from_the_committed_rows(tmp_path):
    main(["leaderboard", "--results", str(ROWS), "--out", str(tmp_path), "--no-plots", "--stale", "flag"])
    for page in PAGES:
        committed = (REPO / "docs" / "leaderboard" / f"{page}.md").read_text()
        generated = (tmp_path / f"{page}.md").read_text()
        # A method is marked (stale) where this machine lacks the data files its rows read.
        table = [line.replace(" (stale) |", " |") for line in generated.splitlines() if line.startswith("| ")]
        assert table and all(line in committed for line in table), \
            f"docs/leaderboard/{page}.md is not from its rows; run {REGENERATE}"


def test_the_regeneration_writes_every_leaderboard_snippet_a_docs_page_includes(tmp_path):
    """What scripts/regenerate-leaderboard.sh writes after the runs, from the committed rows:
    the leaderboard, then every benchmarks/*_tables.py; no page may include a snippet of
    docs/leaderboard that neither writes (it would survive a regeneration stale, or be deleted)."""
    script = (REPO / REGENERATE).read_text()
    assert 'for tables in benchmarks/*_tables.py' in script and '--results "$OUT/results" --out "$OUT"' in script
    main(["leaderboard", "--results", str(ROWS), "--out", str(tmp_path), "--no-plots", "--stale", "flag"])
    for tables in sorted((REPO / "benchmarks").glob("*_tables.py")):
        done = subprocess.run([sys.executable, str(tables), "--results", str(ROWS), "--out", str(tmp_path)],
                              capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, f"{tables.name}: {done.stderr}"
    included = {name for page in (REPO / "docs").rglob("*.md")
                for name in re.findall(r'^\s*--8<--\s+"leaderboard/(_[^"/]+)"', page.read_text(), re.M)}
    assert {"_top-rows.md", "_run-times.md", "_cub-subset-results.md"} <= included
    assert not [name for name in included if not (tmp_path / name).is_file()]
    for name in included - {"_top-rows.md"}:  # the top rows mark rows stale where data files are absent
        assert (tmp_path / name).read_text() == (REPO / "docs" / "leaderboard" / name).read_text(), \
            f"docs/leaderboard/{name} is not from the committed rows; run {REGENERATE}"


@pytest.mark.realdata
@pytest.mark.slow
def test_a_slice_of_the_published_rows_reruns_to_the_same_numbers(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_DATA", str(shared_data))
    raw = yaml.safe_load(SPEC.read_text())
    raw["seeds"] = [0]
    raw["methods"] = [m for m in raw["methods"] if m["name"] in SLICE]
    registry = get_registry()
    with ResultStore(tmp_path / "slice.sqlite") as store:
        run_spec(parse_spec(raw, str(SPEC), registry), store, LocalBackend(registry, torch.device("cpu"), show_progress=False))
        rerun = store.rows()
    committed = {(r["run_key"], r["calibrator"]): r for r in published()}
    assert len(rerun) == 4
    for row in rerun:
        old = committed.get((row["run_key"], row["calibrator"]))
        assert old is not None, f"{row['method']} / {row['calibrator']}: no published row with run key {row['run_key']}; run {REGENERATE}"
        for k in NUMBERS:
            assert row[k] == pytest.approx(old[k], abs=1e-6), (row["method"], row["calibrator"], k)
        assert row["hyperparameters"] == old["hyperparameters"]
