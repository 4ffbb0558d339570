"""The CUB pages' tables script: the claim's differences are paired by seed, the best baseline of
each kind is chosen by validation H (never test H), and ``--page`` rewrites only its block."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from zsbench.export import read_jsonl_rows

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cub_subset_tables.py"
spec = importlib.util.spec_from_file_location("cub_subset_tables", SCRIPT)
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)

SIDES = {"attributes": "class embeddings (att, 312-d)", "sentences": "class sentence embeddings (sent_splits.mat, 1024-d)"}


# A published row as the template: the script reads rows through the one row schema.
TEMPLATE = read_jsonl_rows(Path(__file__).resolve().parents[1] / "docs" / "leaderboard" / "results" / "flo.jsonl")[0]


def row(method: str, plugin: str, calibrator: str, seed: int, H: float, val_H: float, side: str) -> dict:
    return {**TEMPLATE, "run_key": f"{method}/{calibrator}/{seed}", "spec_name": "cub50", "dataset": "cub50",
            "method": method, "method_plugin": plugin, "calibrator": calibrator, "seed": seed,
            "H": H, "u": H, "s": H, "zsl": H, "val_H": val_H, "val_u": val_H, "val_s": val_H,
            "side_information": side}


def rows() -> list[dict]:
    out = []
    for seed in range(3):
        for cal, base_cal in (("none", "none"), ("metric-rescaling", "calibrated-stacking")):
            out.append(row("clarel-captions-cnn-lstm", "clarel", cal, seed, 0.5 + 0.1 * seed, 0.4, "per-image captions"))
            out.append(row("clarel-attributes", "clarel", cal, seed, 0.3, 0.3, SIDES["attributes"]))
            # eszsl wins on test, ale on validation: ale must be the one paired
            out.append(row("eszsl-attributes", "eszsl", base_cal, seed, 0.45, 0.1, SIDES["attributes"]))
            out.append(row("ale-attributes", "ale", base_cal, seed, 0.2, 0.2, SIDES["attributes"]))
            out.append(row("random", "random", base_cal, seed, 0.01, 0.9, SIDES["attributes"]))
    return out


def test_the_best_baseline_is_chosen_on_validation():
    best = tables.best_baselines(rows())
    assert best == {(SIDES["attributes"], "none"): "ale-attributes",
                    (SIDES["attributes"], "calibrated"): "ale-attributes"}


def test_differences_are_paired_by_seed():
    text = "\n".join(tables.tables(rows()))
    # per seed: (0.5, 0.6, 0.7) - 0.3 = (0.2, 0.3, 0.4): mean 30.0 points
    assert "| clarel-captions-cnn-lstm - clarel-attributes | none | 30.0 ± " in text
    assert "| clarel-captions-cnn-lstm - ale-attributes | metric-rescaling / calibrated-stacking | 40.0 ± " in text
    assert "eszsl-attributes |" not in text.split("paired by seed")[1]


def test_the_page_block_is_replaced(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    page = tmp_path / "page.md"
    page.write_text("# title\n<!-- tables: begin -->\nold\n<!-- tables: end -->\nafter\n"
                    "<!-- run-time: begin -->\n<!-- run-time: end -->\n")
    subprocess.run([sys.executable, str(SCRIPT), str(data), "--page", str(page), "--run-time", "12 s wall"],
                   check=True)
    text = page.read_text()
    assert text.startswith("# title\n<!-- tables: begin -->\n| row |") and "old" not in text
    assert "after\n<!-- run-time: begin -->\n12 s wall\n<!-- run-time: end -->" in text


def test_a_page_without_the_block_is_an_error():
    with pytest.raises(SystemExit, match="tables: begin"):
        tables.replace_block("no markers", "tables", "x")
