"""HTML reports of notebook runs and the report index (fraudkit.reports.run_pages)."""

from __future__ import annotations

import base64
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from mlflow.entities import Metric, Param

from fraudkit import mlflow_manager
from fraudkit.core.exceptions import NotebookExecutionError
from fraudkit.core.tags import (
    ERROR_TAG,
    FAILED_CELL_TAG,
    PARENT_RUN_TAG,
    REPORT_DIR_TAG,
    SWEEP_EXPERIMENT_TAG,
    SWEEP_INDEX_TAG,
    SWEEP_NOTEBOOK_TAG,
    SWEEP_POINT_TAG,
    SWEEP_POINTS_TAG,
    SWEEP_RUN_TAG,
)
from fraudkit.reports.index import (
    SECTION_COLUMNS,
    IndexStory,
    build_report_index,
    read_story,
    render_index,
)
from fraudkit.reports.run_pages import (
    TEMPLATES_DIR,
    describe_failure,
    extract_figures,
    new_run_folder,
    render_html,
    write_run_reports,
)
from fraudkit.reports.story import NOT_RUN, RunLink
from fraudkit.runner.execution import run_notebook
from fraudkit.tracking.registry import move_alias

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
    assert "No monitoring run yet" in page and "No pipeline yet" in page
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
    runs = page[page.index('id="runs"') :]
    assert ok.run_id in runs and ok.run_name in runs
    assert runs.index("FAILED") < runs.index(ok.run_name)  # newest first
    assert 'data-alias="production"' in page and 'data-alias="staging"' in page
    assert 'data-metric="average_precision"' in page  # the key metrics, described
    assert mlflow_manager.get_version_by_alias(MODEL, "production").run_id == ok.run_id
    parser = _Links()
    parser.feed(page)
    assert parser.links, "index has no links"
    for link in parser.links:
        assert not link.startswith(("/", "file:")), link
        if link.startswith("#"):  # the page's own sections
            assert f'id="{link[1:]}"' in page, link
        else:
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


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("server", marks=pytest.mark.server)], indirect=True
)
def test_report_index_lists_sweeps_with_point_counts_and_the_report(backend, fraudkit_home):
    from fraudkit.reports.sweep_page import sweep_report_path

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
            tags={
                **base,
                SWEEP_RUN_TAG: sweep,
                SWEEP_INDEX_TAG: str(index),
                SWEEP_POINT_TAG: point,
            },
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
    sweeps = page[page.index('<section id="sweeps">') : page.index('<section id="figures">')]
    runs = page[page.index('<section id="runs">') : page.index('<section id="sweeps">')]
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


# -- the story the index tells (fraudkit.reports.index, fraudkit.reports.story) ----------------

T0 = 1_780_000_000_000  # a fixed start time (ms), so runs sort as written


def _run(
    kind: str,
    name: str,
    start: int,
    *,
    status: str = "FINISHED",
    summary: dict | None = None,
    metrics: dict | None = None,
    steps: dict | None = None,
    params: dict | None = None,
    pipeline: str | None = None,
    parent: str | None = None,
    tags: dict | None = None,
    report: bool = False,
) -> str:
    """A notebook run as the runner and the notebooks leave it, without executing anything.

    ``summary`` goes through log_experiment_summary (tags + metrics, as notebooks log it);
    ``steps`` are per-window metrics (step = window); ``report`` writes its report.html.
    """
    client = mlflow_manager.client
    run_tags = {"fraudkit.experiment_type": kind, "fraudkit.notebook": f"{kind}.ipynb"}
    run_tags |= {"fraudkit.pipeline_id": pipeline} if pipeline else {}
    run_tags |= {PARENT_RUN_TAG: parent} if parent else {}
    run_tags |= {REPORT_DIR_TAG: f"runs/{name}"} | (tags or {})
    experiment = mlflow_manager.experiment_id(kind)
    run_id = client.create_run(experiment, start_time=start, tags=run_tags, run_name=name)
    run_id = run_id.info.run_id
    logged = [Metric(k, float(v), start, 0) for k, v in (metrics or {}).items()]
    for key, values in (steps or {}).items():
        logged += [Metric(key, float(v), start + i, i) for i, v in enumerate(values)]
    params = [Param(k, str(v)) for k, v in (params or {}).items()]
    client.log_batch(run_id, metrics=logged, params=params)
    if summary:
        mlflow_manager.log_experiment_summary(summary, run_id=run_id)
    if report:
        folder = _reports() / "runs" / name
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<html>report</html>")
    client.set_terminated(run_id, status, end_time=start + 500)
    return run_id


