"""HTML reports of notebook runs and the report index (fraudkit.reports)."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from fraudkit import mlflow_manager
from fraudkit.exceptions import NotebookExecutionError
from fraudkit.notebooks import run_notebook
from fraudkit.reports import (
    KEY_METRICS,
    TEMPLATES_DIR,
    build_report_index,
    describe_failure,
    extract_figures,
    new_run_folder,
    render_html,
    write_run_reports,
)

MODEL = "credit_card_fraud_detector"
SMALL = {"n_transactions": 20_000, "fraud_rate": 0.01}
# A 1x1 PNG: enough for nbconvert and the figure extraction.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def _executed(path: Path, *, figures: int = 1, error_in: int | None = None) -> Path:
    """Write a small 'executed' notebook: code cells with outputs, PNG figures, an error."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "fraudkit", "display_name": "Python (fraudkit)"}
    notebook.cells.append(nbformat.v4.new_markdown_cell("# A report"))
    for index in range(figures):
        cell = nbformat.v4.new_code_cell(f"secret_code_{index} = plot()")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG})]
        notebook.cells.append(cell)
    if error_in is not None:
        cell = nbformat.v4.new_code_cell("1 / 0")
        cell.outputs = [
            nbformat.v4.new_output(
                "error", ename="ZeroDivisionError", evalue="division by zero", traceback=[]
            )
        ]
        notebook.cells.insert(error_in, cell)
    nbformat.write(notebook, path)
    return path


def test_templates_ship_as_package_data_files():
    names = {p.name for p in TEMPLATES_DIR.iterdir()}
    assert {"notebook_report.html.j2", "report_index.html.j2", "report_index.css"} <= names


def test_render_html_is_self_contained_and_hides_code_on_request(tmp_path):
    executed = _executed(tmp_path / "notebook.ipynb", figures=2)
    report = render_html(executed, tmp_path / "report.html", hide_input=True).read_text()
    full = render_html(executed, tmp_path / "notebook.html", hide_input=False).read_text()
    assert "secret_code_0" in full and "secret_code_0" not in report
    assert report.count(f"data:image/png;base64,{PNG}") == 2  # embedded, not linked
    # No script from a CDN: the page reads the same offline.
    for page in (report, full):
        sources = re.findall(r"<script[^>]+src=[\"']([^\"']+)", page)
        assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
        assert "require.js" not in page and "mathjax" not in page.lower()


def test_extract_figures_writes_pngs_up_to_the_limit(tmp_path):
    executed = _executed(tmp_path / "notebook.ipynb", figures=3)
    saved = extract_figures(executed, tmp_path / "figures", limit=2)
    assert [p.name for p in saved] == ["figure_01.png", "figure_02.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in saved)


def test_write_run_reports_falls_back_to_the_source_notebook(tmp_path):
    source = _executed(tmp_path / "source.ipynb")
    folder = tmp_path / "run"
    folder.mkdir()
    write_run_reports(source, folder / "notebook.ipynb", "run-1")
    assert {"notebook.ipynb", "report.html", "notebook.html", "figures"} <= {
        p.name for p in folder.iterdir()
    }


def test_runs_sharing_a_name_get_folders_of_their_own(tmp_path):
    wanted = tmp_path / "runs" / "training-01_training-20260101T000000Z"
    folders = [new_run_folder(wanted) for _ in range(3)]
    assert [f.name for f in folders] == [wanted.name, f"{wanted.name}-2", f"{wanted.name}-3"]
    assert all(f.is_dir() for f in folders)


def test_describe_failure_finds_the_failing_cell(tmp_path):
    executed = _executed(tmp_path / "notebook.ipynb", figures=2, error_in=2)
    cell, message, trace = describe_failure(RuntimeError("boom"), executed)
    assert cell == 2 and message == "RuntimeError: boom" and trace == "boom"
    missing = describe_failure(TimeoutError("60 s"), tmp_path / "never-written.ipynb")
    assert missing[0] is None and "timeout" in missing[1]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_empty_report_index_says_how_to_fill_it(backend, fraudkit_home, tmp_path):
    index = build_report_index(tmp_path / "site" / "index.html")
    page = index.read_text()
    assert index == tmp_path / "site" / "index.html"
    assert "No notebook runs yet" in page and "fraudkit pipeline" in page
    assert "No model holds the production or staging alias yet" in page
    # The stylesheet is inlined from its package data file.
    assert (TEMPLATES_DIR / "report_index.css").read_text().splitlines()[0] in page
    assert page.startswith("<!doctype html>")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.links.append(attrs["src"])


@pytest.mark.notebook
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_report_index_lists_runs_with_working_relative_links(backend, fraudkit_home):
    ok = run_notebook("training", SMALL, progress=False)
    with pytest.raises(NotebookExecutionError):
        run_notebook("training", {"data_path": "/nonexistent.csv"}, progress=False)
    index = build_report_index()
    assert index == fraudkit_home / "reports" / "index.html"
    page = index.read_text()
    assert ok.run_id in page and ok.run_name in page
    assert page.index("FAILED") < page.index(ok.run_name)  # newest first
    assert "production" in page and f"{MODEL} v" in page
    assert any(f"{key} " in page for key in KEY_METRICS)
    assert mlflow_manager.get_version_by_alias(MODEL, "production").run_id == ok.run_id
    parser = _Links()
    parser.feed(page)
    assert parser.links, "index has no links"
    for link in parser.links:
        assert not link.startswith(("/", "file:")), link
        assert (index.parent / link).is_file(), link
