"""HTML reports of notebook runs and the static page that tells their story.

Every headless run (:func:`fraudkit.notebooks.run_notebook`) leaves, in
``<FRAUDKIT_HOME>/reports/runs/<run name>/``: ``report.html`` without code,
``notebook.html`` with code and ``figures/`` (its PNG outputs as files);
:func:`write_run_reports` makes them. :func:`build_report_index` writes
``reports/index.html``: which version serves under each alias and why, the key metrics,
the latest monitoring verdict, what the last pipeline decided, one sortable table per
experiment, the sweeps (see :mod:`fraudkit.sweep`) and the newest figures; its content is
read by :mod:`fraudkit.report_index`.

The pages are static and self-contained (images embedded, no script fetched from the
network), so they read the same from disk, from an MLflow artifact view or in a mail
attachment. Their templates are package data files in ``fraudkit/templates/``.
"""

from __future__ import annotations

import base64
import itertools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fraudkit import config
from fraudkit.config import TAG_PREFIX
from fraudkit.exceptions import TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = [
    "ERROR_TAG",
    "FAILED_CELL_TAG",
    "KEY_METRICS",
    "REPORT_DIR_TAG",
    "TEMPLATES_DIR",
    "build_report_index",
    "describe_failure",
    "extract_figures",
    "new_run_folder",
    "render_html",
    "sweep_rows",
    "write_run_reports",
]

TEMPLATES_DIR = Path(__file__).with_name("templates")
NOTEBOOK_TEMPLATE = "notebook_report.html.j2"

# Run tags the runner writes and the index reads: the run's report folder (relative to
# the reports folder), and where and how a failed notebook failed.
REPORT_DIR_TAG = f"{TAG_PREFIX}report_dir"
FAILED_CELL_TAG = f"{TAG_PREFIX}failed_cell"
ERROR_TAG = f"{TAG_PREFIX}error"

# The metrics a run's result (and a sweep's table) shows, in this order. Runs logged before
# the A/B change was named for what it is hold `improvement`.
KEY_METRICS = (
    "p_value",
    "relative_improvement",
    "auprc_difference",
    "improvement",
    "share_drifted",
    "retraining_recommended",
    "promoted",
    "average_precision",
    "roc_auc",
    "fraud_recall",
    "fraud_precision",
    "bayes_average_precision",
)
REPORT_FILES = (
    ("report", "report.html"),
    ("notebook", "notebook.html"),
    (".ipynb", "notebook.ipynb"),
)


# -- one run ---------------------------------------------------------------------------------


def new_run_folder(path: Path) -> Path:
    """Create and return a run's report folder ``path``, or ``path-2``, ``path-3``... when taken.

    Run names have one-second resolution, so notebooks started together share a name;
    each must still get a folder of its own (mkdir is atomic, across processes too).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in itertools.count(1):
        folder = path if attempt == 1 else path.with_name(f"{path.name}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")  # pragma: no cover


def render_html(executed: Path, destination: Path, *, hide_input: bool) -> Path:
    """Render an executed notebook to a self-contained HTML file.

    Parameters
    ----------
    executed : Path
        The executed ``.ipynb``.
    destination : Path
        The HTML file to write.
    hide_input : bool
        Leave out code cells' input and the prompts (a report for readers).

    Returns
    -------
    Path
        ``destination``.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        # An absolute path: nbconvert adds its folder after its own, so the template's
        # `extends 'index.html.j2'` still finds JupyterLab's.
        template_file=str(TEMPLATES_DIR / NOTEBOOK_TEMPLATE),
        exclude_input=hide_input,
        exclude_input_prompt=hide_input,
        exclude_output_prompt=hide_input,
    )
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    destination.write_text(body, encoding="utf-8")
    return destination


def extract_figures(executed: Path, folder: Path, limit: int = 12) -> list[Path]:
    """Save the PNG outputs of an executed notebook as files, for the report index.

    Parameters
    ----------
    executed : Path
        The executed ``.ipynb``.
    folder : Path
        Where to write ``figure_01.png``, ``figure_02.png``... (created if missing).
    limit : int
        Keep at most this many, in the notebook's order.

    Returns
    -------
    list of Path
        The files written.
    """
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png and len(saved) < limit:
                path = folder / f"figure_{len(saved) + 1:02d}.png"
                path.write_bytes(base64.b64decode(png))
                saved.append(path)
    return saved


