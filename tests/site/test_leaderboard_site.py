"""The leaderboard as a reader gets it: the strictly built site's tables, links and sorting."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import attrs
import pytest
from support.leaderboard import CALIBRATORS, METHODS, SEEDS, row
from support.paths import ROOT

from zsbench.site.leaderboard import MAIN_COLUMNS, write_leaderboard
from zsbench.store.sqlite import ResultStore

RESULTS = ROOT / "docs" / "leaderboard" / "results"

SCRIPT = ROOT / "docs" / "javascripts" / "sortable-tables.js"


class Tables(HTMLParser):
    """Header texts of each table, links, element ids and the page's scripts and styles."""

    def __init__(self):
        super().__init__()
        self.headers: list[list[str]] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.assets: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "table":
            self.headers.append([])
        elif tag == "th":
            self._in_th = True
            self.headers[-1].append("")
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag in ("script", "link"):
            self.assets.append(attrs.get("src") or attrs.get("href") or "")

    def handle_endtag(self, tag):
        if tag == "th":
            self._in_th = False

    def handle_data(self, data):
        if self._in_th:
            self.headers[-1][-1] += data.strip()


def parse(path: Path) -> Tables:
    tables = Tables()
    tables.feed(path.read_text())
    return tables


def copy_docs_without_leaderboard(project: Path) -> None:
    """docs/ into ``project`` without the leaderboard's pages, but with the snippets that
    benchmark scripts write into docs/leaderboard (pages include them; the leaderboard
    rewrites its own)."""
    shutil.copytree(ROOT / "docs", project / "docs", ignore=shutil.ignore_patterns("leaderboard"))
    (project / "docs" / "leaderboard").mkdir()
    for snippet in (ROOT / "docs" / "leaderboard").glob("_*.md"):
        shutil.copy(snippet, project / "docs" / "leaderboard")


def with_committed_entries(project: Path) -> None:
    """The committed rows' entry snippets back in place: hand-written pages include sections of
    them (a method's numbers, e.g. CLAREL's on FLO), which made-up rows of other methods lack."""
    for snippet in (ROOT / "docs" / "leaderboard").glob("_*-entries.md"):
        shutil.copy(snippet, project / "docs" / "leaderboard")


def with_committed_pages(project: Path) -> list[Path]:
    """Every committed leaderboard page and figure the rows written here did not make (hand-written
    pages link to some, e.g. the CUB literature page or CLAREL's FLO details, and those link to
    theirs), so the strict build checks every link. Returns the pages copied."""
    committed, docs = ROOT / "docs" / "leaderboard", project / "docs" / "leaderboard"
    copied = []
    for source in committed.rglob("*"):
        target = docs / source.relative_to(committed)
        if source.suffix in (".md", ".png") and "results" not in source.parts and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            copied += [target] if source.suffix == ".md" and not source.name.startswith("_") else []
    return copied


