"""HTML reports of notebook runs and the static page that tells their story.

Every headless run (:func:`fraudkit.runner.execution.run_notebook`) leaves, in
``<FRAUDKIT_HOME>/reports/runs/<run name>/``: ``report.html`` without code,
``notebook.html`` with code and ``figures/`` (its PNG outputs as files);
:func:`write_run_reports` makes them, and :func:`describe_failure` says where a failed
notebook failed. The story index that links them is :mod:`fraudkit.reports.index`.

The pages are static and self-contained (images embedded, no script fetched from the
network), so they read the same from disk, from an MLflow artifact view or in a mail
attachment. Their templates are package data files in ``fraudkit/reports/templates/``.
"""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from fraudkit.core import config
from fraudkit.core.exceptions import TrackingError

if TYPE_CHECKING:
    pass

__all__ = [
    "RESULT_METRICS",
    "TEMPLATES_DIR",
    "describe_failure",
    "extract_figures",
    "new_run_folder",
    "render_html",
    "write_run_reports",
]

TEMPLATES_DIR = Path(__file__).with_name("templates")
NOTEBOOK_TEMPLATE = "notebook_report.html.j2"

# The metrics a run's result (and a sweep's table) shows, in this order. Runs logged before
# the A/B change was named for what it is hold `improvement`.
RESULT_METRICS = (
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
