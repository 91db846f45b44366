"""The generated reports in a real browser: Debian's Chromium, driven by Playwright.

After the quick pipeline (what ``make demo`` runs), ``reports/index.html`` is opened from
disk as a reader opens it, and so is every page it links to, the notebook reports
included. Each page must load without a console error, every link must resolve (local
files exist, ``#fragments`` name an element, nothing points off the machine: reports are
read offline) and every image must have a non-zero natural size. The index must tell the
story (alias cards, key metrics, monitoring verdict, the pipeline's timeline) and its
tables must sort by a click on a header. Screenshots are saved in the test's tmp dir; the
index's full-page one is also copied to ``/tmp/index_screenshot.png`` for a person to look
at.

Playwright cannot download its own browser here; it drives Debian's ``/usr/bin/chromium``,
which ``make system-packages`` installs (the test fails naming that step when it is missing).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse
from urllib.request import url2pathname

import nbformat
import pytest
from support import system_packages

from fraudkit.reports.index import IndexStory, RunRow, Section, render_index
from fraudkit.reports.story import RunLink
from fraudkit.runner.parameters import NOTEBOOKS
from fraudkit.runner.pipeline import run_pipeline

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.slow]


@dataclass
class PageReport:
    """What one page did in the browser."""

    url: str
    problems: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    images: int = 0


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    executable = system_packages.chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=system_packages.CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _check_page(browser, url: str, screenshot: Path | None = None) -> PageReport:
    """Open ``url``; record console errors, failed requests, dead fragments, broken images."""
    report = PageReport(url)
    page = browser.new_page()
    page.on(
        "console",
        lambda m: report.problems.append(f"console error: {m.text}") if m.type == "error" else 0,
    )
    page.on("pageerror", lambda e: report.problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: report.problems.append(f"failed request: {r.url}"))
    # With a network a CDN script would load and pass unseen: any such request is a fault.
    page.on(
        "request",
        lambda r: (
            report.problems.append(f"request off the machine: {r.url}")
            if not r.url.startswith(("file:", "data:"))
            else 0
        ),
    )
    try:
        page.goto(url, wait_until="load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.currentSrc || e.src, e.naturalWidth, e.naturalHeight])"
        )
        report.images = len(images)
        for src, width, height in images:
            if not (width > 0 and height > 0):
                report.problems.append(f"image {src[:120]} has natural size {width}x{height}")
        report.links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for link in report.links:
            target, fragment = urldefrag(link)
            if fragment and target == urldefrag(url)[0]:
                found = page.evaluate(
                    "id => document.getElementById(id) !== null", unquote(fragment)
                )
                if not found:
                    report.problems.append(f"link {link} names no element on the page")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    return report


def _crawl(browser, start: Path, screenshots: dict[str, Path]) -> dict[str, PageReport]:
    """Check ``start`` and every local HTML page reachable from it; return reports by URL.

    Links to other local files must exist; links off the machine are problems.
    """
    reports: dict[str, PageReport] = {}
    queue = [start.resolve().as_uri()]
    while queue:
        url = queue.pop()
        if url in reports:
            continue
        name = Path(url2pathname(urlparse(url).path)).name
        report = reports[url] = _check_page(browser, url, screenshots.get(name))
        for link in report.links:
            target, _ = urldefrag(link)
            parsed = urlparse(target)
            if parsed.scheme != "file":
                report.problems.append(f"link {link} leaves the machine; reports are read offline")
                continue
            path = Path(url2pathname(parsed.path))
            if not path.is_file() or path.stat().st_size == 0:
                report.problems.append(f"link {link} points at a missing or empty file")
            elif path.suffix == ".html" and target not in reports:
                queue.append(target)
    return reports


def _problems(reports: dict[str, PageReport]) -> list[str]:
    return [f"{url}: {p}" for url, r in reports.items() for p in r.problems]


# Where a person looks at the index as the browser drew it (1280 px wide).
INDEX_SCREENSHOT = Path("/tmp/index_screenshot.png")
# Reads a table column's sort keys (data-sort, else text) in the rows' current order.
COLUMN_KEYS = """([table, column]) => Array.from(document.querySelector(table).tBodies[0].rows,
    row => { const c = row.cells[column]; return c.dataset.sort ?? c.textContent.trim(); })"""


def _column(page, table: str, name: str) -> int:
    """Index of the header ``data-column=name`` in ``table``."""
    return page.eval_on_selector(
        table,
        "(t, name) => Array.from(t.tHead.rows[0].cells).findIndex(c => c.dataset.column === name)",
        name,
    )


def _sorted_by_clicks(page, table: str, name: str) -> list[list[str]]:
    """The column's keys before any click, after one click and after a second one."""
    column = _column(page, table, name)
    assert column >= 0, f"{table} has no column {name}"
    header = page.locator(f"{table} thead th").nth(column)
    orders = [page.evaluate(COLUMN_KEYS, [table, column])]
    for expected in ("ascending", "descending"):
        header.click()
        assert header.get_attribute("aria-sort") == expected
        orders.append(page.evaluate(COLUMN_KEYS, [table, column]))
    return orders