def _reports() -> Path:
    from fraudkit.core.config import reports_dir

    return reports_dir()


def _story() -> IndexStory:
    return read_story(
        mlflow_manager.client,
        mlflow_manager.setup_experiments(),
        _reports(),
        tracking_uri=mlflow_manager.tracking_uri,
    )


def _version(run_id: str, model_type: str | None = None) -> str:
    client = mlflow_manager.client
    if not client.search_registered_models(filter_string=f"name = '{MODEL}'"):
        client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, f"runs:/{run_id}/model", run_id=run_id).version
    if model_type:
        client.set_model_version_tag(MODEL, version, "fraudkit.model_type", model_type)
    return str(version)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_alias_cards_say_who_serves_since_when_and_why(backend, fraudkit_home):
    client = mlflow_manager.client
    first = _run(
        "training",
        "training-first",
        T0,
        metrics={"average_precision": 0.70, "bayes_average_precision": 0.80, "n_fraud": 40.0},
        params={"model_type": "logistic_regression"},
    )
    second = _run(
        "training",
        "training-second",
        T0 + 1000,
        metrics={"average_precision": 0.75, "share_of_bayes_auprc": 0.9375, "threshold": 0.31},
    )
    v1, v2 = _version(first), _version(second, "hist_gradient_boosting")
    ab = _run("ab_testing", "ab-v1-vs-v2", T0 + 2000, summary={"winner": "B"}, report=True)
    gate = {
        "metric": "average_precision",
        "candidate_value": 0.75,
        "holder_value": 0.70,
        "dataset": "ab_traffic",
        "digest": "abc123",
        "source": f"A/B run {ab}",
    }
    move_alias(client, MODEL, "production", v1, reason="first registered model")
    move_alias(client, MODEL, "staging", v2, reason="best candidate")
    move_alias(
        client, MODEL, "production", v2, reason="won A/B test", evidence_run_id=ab, gate=gate
    )
    client.set_registered_model_alias(MODEL, "champion", v1)  # outside fraudkit: no record

    story = _story()

    assert [(c.alias, c.version) for c in story.cards] == [
        ("production", "2"),
        ("staging", "2"),
        ("champion", "1"),
    ]
    production, staging, champion = story.cards
    assert production.model_type == "hist_gradient_boosting"
    assert champion.model_type == "logistic_regression"  # from the run's params
    move = production.move
    assert move is not None and (move.previous, move.reason) == ("1", "won A/B test")
    assert move.evidence == RunLink(ab, "ab-v1-vs-v2", "runs/ab-v1-vs-v2/report.html")
    assert move.gate == f"AUPRC 0.750 against 0.700 of version 1 on ab_traffic (A/B run {ab})"
    assert [(m.version, m.reason) for m in production.earlier] == [("1", "first registered model")]
    assert production.source == RunLink(second, "training-second")  # registered by; no report
    assert production.metrics == {"AUPRC": "0.750", "share of Bayes AUPRC": "93.8%"}
    assert staging.move is not None and staging.move.reason == "best candidate"
    assert champion.move is None and champion.earlier == ()
    # Key metrics: one row per metric some holder logged, one value per card; the share of
    # the Bayes ceiling computed where only the ceiling was logged (0.70 / 0.80).
    rows = {m.name: m.values for m in story.key_metrics}
    assert list(rows) == [
        "average_precision",
        "bayes_average_precision",
        "share_of_bayes_auprc",
        "threshold",
        "n_fraud",
    ]
    assert rows["share_of_bayes_auprc"] == ("93.8%", "93.8%", "87.5%")
    assert rows["n_fraud"] == ("—", "—", "40")
    assert rows["threshold"] == ("0.310", "0.310", "—")
    assert story.key_metrics[0].meaning.startswith("Average precision")


