"""One source for every figure in prose: a measured number quoted by a hand-written docs page
(an H ± CI, a run time, a percentage, a u / s / H triple, a speed-up, a count of runs or rows, an
accuracy in a sentence, any decimal in a table) must be held by a generated file the page
includes or links to (the leaderboard's pages and snippets, the perf fragments, a snippet that a
benchmark script wrote), so the same number cannot differ between pages and the reader can see
where it comes from; and a table of measured results (a table row holding an estimate) is always
included, never pasted."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from support.paths import ROOT

DOCS = ROOT / "docs"
# Written by `zsbench leaderboard` (scripts/regenerate-leaderboard.sh) and by the perf scripts
# (benchmarks/perfkit.py's write_fragment), never by hand.
GENERATED_DIRS = (DOCS / "leaderboard", DOCS / "perf")
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)
# Not prose: fenced code, inline code, and the option tables scripts/gen_option_tables.py writes
# into docs/builtin-plugins.md from the schemas (tests/site/test_docs.py checks they are current).
FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
OPTION_TABLES = re.compile(r"<!-- options: .*?<!-- /options -->", re.S)
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
ESTIMATE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)? ± \d+(?:\.\d+)?(?![\w.])")
DURATION = re.compile(rf"(?<![\w.,])({NUMBER})\s?(ms|s|sec|seconds?|min|minutes?|h|hours?)\b")
PERCENT = re.compile(rf"(?<![\w.,])({NUMBER})\s?%")
TRIPLE = re.compile(r"(?<![\w.])(\d*\.\d+) / (\d*\.\d+) / (\d*\.\d+)(?![\w.])")
SPEEDUP = re.compile(rf"(?<![\w.,])({NUMBER})(?:[x×](?!\w)|\s+times\s+(?:faster|slower|as fast|as slow))")
COUNT = re.compile(rf"(?<![\w.,])({NUMBER})\s+(runs|rows)\b")
# A rate is quoted as a bare number beside its unit ("284 pairs per CPU second"), and a table
# cell holds it bare: it is held where a generated file holds the number.
RATE = re.compile(rf"(?<![\w.,])({NUMBER})\s+(?:pairs|images)(?:/s\b|\s+per\s+(?:CPU\s+)?second)")
ANY_NUMBER = re.compile(rf"(?<![\w.,])(?:{NUMBER})(?![\w])")
DECIMAL = re.compile(r"(?<![\w.,])\d+\.\d+(?![\w.])")
# An accuracy in a sentence: "H 35.6", "s 87.0", "by 0.0034 H", "15.9 H points" (an estimate
# "H 35.6 ± 9.6" is ESTIMATE's).
ACCURACY = re.compile(r"(?<![\w.'’])(?:H|u|s|ZSL)\s+(\d+\.\d+)(?![\w.]|\s*±)|(?<![\w.,])(\d+\.\d+)\s+(?:H|points?)\b")
UNITS = {"ms": "ms", "s": "s", "sec": "s", "second": "s", "seconds": "s", "min": "min", "minute": "min",
         "minutes": "min", "h": "h", "hour": "h", "hours": "h"}
# Figures a hand-written page may quote although no generated file holds them: facts of the data
# or the literature and targets, never a measurement of this code. (page, figure) -> why.
# Settings the code declares are checked against the code instead (declared()).
ALLOWED = {
    ("performance.md", "10x"): "the speed-up target the CLAREL work was set, not a measurement",
}
# The same, on any page.
CONVENTIONS = {"95%": "the level of every confidence interval (Student t, zsbench.store.summary)"}
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)\s]*)?\)")


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


def cited(page: Path, bases: list[Path], generated: set[Path]) -> list[Path]:
    """The generated files a page's figures may come from: those it includes, those it links
    to, and those the hand-written pages it links to include."""
    found = set(included(page, bases))
    for target in LINK.findall(page.read_text()):
        linked = (page.parent / target).resolve()
        if linked.is_file():
            found |= {linked, *included(linked, bases)}
    return sorted(found & generated)


def pasted_tables(page_text: str) -> list[str]:
    """The Markdown table rows of a page that hold an estimate ("55.2 ± 3.8"): measured results
    typed or pasted into the page instead of included from a generated snippet."""
    return [line.strip() for line in INCLUDE.sub("", page_text).splitlines()
            if line.lstrip().startswith("|") and ESTIMATE.search(line)]


def sources() -> tuple[list[Path], list[Path]]:
    """(hand-written pages, generated files): every file a page includes, and everything under
    docs/leaderboard and docs/perf, is generated; the rest of docs/**/*.md is written by hand."""
    bases = snippet_bases()
    pages = [p for p in DOCS.rglob("*.md") if not any(d in p.parents for d in GENERATED_DIRS)]
    generated = {p for page in pages for p in included(page, bases)}
    generated |= {p for d in GENERATED_DIRS for p in d.rglob("*.md")}
    return [p for p in pages if p not in generated and DOCS / "examples" not in p.parents], sorted(generated)


def prose(text: str) -> str:
    """What a page states itself: not its includes, code or generated option tables."""
    return CODE_SPAN.sub("", OPTION_TABLES.sub("", FENCE.sub("", INCLUDE.sub("", text))))


def _figures(text: str) -> list[str]:
    found = ESTIMATE.findall(text)
    found += [f"{value} {UNITS[unit]}" for value, unit in DURATION.findall(text)]
    found += [f"{value}%" for value in PERCENT.findall(text)]
    found += [" / ".join(values) for values in TRIPLE.findall(text)]
    found += [f"{value}x" for value in SPEEDUP.findall(text)]
    found += [f"{value} {what}" for value, what in COUNT.findall(text)]
    found += RATE.findall(text)
    found += [a or b for a, b in ACCURACY.findall(text)]
    return found + [d for line in text.splitlines() if line.lstrip().startswith("|") for d in DECIMAL.findall(line)]


def figures(text: str) -> list[str]:
    """The measured-looking figures a page quotes in its prose: estimates ("55.2 ± 3.8"),
    durations ("246 s", "6.6 min"), percentages, u / s / H triples, speed-ups ("10.2x", "3 times
    slower"), counts of runs and rows, rates, accuracies in sentences ("H 35.6") and every
    decimal in a table row."""
    return _figures(prose(text))


@cache
def held(generated_text: str) -> frozenset[str]:
    """The figures generated text holds, its code spans included (a fragment's command line),
    and every number it holds anywhere (a table cell, a sentence)."""
    return frozenset(_figures(generated_text)) | frozenset(ANY_NUMBER.findall(generated_text))


@cache
def declared() -> frozenset[str]:
    """Settings the code declares, as pages quote them: each method's cross-machine tolerance
    (zsbench.store.tolerance, the values of docs/reproducibility.md's table), the run limit, the
    plugin timeout and the validation hold-out. A page quoting another value fails as a measurement would."""
    from zsbench.evaluation.protocol import VAL_SEEN_FRACTION
    from zsbench.registry import DEFAULT_PLUGIN_SECONDS
    from zsbench.spec import DEFAULT_MAX_RUNS
    from zsbench.store.tolerance import TOLERANCES

    return frozenset({f"{value:g}" for pair in TOLERANCES.values() for value in pair}
                     | {f"{DEFAULT_MAX_RUNS:,} runs", f"{DEFAULT_PLUGIN_SECONDS:g} s", f"{VAL_SEEN_FRACTION:.0%}"})


def _canonical(figure: str) -> str:
    """A bare decimal as the code would print it ("0.050" is 0.05); anything else as it is."""
    return f"{float(figure):g}" if DECIMAL.fullmatch(figure) else figure


def unquoted(page_text: str, page_name: str, generated_text: str) -> list[str]:
    """The figures of a page that no generated text holds and that are not allowed as facts."""
    have, settings = held(generated_text), declared()
    return [f for f in figures(page_text)
            if f not in have and _canonical(f) not in settings and (page_name, f) not in ALLOWED
            and f not in CONVENTIONS]


def test_every_figure_a_docs_page_quotes_is_held_by_a_generated_file():
    pages, generated = sources()
    assert any(p.name == "_run-times.md" for p in generated) and DOCS / "performance.md" in pages
    bases, missing = snippet_bases(), {}
    for page in pages:
        text = "\n".join(p.read_text() for p in cited(page, bases, set(generated)))
        if found := unquoted(page.read_text(), str(page.relative_to(DOCS)), text):
            missing[str(page.relative_to(DOCS))] = found
    assert not missing, (
        "figures quoted in prose that no generated file the page includes or links to holds; include "
        "the generated snippet (--8<--), link the generated page that holds the figure, or write the "
        f"number through a script that generates one: {missing}")


def test_a_figure_is_held_only_by_what_the_page_includes_or_links_to(tmp_path):
    texts = {tmp_path / "leaderboard" / "flo.md": "| 432 s |", tmp_path / "perf" / "e2e-cpu.md": "| 109 s |",
             tmp_path / "_runs.md": "| 55.2 ± 3.8 |"}
    for path, text in texts.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    generated = set(texts)
    (tmp_path / "other.md").write_text('--8<-- "_runs.md"\n')
    page = tmp_path / "page.md"
    page.write_text("See [FLO](leaderboard/flo.md#top) and [other](other.md).\n")
    assert cited(page, [tmp_path], generated) == sorted(generated - {tmp_path / "perf" / "e2e-cpu.md"})
    text = "\n".join(p.read_text() for p in cited(page, [tmp_path], generated))
    assert unquoted("took 432 s; ALE 55.2 ± 3.8; Ray 109 s", "page.md", text) == ["109 s"]


def test_a_figure_that_differs_from_the_generated_one_is_caught():
    generated = "| flo | 24 | 228 s | 3.8 min |\n| ale | 55.2 ± 3.8 |"
    assert unquoted("took 228 s (3.8 minutes); ALE 55.2 ± 3.8", "p.md", generated) == []
    assert unquoted("took 246 s, or 31 minutes; ALE 55.2 ± 3.9", "p.md", generated) == ["55.2 ± 3.9", "246 s",
                                                                                       "31 min"]
    assert unquoted('--8<-- "leaderboard/_run-times.md"\n', "p.md", "") == []  # an include quotes nothing


def test_each_kind_of_measured_figure_is_caught_unless_a_generated_file_holds_it():
    page = ("| setting | alpha = 0: u / s / H |\n| --- | --- |\n| raw | 0.179 / 0.405 / 0.248 |\n"
            "Ray gave 1.7x, two threads were 15 times slower, 12% of the\n48 rows moved, 284 pairs per CPU second;\n"
            "H 35.6 on test, ahead by 4.1 points; the CNN-BiLSTM's 8.4 M parameters.\n")
    assert unquoted(page, "p.md", "") == ["12%", "0.179 / 0.405 / 0.248", "1.7x", "15x", "48 rows", "284", "35.6",
                                          "4.1", "0.179", "0.405", "0.248"]
    generated = "| raw | 0.179 / 0.405 / 0.248 | 1.7x | 15x | 12% | 48 rows | 284 | 35.6 ± 9.6 | +4.1 ± 2.0 |"
    assert unquoted(page, "p.md", generated) == []
    assert unquoted(page.replace("0.405", "0.406"), "p.md", generated) == ["0.179 / 0.406 / 0.248", "0.406"]


def test_code_and_generated_option_tables_quote_nothing():
    text = ("```bash\nsleep 30s  # 0.5 / 0.6 / 0.7, 12%\n```\nRun `timeout 60 s` on 127.0.0.1.\n"
            "<!-- options: method ale -->\n| lr | float | 0.5 | in [0.0, 1.0) |\n<!-- /options -->\n")
    assert figures(text) == []


def test_a_setting_the_code_declares_is_held_and_another_value_is_not():
    from zsbench.store.tolerance import TOLERANCES

    h, u = TOLERANCES["cada-vae"]
    assert unquoted(f"| CADA-VAE | bit for bit | {h:.3f} / {u:.3f} |", "p.md", "") == []
    assert unquoted(f"| CADA-VAE | bit for bit | {h + 0.001:.3f} |", "p.md", "") == [f"{h + 0.001:.3f}"]


def test_every_allowed_figure_is_still_quoted_by_its_page():
    stale = [key for key in ALLOWED if key[1] not in figures((DOCS / key[0]).read_text())]
    assert not stale, f"allow-list entries no page quotes any more; remove them: {stale}"


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