def test_tables_sort_numbers_by_value_not_text(browser, tmp_path):
    # 9 < 10 < 100 as numbers, but "10" < "100" < "9" as text; the empty cell stays last.
    rows = tuple(
        RunRow(
            run=RunLink(f"run{i}", f"run-{i}"),
            status="FINISHED",
            started=f"2026-01-0{i + 1} 00:00:00",
            error="",
            cell="?",
            values={"n_fraud": (f"{value:,}", float(value))} if value is not None else {},
            links=(),
        )
        for i, value in enumerate([10, None, 9, 1000, 100])
    )
    columns = (("n_fraud", "frauds", "Frauds.", True),)
    section = Section("training", "Training", "1", None, columns, rows)
    story = IndexStory("now", "sqlite:///x", (), (), None, None, (), (section,))
    (tmp_path / "index.html").write_text(render_index(story))
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else 0)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto((tmp_path / "index.html").as_uri())
        before, ascending, descending = _sorted_by_clicks(
            page, 'table[data-experiment="training"]', "n_fraud"
        )
    finally:
        page.close()
    assert errors == []
    assert before == ["10.0", "", "9.0", "1000.0", "100.0"]
    assert ascending == ["9.0", "10.0", "100.0", "1000.0", ""]
    assert descending == ["1000.0", "100.0", "10.0", "9.0", ""]