def _pipeline(pipeline: str, start: int, *, recommend: bool = True) -> dict[str, str]:
    """The runs of one quick pipeline, as its notebooks log them; returns their ids."""
    ids = {
        "training": _run(
            "training",
            f"training-{pipeline}",
            start,
            pipeline=pipeline,
            summary={"model_name": MODEL, "model_version": "1", "aliases": "staging,production"},
        ),
        "model_comparison": _run(
            "model_comparison",
            f"comparison-{pipeline}",
            start + 10,
            pipeline=pipeline,
            summary={
                "best_model_type": "hist_gradient_boosting",
                "best_average_precision": 0.81234,
                "n_candidates": 2,
                "registered_version": "2",
            },
        ),
        "ab_testing": _run(
            "ab_testing",
            f"ab-{pipeline}",
            start + 20,
            pipeline=pipeline,
            summary={
                "winner": None,
                "p_value": 0.41,
                "relative_improvement": 0.02,
                "promoted": False,
            },
        ),
        "monitoring": _run(
            "monitoring",
            f"monitoring-{pipeline}",
            start + 30,
            pipeline=pipeline,
            summary={"n_windows": 6, "model_version": "1", "retraining_recommended": recommend},
            steps={
                "data_drift": [0, 0, 0, 1, 1, 1],
                "prediction_drift": [0, 0, 0, 0, 1, 1],
                "alert_performance_drop": [0, 0, 0, 0, 1, 1],
                "labels_used": [1, 1, 1, 1, 1, 0],
                "estimate_reliable": [1, 1, 1, 1, 0, 1],
            },
        ),
    }
    # A candidate's nested run: part of the pipeline's runs, not a step of it.
    candidate = f"candidate-{pipeline}"
    parent = ids["model_comparison"]
    _run("model_comparison", candidate, start + 11, pipeline=pipeline, parent=parent)
    if recommend:
        ids["retraining"] = _run(
            "retraining",
            f"retraining-{pipeline}",
            start + 40,
            pipeline=pipeline,
            summary={
                "winner": "B",
                "p_value": 0.001,
                "auprc_difference": 0.0412,
                "promoted": True,
                "new_version": "3",
            },
        )
    return ids


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_timeline_tells_what_each_notebook_of_the_last_pipeline_decided(backend, fraudkit_home):
    _pipeline("old", T0, recommend=False)
    ids = _pipeline("new", T0 + 1000)

    story = _story()

    assert story.pipeline_id == "new"
    steps = {step.notebook: step for step in story.timeline}
    assert list(steps) == list(SECTION_COLUMNS)  # pipeline order, nested runs left out
    assert all(step.run is not None for step in story.timeline)
    assert [step.run.run_id for step in story.timeline] == list(ids.values())  # type: ignore[union-attr]
    expected = {
        "training": ("Registered version 1 as staging and production.", True),
        "model_comparison": (
            "Best of 2 candidates: hist_gradient_boosting (AUPRC 0.812); registered as version 2.",
            True,
        ),
        "ab_testing": ("No significant winner (p = 0.410).", False),
        "monitoring": (
            "Watched version 1 over 6 windows: drift in windows 3, 4 and 5; retraining "
            "recommended.",
            True,
        ),
        "retraining": (
            "Retrained as version 3. Winner B: AUPRC difference +0.041 (p = 0.001).",
            True,
        ),
    }
    for notebook, (decision, first_flag) in expected.items():
        assert steps[notebook].decision == decision, notebook
        assert steps[notebook].flags[0][1] is first_flag, notebook
    assert steps["retraining"].flags == (("retrained", True), ("promoted", True))
    assert steps["ab_testing"].flags == (("promoted", False),)
    # The latest monitoring run's verdict, window by window.
    verdict = story.verdict
    assert verdict is not None and verdict.run.run_id == ids["monitoring"]
    assert verdict.drift_windows == (3, 4, 5) and verdict.score_drift_windows == (4, 5)
    assert verdict.drop_windows == (4, 5) and verdict.retraining_recommended is True
    assert verdict.estimate_windows == (5,) and verdict.unreliable_windows == (4,)
    assert verdict.drift and verdict.reliable  # window 4 was judged on its labels


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_timeline_says_why_a_notebook_did_not_run(backend, fraudkit_home):
    _pipeline("calm", T0, recommend=False)
    skipped = _story().timeline[-1]
    assert (skipped.notebook, skipped.status, skipped.run) == ("retraining", NOT_RUN, None)
    assert skipped.decision == "Not run: monitoring did not recommend retraining."
    assert skipped.flags == (("retrained", False),)
    assert _story().verdict.retraining_recommended is False  # type: ignore[union-attr]

    failure = {ERROR_TAG: "ValueError: bad data\nmore", FAILED_CELL_TAG: "4"}
    _run("training", "training-broken", T0 + 1000, status="FAILED", pipeline="broken", tags=failure)
    story = _story()
    assert story.pipeline_id == "broken"
    assert [(s.notebook, s.status) for s in story.timeline] == [
        ("training", "FAILED"),
        ("model_comparison", NOT_RUN),
        ("ab_testing", NOT_RUN),
        ("monitoring", NOT_RUN),
        ("retraining", NOT_RUN),
    ]
    assert story.timeline[0].decision == "Failed in cell 4: ValueError: bad data"
    assert story.timeline[1].decision == "Not run: training failed."


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_run_tables_format_numbers_by_name_and_sort_by_value(backend, fraudkit_home):
    old = _run("ab_testing", "ab-old", T0, metrics={"improvement": 1.4881, "promoted": 1.0})
    new = _run(
        "ab_testing",
        "ab-new",
        T0 + 10,
        summary={"relative_improvement": 0.4881, "promoted": False, "p_value": 0.0004},
    )
    _run("training", "training-big", T0 + 20, metrics={"n_fraud": 12000.0}, report=True)

    story = _story()

    sections = {section.kind: section for section in story.sections}
    assert list(sections) == list(SECTION_COLUMNS)
    ab = sections["ab_testing"]
    assert [column[0] for column in ab.columns] == [
        "p_value",
        "relative_improvement",
        "improvement",
        "promoted",
    ]
    assert ab.columns[1][1] == "relative improvement" and "Relative change" in ab.columns[1][2]
    assert all(column[3] for column in ab.columns)  # numbers, right-aligned
    rows = {row.run.run_id: row for row in ab.rows}
    assert list(rows) == [new, old]  # newest first
    assert rows[old].values == {"improvement": ("+148.8%", 1.4881), "promoted": ("yes", 1.0)}
    assert rows[new].values["promoted"] == ("no", 0.0)  # a "False" tag, sorted as 0
    assert rows[new].values["relative_improvement"] == ("+48.8%", 0.4881)
    training = sections["training"]
    assert [column[0] for column in training.columns] == ["n_fraud"]
    assert training.rows[0].values["n_fraud"] == ("12,000", 12000.0)
    assert dict(training.rows[0].links) == {"report": "runs/training-big/report.html"}
    assert sections["monitoring"].rows == ()

    page = render_index(story)
    assert "1.0000" not in page and "12000.000" not in page
    assert '<table class="sortable runs" data-experiment="ab_testing">' in page
    assert 'data-sort="12000.0">12,000</td>' in page
    assert "No monitoring runs yet" in page
    assert (TEMPLATES_DIR / "report_index.js").read_text().splitlines()[0] in page
    # A local store's page links nothing off the machine.
    parser = _Links()
    parser.feed(page)
    assert parser.links and not [link for link in parser.links if ":" in link], parser.links


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_nested_runs_name_their_parent(backend, fraudkit_home):
    parent = _run("model_comparison", "comparison", T0, summary={"best_model_type": "lr"})
    _run("model_comparison", "candidate-lr", T0 + 1, parent=parent, params={"model_type": "lr"})
    rows = {r.run.name: r for r in _story().sections[1].rows}
    assert rows["candidate-lr"].parent == "comparison" and rows["comparison"].parent is None
    assert rows["candidate-lr"].values["model_type"] == ("lr", "lr")
    assert ("model_type", "model type", "", False) in _story().sections[1].columns  # words


@pytest.mark.server
@pytest.mark.parametrize("backend", ["server"], indirect=True)
def test_a_server_store_links_runs_to_the_machine_learning_view(backend, fraudkit_home):
    run_id = _run("training", "training-remote", T0, report=True)

    story = _story()

    training = story.sections[0]
    assert training.url is not None and training.url.startswith(mlflow_manager.tracking_uri)
    assert training.url.endswith(
        f"/#/experiments/{training.experiment_id}?workflowType=machine_learning"
    )
    run = training.rows[0].run
    assert run.url is not None and f"/runs/{run_id}?workflowType=machine_learning" in run.url
    assert run.report == "runs/training-remote/report.html"  # the local report stays linked
    page = render_index(story)
    assert f'href="{html.escape(run.url)}"' in page and "MLflow ↗" in page
