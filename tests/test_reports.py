"""HTML reports of notebook runs and the report index (fraudkit.reports)."""

from __future__ import annotations

import base64
import json
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
    assert "No sweeps yet" in page and "fraudkit sweep training" in page
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


class _Rows(HTMLParser):
    """The text of each table row of a page, cell by cell, and the links in each row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[list[str], list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append(([], []))
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a" and self.rows:
            self.rows[-1][1].append(dict(attrs)["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][0].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _row(page: str, text: str) -> tuple[list[str], list[str]]:
    parser = _Rows()
    parser.feed(page)
    found = [row for row in parser.rows if text in row[0]]
    assert len(found) == 1, f"{len(found)} rows hold {text!r}"
    return found[0]


@pytest.mark.parametrize("backend", ["sqlite", "server"], indirect=True)
def test_report_index_lists_sweeps_with_point_counts_and_the_report(backend, fraudkit_home):
    from fraudkit.sweep import (
        INDEX_TAG,
        POINT_TAG,
        SWEEP_EXPERIMENT_TAG,
        SWEEP_NOTEBOOK_TAG,
        SWEEP_POINTS_TAG,
        SWEEP_TAG,
    )
    from fraudkit.sweep_report import sweep_report_path

    client = mlflow_manager.client
    experiment = mlflow_manager.experiment_id("training")
    base = {"fraudkit.experiment_type": "training", "fraudkit.notebook": "01_training.ipynb"}
    tags = {**base, SWEEP_EXPERIMENT_TAG: "true", SWEEP_NOTEBOOK_TAG: "training"}
    sweep = client.create_run(
        experiment, run_name="sweep-training-1", tags={**tags, SWEEP_POINTS_TAG: "5"}
    ).info.run_id
    # Point 0: its worker was killed (KILLED), then it was rescheduled and FINISHED;
    # point 1 FINISHED; point 2 FAILED; point 3 still RUNNING; point 4 never started.
    for index, status in [
        (0, "KILLED"),
        (0, "FINISHED"),
        (1, "FINISHED"),
        (2, "FAILED"),
        (3, None),
    ]:
        point = json.dumps({"seed": index, "model_type": "logistic_regression"}, sort_keys=True)
        child = client.create_run(
            experiment,
            run_name=f"point-{index}-{status}",
            tags={**base, SWEEP_TAG: sweep, INDEX_TAG: str(index), POINT_TAG: point},
        ).info.run_id
        if status:
            client.set_terminated(child, status)
    client.set_terminated(sweep, "FAILED")
    # Where run_sweep copies the report from the tracking store.
    report = sweep_report_path("sweep-training-1")
    assert report == fraudkit_home / "reports" / "sweeps" / "sweep-training-1" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>sweep report</html>")
    # A second sweep, never reported locally, with nothing recorded but its own run.
    other = client.create_run(experiment, run_name="sweep-training-2", tags=tags).info.run_id

    page = build_report_index().read_text()
    sweeps = page[page.index("<h2>Sweeps</h2>") : page.index("<h2>Notebook runs</h2>")]
    runs = page[page.index("<h2>Notebook runs</h2>") :]
    cells, links = _row(sweeps, "sweep-training-1")
    assert cells[:4] == ["training", "sweep-training-1", "FAILED", "model_type, seed"]
    assert cells[4:7] == ["5 1 running 1 not run", "2", "1"]  # points, finished, failed
    assert cells[-1] == sweep
    assert links == ["sweeps/sweep-training-1/report.html"]
    assert (fraudkit_home / "reports" / links[0]).read_text() == "<html>sweep report</html>"
    cells, links = _row(sweeps, "sweep-training-2")
    assert cells[4:7] == ["0", "0", "0"] and cells[8] == "—" and not links
    assert sweeps.index("sweep-training-2") < sweeps.index("sweep-training-1")  # newest first
    # The sweep runs are listed as sweeps only; their points are notebook runs.
    assert sweep not in runs and other not in runs
    assert "point-0-KILLED" in runs and "point-2-FAILED" in runs
    assert "No sweeps yet" not in page