def _check_story(browser, index: Path, screenshot: Path) -> dict[str, object]:
    """Open the index at 1280 px, read its story elements and sort a table by clicks."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else 0)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(index.resolve().as_uri(), wait_until="load")
        found = {
            "aliases": page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.alias)"),
            "metrics": page.eval_on_selector_all(
                "#key-metrics tr[data-metric]", "els => els.map(e => e.dataset.metric)"
            ),
            "verdict": page.locator("#monitoring .verdict-head").inner_text(),
            "steps": page.eval_on_selector_all(
                "ol.timeline li.step", "els => els.map(e => e.dataset.notebook)"
            ),
            "decisions": page.eval_on_selector_all(
                "ol.timeline .decision", "els => els.map(e => e.textContent.trim())"
            ),
            "step_links": page.eval_on_selector_all(
                "ol.timeline .step-run a", "els => els.map(e => e.getAttribute('href'))"
            ),
            "hrefs": page.eval_on_selector_all(
                "a[href]", "els => els.map(e => e.getAttribute('href'))"
            ),
            "width": page.evaluate("document.documentElement.scrollWidth"),
        }
        found["orders"] = _sorted_by_clicks(
            page, 'table[data-experiment="model_comparison"]', "average_precision"
        )
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    found["errors"] = errors
    return found


# MLflow's confirmation when a model version is registered: the only stderr a report of
# the quick pipeline may show (warnings, progress bars and hints would be noise to readers).
_EXPECTED_STDERR = re.compile(
    r"(Successfully registered model|Registered model '.*' already exists|Created version)"
)


def _unexpected_stderr(executed: Path) -> list[str]:
    lines = []
    for cell in nbformat.read(executed, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines += [line for line in output.text.splitlines() if line.strip()]
    return [line for line in lines if not _EXPECTED_STDERR.match(line)]


def test_broken_pages_are_caught(browser, tmp_path):
    # The checks below must be able to fail: each kind of breakage is planted once.
    (tmp_path / "ok.html").write_text("<p id='here'>fine</p>")
    (tmp_path / "index.html").write_text(
        "<html><body><a href='ok.html#here'>ok</a> <a href='#here'>self</a>"
        "<p id='here'></p><a href='missing.html'>dead</a> <a href='#nowhere'>fragment</a>"
        "<a href='https://example.org/'>external</a><img src='missing.png' alt='gone'>"
        "<script src='http://127.0.0.1:9/cdn.js'></script>"
        "<script>console.error('boom')</script></body></html>"
    )

    reports = _crawl(browser, tmp_path / "index.html", {})

    index = reports[(tmp_path / "index.html").as_uri()]
    text = "\n".join(index.problems)
    assert "console error: boom" in text
    assert "missing.html points at a missing or empty file" in text
    assert "#nowhere names no element" in text
    assert "https://example.org/ leaves the machine" in text
    assert "missing.png has natural size 0x0" in text
    assert "failed request" in text and "missing.png" in text
    assert "request off the machine: http://127.0.0.1:9/cdn.js" in text
    # The good page was followed, and holds no problem.
    assert reports[(tmp_path / "ok.html").as_uri()].problems == []
    assert len(reports) == 2


def test_quick_pipeline_reports_render_in_chromium(browser, tmp_path, fraudkit_home):
    result = run_pipeline(quick=True, progress=False)
    assert [r.notebook for r in result.runs] == list(NOTEBOOKS)
    assert {r.status for r in result.runs} == {"FINISHED"}

    training = result.runs[0]
    shots = {"index.html": tmp_path / "index.png", "report.html": tmp_path / "report.png"}
    reports = _crawl(browser, result.index, {"index.html": shots["index.html"]})
    # Every run's report is named report.html: the training one is screenshot on its own.
    training_report = _check_page(browser, training.html_report.as_uri(), shots["report.html"])

    assert _problems(reports) == []
    assert training_report.problems == []
    for run in result.runs:
        assert _unexpected_stderr(run.executed_notebook) == [], run.notebook
    # The crawl reached every run's report and full notebook, from the index.
    pages = {Path(url2pathname(urlparse(u).path)) for u in reports}
    for run in result.runs:
        assert {run.html_report, run.html_full} <= pages, run.notebook
    index = reports[result.index.resolve().as_uri()]
    assert index.images >= 5  # the latest figures of each notebook type
    assert training_report.images >= 3  # its plots, embedded

    # The story, as a reader sees it at 1280 px.
    shots["story"] = tmp_path / "index_story.png"
    story = _check_story(browser, result.index, shots["story"])
    shutil.copy(shots["story"], INDEX_SCREENSHOT)
    assert story["errors"] == []
    assert story["aliases"][:2] == ["production", "staging"]
    assert {"average_precision", "share_of_bayes_auprc"} <= set(story["metrics"])
    assert story["verdict"].startswith(("Retraining recommended", "No retraining needed"))
    assert story["steps"] == list(NOTEBOOKS)  # retraining ran, or says why not
    assert all(story["decisions"]) and "1.0000" not in " ".join(story["decisions"])
    reports_of_runs = [
        r.html_report.relative_to(result.index.parent).as_posix() for r in result.runs
    ]
    assert story["step_links"] == reports_of_runs  # each step links its report
    assert not [h for h in story["hrefs"] if h.startswith(("http:", "https:", "//"))]
    assert story["width"] <= 1280  # nothing overflows the page sideways
    # Sorting the comparison table (the pipeline's run and its candidates) by AUPRC.
    before, ascending, descending = story["orders"]
    numbers = [float(v) for v in ascending]
    assert len(set(numbers)) >= 2 and numbers == sorted(numbers)
    assert [float(v) for v in descending] == sorted(numbers, reverse=True)
    assert sorted(float(v) for v in before) == numbers
    for shot in shots.values():
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