def build(docs_root: Path, site: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install 'zsbench[docs]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=docs_root,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_generated_pages_build_strictly_with_the_compact_columns_and_working_links(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.rmtree(project / "docs" / "leaderboard" / "flo", ignore_errors=True)  # regenerated below
    with ResultStore(tmp_path / "r.sqlite") as store:
        for method in METHODS:
            for seed in SEEDS:
                store.write_run([row(method, c, seed, dataset="flo") for c in CALIBRATORS])
        rows = store.rows()
    write_leaderboard(rows, project / "docs" / "leaderboard", with_plots=False)
    with_committed_entries(project)
    with_committed_pages(project)
    build(project, tmp_path / "site")
    page_url = "https://example.org/leaderboard/flo/"
    page = parse(tmp_path / "site" / "leaderboard" / "flo" / "index.html")
    assert page.headers[0] == [c for c in MAIN_COLUMNS]
    assert any(a.endswith("javascripts/sortable-tables.js") for a in page.assets)
    assert any(a.endswith("stylesheets/leaderboard.css") for a in page.assets)
    details = [a for a in page.links if "#" in a and not a.startswith("#")]
    assert len(details) == len(METHODS) * len(CALIBRATORS)
    for link in details:  # one click away: the page exists and has the row's section
        target = urlparse(urljoin(page_url, link))
        html_file = tmp_path / "site" / target.path.lstrip("/") / "index.html"
        assert html_file.is_file(), link
        assert target.fragment in parse(html_file).ids, link
    if browser := chromium():  # in the built page, under the theme's scripts, the tables are made sortable
        dom = dump_dom(browser, tmp_path / "site" / "leaderboard" / "flo" / "index.html", tmp_path)
        # the ranking, the paired comparisons, the other calibrations and what calibration buys
        assert dom.count('data-zsb-sortable="true"') == 4


LAYOUT_CHECK = """// test only: how the leaderboard page lays out at this window's width
window.addEventListener("load", function () {
  setTimeout(function () {
    var main = document.querySelector(".zsb-main table");
    var box = main && (main.closest(".md-typeset__scrollwrap") || main.parentElement);
    var context = document.querySelector(".zsb-context");
    var scales = Array.from(document.querySelectorAll("article img")).map(function (img) {
      return (img.getBoundingClientRect().width / img.naturalWidth).toFixed(3);
    });
    document.body.setAttribute("data-main", box ? box.scrollWidth + "/" + box.clientWidth : "none");
    var bars = document.querySelector('article img[src*="page.h-bars"]');
    document.body.setAttribute("data-context", context ? context.getBoundingClientRect().top + "/" +
                               context.getBoundingClientRect().bottom : "none");
    document.body.setAttribute("data-bars", bars ? String(bars.getBoundingClientRect().bottom) : "none");
    document.body.setAttribute("data-window", String(window.innerHeight));
    document.body.setAttribute("data-scales", scales.join(","));
  }, 500);
});
"""


@pytest.fixture(scope="module")
def flo_site(tmp_path_factory):
    """The site built once, with the leaderboard generated from the committed rows by this code
    and a script that records the layout: (browser, the FLO page)."""
    from zsbench.store.load import load_rows

    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    results = RESULTS
    if not (results / "flo.jsonl").is_file():
        pytest.skip("no FLO rows are committed")
    tmp_path = tmp_path_factory.mktemp("flo-site")
    project = tmp_path / "project"
    copy_docs_without_leaderboard(project)
    (project / "docs" / "layout-check.js").write_text(LAYOUT_CHECK)
    config = (ROOT / "mkdocs.yml").read_text()
    (project / "mkdocs.yml").write_text(config.replace("  - javascripts/sortable-tables.js\n",
                                                       "  - javascripts/sortable-tables.js\n  - layout-check.js\n"))
    write_leaderboard(load_rows(results), project / "docs" / "leaderboard")
    with_committed_pages(project)
    build(project, tmp_path / "site")
    return browser, tmp_path / "site"


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in ("flo", "cub50", "cub-subset") if (RESULTS / f"{name}.jsonl").is_file()])
@pytest.mark.parametrize("width", [1400, 390])
def test_a_leaderboard_from_the_committed_rows_reads_at_desktop_and_phone_widths(flo_site, tmp_path, width, name):
    """Generated from the committed rows with this code: no sideways scrolling of the main table;
    on a desktop's first screen (1,400 x 900) the whole context block and the whole H chart,
    which marks the rows tied with #1; chart text at least 8 px tall as displayed."""
    from zsbench.site import plots

    browser, site = flo_site
    page = site / "leaderboard" / name / "index.html"
    assert parse(page).headers[0] == list(MAIN_COLUMNS)
    dom = dump_dom(browser, page, tmp_path, width=width)
    attrs_ = dict(re.findall(r'data-(main|context|bars|window|scales)="([^"]*)"', dom))
    scroll, client = map(int, attrs_["main"].split("/"))
    assert scroll <= client, f"the main table scrolls sideways at {width} px: {scroll} > {client}"
    assert attrs_["context"] != "none" and attrs_["bars"] != "none", attrs_
    (top, bottom), window = map(float, attrs_["context"].split("/")), float(attrs_["window"])
    assert top < window, attrs_
    if width == 1400:
        assert bottom <= window and float(attrs_["bars"]) <= window, f"not on the first screen: {attrs_}"
    text_px = plots.FONT_SIZE / 72 * plots.DPI  # the figures' type, in image pixels
    scales = [float(x) for x in attrs_["scales"].split(",")]
    assert scales and min(scales) * text_px >= 8, (width, scales)


