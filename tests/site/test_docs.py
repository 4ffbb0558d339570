"""The documentation cannot rot: every hook and built-in plugin is documented, the plugin
author's guide's example package installs and runs through ``zsbench run``, and the site
builds with ``mkdocs build --strict``."""

from __future__ import annotations

import html
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

from zsbench import hookspecs
from zsbench.registry import PLURALS, Registry
from zsbench.spec import parse_spec

DOCS = ROOT / "docs"
EXAMPLE = DOCS / "examples" / "zsbench-ridge"
BIN = Path(sys.executable).parent


def hook_names() -> list[str]:
    return [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


def builtin_entries():
    """Components shipped with zsbench itself (not third-party plugins installed alongside)."""
    return [e for e in Registry.from_entry_points().list() if e.distribution == "zsbench"]


def split_headings(text: str, pattern: str) -> dict[str, str]:
    parts = re.split(pattern, text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def sections(page: str) -> dict[tuple[str, str], str]:
    """(kind, name) -> text of its section: ``## Methods`` then ``### `eszsl` ...``."""
    kinds = {plural: kind for kind, plural in PLURALS.items()}
    return {
        (kinds[title.lower()], name): body
        for title, chapter in split_headings(page, r"^## (\w+)\s*$").items()
        if title.lower() in kinds
        for name, body in split_headings(chapter, r"^### `([^`]+)`.*$").items()
    }


def test_every_hook_is_documented_in_the_plugin_guide():
    guide = (DOCS / "plugins.md").read_text()
    assert len(hook_names()) == 5
    for name in hook_names():
        assert f"`{name}" in guide, f"hook {name} is not documented in docs/plugins.md"


def test_every_builtin_plugin_and_option_is_documented():
    page = sections((DOCS / "builtin-plugins.md").read_text())
    entries = builtin_entries()
    assert {e.kind for e in entries} >= {"calibrator", "dataset", "method"}
    missing = [f"{e.kind} {e.name}" for e in entries if (e.kind, e.name) not in page]
    assert not missing, f"docs/builtin-plugins.md has no '### `name`' section (under its kind) for: {', '.join(missing)}"
    for e in entries:
        undocumented = [o for o in e.options() if f"`{o}`" not in page[e.kind, e.name]]
        assert not undocumented, f"{e.kind} {e.name}: options {undocumented} are not in its section of docs/builtin-plugins.md"


def test_the_guide_shows_the_tested_example_files():
    guide = (DOCS / "plugins.md").read_text()
    for name in ("pyproject.toml", "zsbench_ridge.py", "zsbench_ridge_model.py"):
        assert f'--8<-- "zsbench-ridge/{name}"' in guide
        assert (EXAMPLE / name).is_file()


def test_the_spec_reference_example_is_a_valid_spec():
    page = (DOCS / "spec.md").read_text()
    example = re.search(r"## Example\s+```yaml\n(.*?)```", page, flags=re.DOTALL).group(1)
    spec = parse_spec(yaml.safe_load(example), "docs/spec.md", Registry.from_entry_points())
    assert len(spec.datasets) * len(spec.methods) * len(spec.seeds) == 80  # the count the page quotes
    assert "= 80 run(s)" in page


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_the_guides_example_plugin_installs_and_runs(tmp_path):
    registry = Registry.from_entry_points()
    if "synthetic" not in registry.names("dataset"):
        pytest.skip("the 'synthetic' dataset plugin is not registered")
    if importlib.util.find_spec("setuptools") is None:  # --no-build-isolation builds with this env's
        pytest.skip("setuptools is not installed in this environment (needed to build the example)")
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE, source)  # build in a copy: setuptools writes build/ and egg-info/
    site = tmp_path / "site"
    # The site first, then whatever zsbench checkout the tests import (a worktree's, not the installed one).
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "ZSBENCH_CACHE": str(tmp_path / "cache")}
    env.pop("ZSBENCH_DATA", None)
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(source)], env, tmp_path)

    listed = json.loads(run([str(BIN / "zsbench"), "plugins", "method", "--json"], env, tmp_path).stdout)
    ridge = next(c for c in listed["components"] if c["name"] == "ridge-embedding")
    assert ridge["distribution"] == "zsbench-ridge" and ridge["plugin"] == "ridge"
    assert ridge["options"] == ["ridge"] and not listed["problems"]
    assert ridge["schema"] == [{"name": "ridge", "type": "float", "default": 1.0, "required": False,
                                "constraint": "a number > 0", "doc": "ridge strength on the feature side"}]

    spec = tmp_path / "ridge.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "ridge-plugin",
        "seeds": 2,
        "device": "cpu",
        "datasets": [{"name": "synthetic", "num_classes": 15, "per_class": 20, "text": "none", "images": False}],
        "methods": [{"name": "ridge", "method": "ridge-embedding", "calibrators": ["none", "calibrated-stacking"]}],
    }))
    results = tmp_path / "results.sqlite"
    run([str(BIN / "zsbench"), "run", str(spec), "--results", str(results), "--quiet"], env, tmp_path)
    rows = json.loads(run([str(BIN / "zsbench"), "results", "--results", str(results), "--json"], env, tmp_path).stdout)
    assert {(r["method"], r["calibrator"], r["seed"]) for r in rows} == {
        ("ridge", c, s) for c in ("none", "calibrated-stacking") for s in (0, 1)
    }
    for r in rows:
        assert r["method_plugin"] == "ridge-embedding" and r["hyperparameters"]["ridge"] in (0.1, 1.0, 10.0, 100.0)
        assert "zsbench-ridge 0.1.0" in r["provenance"]["method_plugin"]
        assert 0 <= r["u"] <= 1 and 0 <= r["s"] <= 1 and 0 < r["zsl"] <= 1


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    mkdocs = BIN / "mkdocs"
    if not mkdocs.is_file():
        pytest.skip("mkdocs is not installed (pip install 'zsbench[docs]')")
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    guide = html.unescape(re.sub(r"<[^>]+>", "", (tmp_path / "site" / "plugins" / "index.html").read_text()))
    for name in ("pyproject.toml", "zsbench_ridge.py", "zsbench_ridge_model.py"):  # the snippets were included, verbatim
        for line in (EXAMPLE / name).read_text().splitlines():
            assert line.strip() in guide, f"{name}: {line!r} is not shown in the built guide"
    assert "--8<--" not in guide


def test_option_tables_are_generated_from_the_schemas():
    """Every built-in component's option table is the one its schema generates (a default
    changed in code and not regenerated fails here: run scripts/gen_option_tables.py)."""
    from zsbench.site.optiondocs import marked, render_page

    page = (DOCS / "builtin-plugins.md").read_text()
    missing = {(e.kind, e.name) for e in builtin_entries()} - marked(page)
    assert not missing, f"docs/builtin-plugins.md has no generated option table for {sorted(missing)}"
    assert render_page(page, Registry.from_entry_points(strict=True)) == page, (
        "docs/builtin-plugins.md option tables differ from the schemas; run python scripts/gen_option_tables.py"
    )