def write_run_reports(source: Path, executed: Path, run_id: str) -> None:
    """Write a run's ``report.html``, ``notebook.html`` and ``figures/`` beside ``executed``.

    When execution never began (no executed notebook), the source notebook stands in, so
    a failed run still has a report.

    Raises
    ------
    TrackingError
        The files cannot be written (disk full, read-only folder); the message says where.
    """
    import shutil

    folder = executed.parent
    try:
        if not executed.exists():
            shutil.copy(source, executed)
        render_html(executed, folder / "report.html", hide_input=True)
        render_html(executed, folder / "notebook.html", hide_input=False)
        extract_figures(executed, folder / "figures")
    except OSError as exc:
        raise TrackingError(
            f"could not write the report of run {run_id} to {folder} ({exc}); free disk "
            f"space or make {config.reports_dir()} a writable folder, or set "
            f"{config.ENV_HOME} to a writable folder"
        ) from exc


# -- failures ----------------------------------------------------------------------------------


def describe_failure(error: BaseException, executed: Path) -> tuple[int | None, str, str]:
    """Say where and how a notebook execution failed.

    Parameters
    ----------
    error : BaseException
        What papermill raised (a cell error, a dead kernel, a timeout...).
    executed : Path
        The executed notebook papermill saved (possibly partial, possibly missing).

    Returns
    -------
    tuple
        The failing cell's index in the saved notebook (None when unknown), a one-line
        error and the traceback.
    """
    from papermill.exceptions import PapermillExecutionError

    cell = _failing_cell(executed)
    if isinstance(error, PapermillExecutionError):
        trace = error.traceback
        trace = "\n".join(trace) if isinstance(trace, list) else str(trace)
        return cell, f"{error.ename}: {error.evalue}", trace
    kind = type(error).__name__
    if "DeadKernel" in kind:
        died_in = cell if cell is not None else _last_started_cell(executed)
        return died_in, "the kernel died (killed, out of memory or os._exit)", str(error)
    if "Timeout" in kind:
        return cell, f"a cell exceeded the timeout ({error})", str(error)
    return cell, f"{kind}: {error}", str(error)


def _failing_cell(executed: Path) -> int | None:
    """Index of the failing cell in the saved notebook.

    Located in the file itself rather than taken from papermill's exception, because
    papermill inserts an error banner cell at the top of the saved notebook.
    """
    import nbformat

    if not executed.exists():
        return None
    cells = nbformat.read(executed, as_version=4).cells
    for index, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("papermill", {})
        errored = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if errored or meta.get("exception") or meta.get("status") == "running":
            return index
    return None


