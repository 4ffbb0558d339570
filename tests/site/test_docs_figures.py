"""One source for every figure in prose: an H ± CI or a run time quoted by a hand-written docs
page must be held by a generated file (the leaderboard's pages and snippets, or a snippet that a
benchmark script wrote and a page includes), so the same number cannot differ between pages; and
a table of measured results (a table row holding an estimate) is always included, never pasted."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from support.paths import ROOT

DOCS = ROOT / "docs"
# Written by `zsbench leaderboard` (scripts/regenerate-leaderboard.sh), never by hand.
LEADERBOARD = DOCS / "leaderboard"
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)
ESTIMATE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)? ± \d+(?:\.\d+)?(?![\w.])")
DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(s|sec|seconds?|min|minutes?|h|hours?)\b")
UNITS = {"s": "s", "sec": "s", "second": "s", "seconds": "s", "min": "min", "minute": "min", "minutes": "min",
         "h": "h", "hour": "h", "hours": "h"}
# Numbers with a unit of time that are settings, not measurements: (page, figure) -> why.
SETTINGS = {("reliability.md", "60 s"): "the default of ZSBENCH_PLUGIN_TIMEOUT"}


def snippet_bases() -> list[Path]:
    """Where `--8<--` includes are looked up: mkdocs.yml's pymdownx.snippets base_path."""
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    for extension in config["markdown_extensions"]:
        if isinstance(extension, dict) and "pymdownx.snippets" in extension:
            return [ROOT / p for p in extension["pymdownx.snippets"]["base_path"]]
    raise AssertionError("mkdocs.yml enables no pymdownx.snippets")


def included(page: Path, bases: list[Path]) -> list[Path]:
    """The files a page includes as snippets, whole or a section (``file.md:name``); a missing
    one fails the site build, not this test."""
    found = []
    for name in INCLUDE.findall(page.read_text()):
        name = name.split(":")[0]
        found += [base / name for base in bases if (base / name).is_file()][:1]
    return found


def pasted_tables(page_text: str) -> list[str]:
    """The Markdown table rows of a page that hold an estimate ("55.2 ± 3.8"): measured results
    typed or pasted into the page instead of included from a generated snippet."""
    return [line.strip() for line in INCLUDE.sub("", page_text).splitlines()
            if line.lstrip().startswith("|") and ESTIMATE.search(line)]


def sources() -> tuple[list[Path], list[Path]]:
    """(hand-written pages, generated files): every file a page includes, and everything under
    docs/leaderboard, is generated; the rest of docs/**/*.md is written by hand."""
    bases = snippet_bases()
    pages = [p for p in DOCS.rglob("*.md") if LEADERBOARD not in p.parents]
    generated = {p for page in pages for p in included(page, bases)} | set(LEADERBOARD.rglob("*.md"))
    return [p for p in pages if p not in generated and DOCS / "examples" not in p.parents], sorted(generated)


def figures(text: str) -> list[str]:
    """The figures a text quotes: estimates ("55.2 ± 3.8") and durations ("246 s", "6.6 min")."""
    text = INCLUDE.sub("", text)
    found = ESTIMATE.findall(text)
    return found + [f"{value} {UNITS[unit]}" for value, unit in DURATION.findall(text)]


def unquoted(page_text: str, page_name: str, generated_text: str) -> list[str]:
    """The figures of a page that no generated text holds."""
    held = set(figures(generated_text))
    return [f for f in figures(page_text) if f not in held and (page_name, f) not in SETTINGS]


def test_every_figure_a_docs_page_quotes_is_held_by_a_generated_file():
    pages, generated = sources()
    assert any(p.name == "_run-times.md" for p in generated) and DOCS / "performance.md" in pages
    held = "\n".join(p.read_text() for p in generated)
    missing = {str(p.relative_to(DOCS)): unquoted(p.read_text(), str(p.relative_to(DOCS)), held) for p in pages}
    assert not {k: v for k, v in missing.items() if v}, (
        "figures quoted in prose that no generated file holds; include the generated snippet instead "
        f"(--8<--) or write the number through a script that generates one: {missing}")


def test_a_figure_that_differs_from_the_generated_one_is_caught():
    generated = "| flo | 24 | 228 s | 3.8 min |\n| ale | 55.2 ± 3.8 |"
    assert unquoted("took 228 s (3.8 minutes); ALE 55.2 ± 3.8", "p.md", generated) == []
    assert unquoted("took 246 s, or 31 minutes; ALE 55.2 ± 3.9", "p.md", generated) == ["55.2 ± 3.9", "246 s",
                                                                                       "31 min"]
    assert unquoted('--8<-- "leaderboard/_run-times.md"\n', "p.md", "") == []  # an include quotes nothing


@given(st.floats(0, 999, allow_nan=False).map(lambda x: round(x, 1)), st.floats(0, 99).map(lambda x: round(x, 1)))
def test_an_estimate_is_found_whatever_its_digits(mean, half):
    quoted = f"H {mean} ± {half} on test"
    assert figures(quoted) == [f"{mean} ± {half}"]
    assert unquoted(quoted, "p.md", f"| {mean} ± {half} |") == []


def test_no_hand_written_page_holds_a_pasted_results_table():
    pages, _ = sources()
    pasted = {str(p.relative_to(DOCS)): rows for p in pages if (rows := pasted_tables(p.read_text()))}
    assert not pasted, ("tables of measured results pasted into docs pages; include the generated snippet "
                        f"instead (e.g. --8<-- \"leaderboard/_flo-entries.md:clarel\"): {pasted}")


def test_a_pasted_results_table_is_caught_and_an_included_one_is_not():
    pasted = "| | u | H |\n| --- | ---: | ---: |\n| CLAREL (measured) | 43.5 ± 12.1 | 52.9 ± 6.1 |\n"
    assert pasted_tables(pasted) == ["| CLAREL (measured) | 43.5 ± 12.1 | 52.9 ± 6.1 |"]
    assert pasted_tables("| setting | steps |\n| --- | --- |\n| paper | 150,001 |\n") == []
    assert pasted_tables('--8<-- "leaderboard/_flo-entries.md:clarel"\nH was 52.9 ± 6.1 in prose.\n') == []


def test_every_included_section_exists_in_its_snippet():
    bases = snippet_bases()
    pages, _ = sources()
    missing = []
    for page in pages:
        for name in INCLUDE.findall(page.read_text()):
            if ":" not in name:
                continue
            file, section = name.split(":", 1)
            found = [base / file for base in bases if (base / file).is_file()][:1]
            if found and f"--8<-- [start:{section}]" not in found[0].read_text():
                missing.append(f"{page.relative_to(DOCS)}: {name}")
    assert not missing, f"snippet sections that their files do not hold (a renamed method?): {missing}"
