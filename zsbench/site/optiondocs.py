"""Option tables for the docs, generated from the components' schemas so they cannot drift.

A page marks where each table goes::

    <!-- options: method eszsl -->
    ...generated...
    <!-- /options -->

``render_page`` refills every marked block; ``scripts/gen_option_tables.py`` writes the result
and a test fails when the committed page differs from it.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from zsbench.registry import PluginEntry, Registry

BLOCK = re.compile(r"(<!-- options: (\w+) ([\w.-]+) -->\n)(.*?)(<!-- /options -->)", re.S)


def _value(value: Any) -> str:
    if value is attrs.NOTHING:
        return "required"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value!r}`" if not isinstance(value, float) else f"`{value:g}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def option_table(entry: PluginEntry) -> str:
    """A Markdown table of ``entry``'s options (and its default validation grid, if any)."""
    options = entry.schema()
    if not options:
        lines = ["No options."]
    else:
        lines = ["| option | type | default | accepts | meaning |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| `{o.name}` | {_cell(o.type)} | {_value(o.default)} | {_cell(o.constraint) or 'any'} | {_cell(o.doc)} |"
            for o in options
        ]
    if grid := entry.default_grid:
        chosen = "; ".join(f"`{k}` in {', '.join(_value(v) for v in vs)}" for k, vs in grid.items())
        lines += ["", f"Default validation grid (chosen on validation when the spec gives no `grid`): {chosen}."]
    return "\n".join(lines) + "\n"


def render_page(text: str, registry: Registry) -> str:
    """``text`` with every marked block refilled from ``registry``'s schemas."""

    def fill(match: re.Match) -> str:
        entry = registry.get(match.group(2), match.group(3))
        return f"{match.group(1)}{option_table(entry)}{match.group(5)}"

    return BLOCK.sub(fill, text)


def marked(text: str) -> set[tuple[str, str]]:
    """The (kind, name) pairs a page has option blocks for."""
    return {(m.group(2), m.group(3)) for m in BLOCK.finditer(text)}