def _last_started_cell(executed: Path) -> int | None:
    """Index of the last cell papermill started: where a dead kernel stopped.

    A kernel that dies leaves no error output and papermill marks every cell completed,
    but only the cells it reached have a start time.
    """
    import nbformat

    if not executed.exists():
        return None
    cells = nbformat.read(executed, as_version=4).cells
    started = [
        i
        for i, c in enumerate(cells)
        if c.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    return started[-1] if started else None


# -- the index page ----------------------------------------------------------------------------


def sweep_rows(client: MlflowClient, experiment_ids: list[str], base: Path) -> list[dict]:
    """One row of the index's sweeps table per sweep run, newest first.

    Its points are counted from its child runs: a point counts as finished when one of its
    runs FINISHED (a point rescheduled after a killed worker has a KILLED run and a
    FINISHED one), as failed when all its runs ended otherwise; points without a run
    (cancelled before they started) are "not run".
    """
    from fraudkit.store import paged
    from fraudkit.sweep import (
        INDEX_TAG,
        POINT_TAG,
        SWEEP_EXPERIMENT_TAG,
        SWEEP_NOTEBOOK_TAG,
        SWEEP_POINTS_TAG,
        SWEEP_TAG,
    )
    from fraudkit.sweep_report import sweep_report_path

    sweeps = list(
        paged(
            client.search_runs,
            experiment_ids=experiment_ids,
            filter_string=f"tags.`{SWEEP_EXPERIMENT_TAG}` = 'true'",
            order_by=["attributes.start_time DESC"],
        )
    )
    if not sweeps:
        return []
    # One search for every child of every sweep, rather than one search per sweep.
    children: dict[str, list[Run]] = {}
    for child in paged(
        client.search_runs,
        experiment_ids=experiment_ids,
        filter_string=f"tags.`{SWEEP_TAG}` != ''",
    ):
        children.setdefault(child.data.tags[SWEEP_TAG], []).append(child)
    rows = []
    for sweep in sweeps:
        states: dict[str, set[str]] = {}
        varied: dict[str, None] = {}  # an ordered set: the grid's parameter names
        for child in children.get(sweep.info.run_id, []):
            tags = child.data.tags
            states.setdefault(tags.get(INDEX_TAG, child.info.run_id), set()).add(child.info.status)
            varied.update(dict.fromkeys(_point_names(tags.get(POINT_TAG))))
        finished = sum("FINISHED" in seen for seen in states.values())
        running = sum("RUNNING" in seen and "FINISHED" not in seen for seen in states.values())
        failed = len(states) - finished - running
        tags = sweep.data.tags
        points = max(_count(tags.get(SWEEP_POINTS_TAG)), len(states))
        # Where fraudkit.sweep copies the sweep's report, relative to the reports folder.
        name = sweep.info.run_name or sweep.info.run_id
        report = base / sweep_report_path(name).relative_to(config.reports_dir())
        started = datetime.fromtimestamp(sweep.info.start_time / 1000, UTC)
        rows.append(
            {
                "notebook": tags.get(SWEEP_NOTEBOOK_TAG)
                or tags.get(f"{TAG_PREFIX}experiment_type", ""),
                "name": name,
                "status": sweep.info.status,
                "points": points,
                "finished": finished,
                "failed": failed,
                "running": running,
                "not_run": points - len(states),
                "varied": ", ".join(varied),
                "started": started.strftime("%Y-%m-%d %H:%M:%S"),
                "report": report.relative_to(base).as_posix() if report.exists() else None,
                "run_id": sweep.info.run_id,
            }
        )
    return rows


def _point_names(point: str | None) -> list[str]:
    """The varied parameter names of a child run's grid point tag (JSON), [] when unreadable."""
    import json

    try:
        decoded = json.loads(point or "{}")
    except ValueError:
        return []
    return list(decoded) if isinstance(decoded, dict) else []


def _count(value: str | None) -> int:
    """A count recorded as a tag, 0 when missing or unreadable."""
    try:
        return int(value or 0)
    except ValueError:
        return 0


def build_report_index(output: str | os.PathLike | None = None) -> Path:
    """Write ``reports/index.html``: the story of the tracking store, for a reader.

    The page is static and self-contained (open it from disk; its only script, the table
    sorting, is inline). From the top: one card per alias with the version holding it, its
    model type, since when and why (the recorded alias moves, their evidence runs linked);
    the key metrics of those versions with their meaning and unit and the share of the
    Bayes ceiling; the latest monitoring verdict; what each notebook of the last pipeline
    decided; one sortable table per experiment with every notebook run (status, key
    numbers formatted by :mod:`fraudkit.glossary`, links to its HTML report and executed
    notebook when the files exist locally, its MLflow run id); the sweeps; the figures of
    the newest run of each notebook. See :mod:`fraudkit.report_index`.

    Parameters
    ----------
    output : path, optional
        Where to write the page; default ``<FRAUDKIT_HOME>/reports/index.html``. Links are
        relative to its folder.

    Returns
    -------
    Path
        The page written.
    """
    from fraudkit.report_index import read_story, render_index
    from fraudkit.tracking import mlflow_manager

    target = Path(output) if output else config.reports_dir() / "index.html"
    story = read_story(
        mlflow_manager.client,
        mlflow_manager.setup_experiments(),
        target.parent,
        tracking_uri=mlflow_manager.tracking_uri,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_index(story), encoding="utf-8")
    return target