SORT_PAGE = """<!doctype html><html><body><div class="zsb-sortable"><table>
<thead><tr><th>method</th><th>H</th></tr></thead><tbody>
<tr><td>b</td><td>9.5 ± 1.0</td></tr><tr><td>a</td><td>—</td></tr>
<tr><td>c</td><td>45.2 ± 3.0</td></tr><tr><td>d</td><td>10.1</td></tr>
</tbody></table></div>
<script src="sortable-tables.js"></script>
<script>document.addEventListener("DOMContentLoaded", function () {
  var out = [], th = document.querySelectorAll("th");
  function order() { return Array.from(document.querySelectorAll("tbody tr")).map(r => r.cells[0].textContent).join(""); }
  th[1].click(); out.push(order());
  th[1].click(); out.push(order());
  th[0].click(); out.push(order());
  th[0].dispatchEvent(new KeyboardEvent("keydown", {key: "Enter"})); out.push(order());
  document.body.setAttribute("data-orders", out.join(","));
});</script></body></html>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(browser: str, page: Path, tmp_path: Path, width: int = 1280, height: int = 900) -> str:
    """The page's DOM after its scripts ran, from headless Chromium with no network use."""
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},{height}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_sort_script_orders_numbers_by_value_and_dashes_last(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shutil.copy(SCRIPT, tmp_path)
    (tmp_path / "page.html").write_text(SORT_PAGE)
    dom = dump_dom(browser, tmp_path / "page.html", tmp_path)
    # numbers: largest first, then reversed, a dash last both ways; text: a-z, then z-a
    assert 'data-orders="cdba,bdca,abcd,dcba"' in dom, dom[-2000:]


HOSTILE = ("x<img src=x onerror=alert(1)>", "[click](javascript:alert(2))")


class Live(HTMLParser):
    """Markup that would run or navigate: event attributes, javascript: URLs, images and
    scripts of the generated content."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and dict(attrs).get("src") == "x":
            self.found.append("<img src=x>")

    def handle_data(self, data):
        self.text += data


@pytest.mark.slow
def test_hostile_labels_build_as_text_and_every_label_gets_its_own_page(tmp_path):
    datasets = [*HOSTILE, "Flowers", "flowers", "Flöwers", "花", "index", "flo"]  # flo: other pages link it
    methods = [*HOSTILE, "m", "M"]
    rows = [
        {**attrs.asdict(row("alpha-net", c, seed, dataset=d)), "method": m, "method_plugin": m, "spec_name": HOSTILE[0],
         "side_information": HOSTILE[1], "features": HOSTILE[0], "id": i, "curves": {}}
        for i, (d, m, c, seed) in enumerate((d, m, c, s) for d in datasets for m in methods for c in CALIBRATORS
                                            for s in SEEDS)
    ]
    project = tmp_path / "project"
    copy_docs_without_leaderboard(project)
    shutil.copy(ROOT / "mkdocs.yml", project)
    written = write_leaderboard(rows, project / "docs" / "leaderboard", with_plots=False)
    pages = [p for p in written if p.suffix == ".md" and not p.name.startswith("_")]
    # one index, one ranking, one page per data set and one per method on each: none overwritten
    assert len(set(pages)) == len(pages) == 2 + len(datasets) * (1 + len(methods))
    assert len({p.as_posix().lower() for p in pages}) == len(pages)  # nor on a case-insensitive disk
    with_committed_entries(project)
    linked = with_committed_pages(project)
    build(project, tmp_path / "site")
    html_files = sorted((tmp_path / "site" / "leaderboard").rglob("*.html"))
    assert len(html_files) == len(pages) + len(linked)
    shown = ""
    for html_file in html_files:
        live = Live()
        # a browser reads <title> as text only (RCDATA); the theme writes the heading's text there
        live.feed(re.sub(r"<title>.*?</title>", "", html_file.read_text(), flags=re.S))
        assert not live.found, (html_file, live.found)
        shown += live.text
    for label in HOSTILE:  # shown, as text
        assert label in shown
    search = (tmp_path / "site" / "search" / "search_index.json").read_text()  # the search box shows it as HTML
    assert "<img" not in search and "javascript:alert" not in search.replace("[click](javascript:alert(2))", "")
