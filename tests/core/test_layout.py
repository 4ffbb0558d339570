"""The layout the map in docs/concepts.md describes: what is hashed into run keys, and why a long
module is long."""

from __future__ import annotations

import ast

from zsbench.runner import identity

LONG = 400  # lines; a module past this says why in its docstring


def _modules(folder: str = "") -> dict[str, str]:
    """zsbench module name -> source, for every module under ``zsbench/<folder>``."""
    root = identity.PACKAGE
    out = {}
    for path in sorted((root / folder).rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path.read_text()
    return out


def test_every_module_of_the_evaluation_package_is_hashed_into_run_keys():
    hashed = set(identity.core_modules())
    assert set(_modules("evaluation")) <= hashed, sorted(set(_modules("evaluation")) - hashed)


def test_no_module_of_the_runner_site_or_cli_is_hashed_into_run_keys():
    """They change no number: a change there must not make every published row stale."""
    hashed = set(identity.core_modules())
    for folder in ("runner", "site", "cli"):
        assert not set(_modules(folder)) & hashed, f"zsbench/{folder}: {sorted(set(_modules(folder)) & hashed)}"


def test_a_module_longer_than_most_says_why_in_its_docstring():
    long = {name: source for name, source in _modules().items() if source.count("\n") > LONG}
    unexplained = [name for name, source in long.items()
                   if "longer than most" not in (ast.get_docstring(ast.parse(source)) or "").lower()]
    assert not unexplained, f"over {LONG} lines with no reason in the docstring: {unexplained}"
