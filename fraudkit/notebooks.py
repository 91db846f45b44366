"""Headless notebook runs: papermill execution, MLflow hand-off, HTML reports, the pipeline.

:func:`run_notebook` creates the MLflow run first, executes the notebook with papermill
passing ``mlflow_run_id`` (the notebook resumes that run), renders the executed notebook to
HTML with nbconvert, logs both as artifacts of the run and sets the run's final status,
FAILED included: no run is left RUNNING (unless the tracking server is unreachable by then,
which the error says), and a failed notebook still leaves its partial executed notebook and
report.

Files land in ``<FRAUDKIT_HOME>/reports/runs/<run name>/``: ``notebook.ipynb``,
``report.html`` without code, ``notebook.html`` with code, ``figures/`` (the folder name gets
``-2``, ``-3``... when runs started in the same second share a name);
:func:`build_report_index` writes ``reports/index.html`` linking them.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import itertools
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from fraudkit import config
from fraudkit.config import TAG_PREFIX, ExperimentType
from fraudkit.exceptions import (
    ConfigurationError,
    NotebookExecutionError,
    NotebookParameterError,
    TrackingError,
)

NOTEBOOKS: dict[str, str] = {
    "training": "01_training.ipynb",
    "model_comparison": "02_model_comparison.ipynb",
    "ab_testing": "03_ab_testing.ipynb",
    "monitoring": "04_monitoring.ipynb",
    "retraining": "05_retraining.ipynb",
}
PIPELINE_ORDER: tuple[str, ...] = tuple(NOTEBOOKS)

# Small sizes for `fraudkit pipeline --quick` / `make demo`; only the parameters a notebook
# declares are passed to it.
# The pipeline tells a story: a logistic-regression baseline goes to production first, the
# comparison finds a stronger candidate for staging, and the A/B test decides on promotion.
PIPELINE_PARAMETERS: dict[str, dict[str, Any]] = {
    "training": {"model_type": "logistic_regression", "run_label": "baseline"},
}
# Training sizes keep 30 frauds or more in each evaluated period (fraudkit.metrics.MIN_FRAUDS),
# so the quick demo's numbers carry no small-sample warning.
QUICK_PARAMETERS: dict[str, dict[str, Any]] = {
    "training": {"n_transactions": 100_000},
    "model_comparison": {
        "n_transactions": 100_000,
        "model_types": "logistic_regression,hist_gradient_boosting",
    },
    "ab_testing": {"n_transactions": 60_000, "n_resamples": 500},
    "monitoring": {"n_windows": 6, "window_size": 20_000, "drift_start": 3, "label_delay": 1},
    "retraining": {"n_transactions": 60_000},
}
KEY_METRICS = (
    "p_value",
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
_FAILED_CELL_TAG = f"{TAG_PREFIX}failed_cell"
_ERROR_TAG = f"{TAG_PREFIX}error"
_REPORT_TAG = f"{TAG_PREFIX}report_dir"
_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@dataclass(frozen=True)
class NotebookRun:
    """Result of one headless notebook execution."""

    notebook: str
    run_id: str
    run_name: str
    status: str
    output_dir: Path
    executed_notebook: Path
    html_report: Path
    html_full: Path
    duration_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    pipeline_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result with paths as strings."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PipelineResult:
    """Result of :func:`run_pipeline`."""

    pipeline_id: str
    runs: tuple[NotebookRun, ...]
    index: Path

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain data."""
        return {
            "pipeline_id": self.pipeline_id,
            "index": str(self.index),
            "runs": [r.to_dict() for r in self.runs],
        }


# -- notebooks and their parameters ------------------------------------------------------


def notebook_path(name: str) -> Path:
    """Return the path of notebook ``name`` (training, model_comparison, ...).

    Raises
    ------
    ConfigurationError
        Unknown name, or the notebook file is missing.
    """
    key = ExperimentType.parse(name).value if name not in NOTEBOOKS else name
    path = config.notebooks_dir() / NOTEBOOKS[key]
    if not path.is_file():
        raise ConfigurationError(
            f"notebook {key!r} not found at {path}; set FRAUDKIT_NOTEBOOKS_DIR to the "
            "folder holding the kit's notebooks"
        )
    return path


def available_notebooks() -> list[str]:
    """Return the pipeline's notebooks that exist, in pipeline order."""
    return [n for n in PIPELINE_ORDER if (config.notebooks_dir() / NOTEBOOKS[n]).is_file()]


def notebook_parameters(name: str) -> dict[str, dict[str, Any]]:
    """Return the declared parameters of a notebook: ``{name: {type, default, help}}``.

    Read from the cell tagged ``parameters`` with :mod:`ast` (papermill's own inspection
    skips annotations such as ``str | None``): ``type`` is the annotation as written,
    ``default`` the default's source text and ``help`` the trailing comment.
    """
    import nbformat

    notebook = nbformat.read(notebook_path(name), as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ConfigurationError(
            f"notebook {name!r} must have exactly one cell tagged 'parameters' (found {len(cells)})"
        )
    source = cells[0].source
    lines = source.splitlines()
    declared: dict[str, dict[str, Any]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, annotation = node.target.id, ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target, annotation = node.targets[0].id, "None"
        else:
            continue
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset :] else ""
        declared[target] = {
            "type": annotation,
            "default": ast.unparse(node.value) if node.value is not None else None,
            "help": comment,
        }
    return declared


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "None": lambda v: v is None,
}


def _accepts(type_name: str, value: Any) -> bool:
    alternatives = [t.strip() for t in type_name.replace("Optional[", "").rstrip("]").split("|")]
    known = [t for t in alternatives if t in _TYPE_CHECKS]
    if (
        type_name == "None" or not known
    ):  # untyped or exotic annotation: papermill cannot tell, so neither can we
        return True
    return any(_TYPE_CHECKS[t](value) for t in known)


def _coerce(value: Any) -> Any:
    # Command-line values arrive as text; read them as YAML scalars ("5000" -> 5000,
    # "true" -> True, "null" -> None), as papermill's own CLI does.
    if not isinstance(value, str):
        return value
    if value.strip() == "None":  # Python's spelling, as typed by notebook users
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return (
        parsed if isinstance(parsed, int | float | bool | list | dict) or parsed is None else value
    )


def validate_parameters(name: str, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``parameters`` against the notebook's ``parameters`` cell; return them coerced.

    Raises
    ------
    NotebookParameterError
        A name the notebook does not declare, or a value of the wrong type.
    """
    declared = notebook_parameters(name)
    checked: dict[str, Any] = {}
    for key, raw in (parameters or {}).items():
        if key == "mlflow_run_id":
            raise NotebookParameterError("mlflow_run_id is set by the runner; do not pass it")
        if key not in declared:
            valid = ", ".join(k for k in declared if k != "mlflow_run_id")
            raise NotebookParameterError(
                f"notebook {name!r} has no parameter {key!r}; its parameters are: {valid}"
            )
        expected = declared[key]["type"]
        coerced = _coerce(raw)
        value = coerced if _accepts(expected, coerced) else raw
        if expected == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not _accepts(expected, value):
            raise NotebookParameterError(
                f"parameter {key!r} of notebook {name!r} must be {expected}, got {raw!r}"
            )
        checked[key] = value
    return checked


# -- execution -----------------------------------------------------------------------------


class _KnownParameterFilter(logging.Filter):
    # papermill's own inspection misses annotations like `str | None` and warns about
    # "unknown" parameters we have already validated against the parameters cell.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Passed unknown parameter" not in record.getMessage()


logging.getLogger("papermill").addFilter(_KnownParameterFilter())


@contextlib.contextmanager
def _kernel_environment(values: Mapping[str, str]) -> Iterator[None]:
    # The kernel is a child process and inherits os.environ; pin the store, home and run
    # context there so the notebook writes where the runner reads.
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# Reports are read offline and by people outside the team: JupyterLab's template would
# fetch require.js, MathJax and Mermaid from a CDN (console errors without a network, and a
# request to a third party). fraudkit's notebooks use none of them, so the blocks are empty.
_REPORT_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def render_html(executed: Path, destination: Path, *, hide_input: bool) -> Path:
    """Render an executed notebook to a self-contained HTML file.

    Images are embedded and no script is loaded from the network, so the file reads the
    same from disk, from an MLflow artifact view or in a mail attachment.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file="fraudkit_report.html.j2",
        extra_loaders=[jinja2.DictLoader({"fraudkit_report.html.j2": _REPORT_TEMPLATE})],
        exclude_input=hide_input,
        exclude_input_prompt=hide_input,
        exclude_output_prompt=hide_input,
    )
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    destination.write_text(body, encoding="utf-8")
    return destination


def _extract_figures(executed: Path, folder: Path, limit: int = 12) -> list[Path]:
    """Save the PNG outputs of an executed notebook as files (for the report index)."""
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


def _failure(error: BaseException, executed: Path) -> tuple[int | None, str, str]:
    """Return (cell index in the saved notebook, one-line error, traceback) of a failure."""
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


def _new_folder(path: Path) -> Path:
    """Create and return ``path``, or ``path-2``, ``path-3``... when it already exists.

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


def _write_reports(source: Path, executed: Path, run_id: str) -> None:
    """Render the executed notebook (or the source, if execution never began) to HTML."""
    folder = executed.parent
    try:
        if not executed.exists():
            shutil.copy(source, executed)
        render_html(executed, folder / "report.html", hide_input=True)
        render_html(executed, folder / "notebook.html", hide_input=False)
        _extract_figures(executed, folder / "figures")
    except OSError as exc:
        raise TrackingError(
            f"could not write the report of run {run_id} to {folder} ({exc}); free disk "
            f"space or make {config.reports_dir()} a writable folder, or set "
            f"{config.ENV_HOME} to a writable folder"
        ) from exc


def _record_outcome(client: Any, run_id: str, executed: Path, error: BaseException | None) -> None:
    """Log the report folder as artifacts and tag the run with its folder and failure."""
    folder = executed.parent
    client.log_artifacts(run_id, str(folder), artifact_path="notebook")
    run_tags = {_REPORT_TAG: folder.relative_to(config.reports_dir()).as_posix()}
    if error is not None:
        cell, message, trace = _failure(error, executed)
        run_tags.update({_FAILED_CELL_TAG: str(cell), _ERROR_TAG: message[:5000]})
        client.log_text(run_id, trace, "notebook/error.txt")
    for tag, value in run_tags.items():
        client.set_tag(run_id, tag, value)


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


def run_notebook(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    pipeline_id: str | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> NotebookRun:
    """Execute notebook ``name`` headless on its own MLflow run.

    Parameters
    ----------
    name : str
        One of training, model_comparison, ab_testing, monitoring, retraining.
    parameters : mapping, optional
        Notebook parameters (checked against its ``parameters`` cell before anything runs).
    pipeline_id : str, optional
        Tags the run as part of a pipeline.
    timeout : float, optional
        Per-cell timeout in seconds.
    progress : bool
        Show papermill's per-cell progress bar.

    Returns
    -------
    NotebookRun

    Raises
    ------
    NotebookParameterError
        Unknown parameter or wrong type; no run is created.
    NotebookExecutionError
        A cell failed, the kernel died or timed out. The run is FAILED and holds the
        partial notebook and report; the error carries the cell index and traceback.
    """
    import papermill
    from mlflow.exceptions import MlflowException

    from fraudkit.tracking import _store_error, mlflow_manager

    key = ExperimentType.parse(name).value
    source = notebook_path(key)
    checked = validate_parameters(key, parameters)
    manager = mlflow_manager
    client = manager.client
    run_name = manager.run_name(key, source.stem)
    tags = {
        **manager.run_tags(key, source.stem),
        f"{TAG_PREFIX}notebook": source.name,
        "mlflow.source.name": source.name,
        "mlflow.source.type": "NOTEBOOK",
    }
    if pipeline_id:
        tags[f"{TAG_PREFIX}pipeline_id"] = pipeline_id
    try:
        run = client.create_run(manager.experiment_id(key), run_name=run_name, tags=tags)
    except MlflowException as exc:
        raise _store_error(exc, manager.tracking_uri, what=f"creating a {key} run") from exc
    run_id = run.info.run_id
    output_dir = config.reports_dir() / "runs" / run_name
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        output_dir = _new_folder(output_dir)
        if checked:
            client.log_dict(run_id, checked, "notebook/parameters.json")
        env = {
            config.ENV_HOME: str(config.fraudkit_home()),
            config.ENV_TRACKING_URI: manager.tracking_uri,
            config.ENV_NOTEBOOK: source.name,
            config.ENV_NOTEBOOKS_DIR: str(config.notebooks_dir()),
        }
        if pipeline_id:
            env[config.ENV_PIPELINE_ID] = pipeline_id
        # Artifact-download progress bars, and tqdm's "IProgress not found" hint (raised by
        # `import mlflow` in a kernel without ipywidgets, with a local path), would be
        # frozen into every report as stderr.
        env[_PROGRESS_BAR_ENV] = os.environ.get(_PROGRESS_BAR_ENV, "false")
        quiet = [os.environ.get("PYTHONWARNINGS", ""), "ignore:IProgress not found"]
        env["PYTHONWARNINGS"] = ",".join(filter(None, quiet))
        with _kernel_environment(env):
            papermill.execute_notebook(
                str(source),
                str(output_dir / "notebook.ipynb"),
                parameters={**checked, "mlflow_run_id": run_id},
                kernel_name="python3",
                progress_bar=progress,
                execution_timeout=timeout,
            )
    except BaseException as exc:
        error = exc
    executed = output_dir / "notebook.ipynb"
    # Report and record the outcome; whatever fails here (disk, server, Ctrl-C), the run is
    # still terminated below and the first failure is raised after.
    failure: BaseException | None = None
    try:
        _write_reports(source, executed, run_id)
        _record_outcome(client, run_id, executed, error)
    except BaseException as exc:
        failure = exc
    status = "FAILED" if error is not None or failure is not None else "FINISHED"
    outcome = f"marked {status}"
    try:
        client.set_terminated(run_id, status)
    except MlflowException as exc:
        outcome = f"left RUNNING (could not mark it {status})"
        failure = failure or exc
    if isinstance(failure, MlflowException):
        lost = _store_error(failure, manager.tracking_uri, what=f"recording run {run_id}")
        raise type(lost)(
            f"{lost}; run {run_id} {outcome}; the executed notebook is kept at {executed}"
        ) from failure
    if failure is not None:
        raise failure
    if error is not None:
        if isinstance(error, KeyboardInterrupt):
            raise error
        cell, message, trace = _failure(error, executed)
        raise NotebookExecutionError(
            key,
            cell_index=cell,
            error=message,
            traceback=trace,
            run_id=run_id,
            output_path=str(executed),
        ) from error
    metrics = client.get_run(run_id).data.metrics
    return NotebookRun(
        notebook=key,
        run_id=run_id,
        run_name=run_name,
        status=status,
        output_dir=output_dir,
        executed_notebook=executed,
        html_report=output_dir / "report.html",
        html_full=output_dir / "notebook.html",
        duration_s=time.perf_counter() - started,
        metrics={k: v for k, v in metrics.items() if k in KEY_METRICS or k.startswith("summary")},
        pipeline_id=pipeline_id,
    )


# -- pipeline ------------------------------------------------------------------------------


def load_pipeline_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read a pipeline YAML file: ``{notebook name: {parameter: value}}``.

    Raises
    ------
    ConfigurationError
        Unreadable file, not a mapping, or an unknown notebook name.
    """
    try:
        content = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # PyYAML's messages span several lines
        raise ConfigurationError(f"cannot read pipeline file {path}: {reason}") from exc
    if not isinstance(content, dict) or not all(
        isinstance(v, dict | None) for v in content.values()
    ):
        raise ConfigurationError(
            f"pipeline file {path} must map notebook names to parameter mappings"
        )
    unknown = [k for k in content if k not in NOTEBOOKS]
    if unknown:
        raise ConfigurationError(
            f"pipeline file {path} names unknown notebooks {unknown}; use: {', '.join(NOTEBOOKS)}"
        )
    return {k: dict(v or {}) for k, v in content.items()}


def _retraining_recommended(run: NotebookRun) -> bool:
    from fraudkit.tracking import mlflow_manager

    tags = mlflow_manager.client.get_run(run.run_id).data.tags
    return tags.get(f"{TAG_PREFIX}summary.retraining_recommended") == "True"


def run_pipeline(
    *,
    quick: bool = False,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    on_start: Callable[[str], None] | None = None,
) -> PipelineResult:
    """Run the existing notebooks in pipeline order under one pipeline id.

    Retraining runs only when the monitoring run recommends it (it receives that run's id).
    The first failure stops the pipeline; the report index is rebuilt either way.

    Parameters
    ----------
    quick : bool
        Use :data:`QUICK_PARAMETERS` (small data) as defaults, on top of
        :data:`PIPELINE_PARAMETERS`.
    parameters : mapping, optional
        Per-notebook parameter overrides (e.g. from :func:`load_pipeline_config`).
    on_start : callable, optional
        Called with each notebook name before it starts (progress display).

    Raises
    ------
    NotebookExecutionError
        The first notebook that failed (after the index was rebuilt).
    """
    pipeline_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    runs: list[NotebookRun] = []
    overrides = {k: dict(v) for k, v in (parameters or {}).items()}
    try:
        for name in available_notebooks():
            declared = notebook_parameters(name)
            defaults = {**PIPELINE_PARAMETERS.get(name, {})}
            defaults.update(QUICK_PARAMETERS.get(name, {}) if quick else {})
            chosen = {k: v for k, v in defaults.items() if k in declared}
            chosen.update(overrides.get(name, {}))
            if name == "retraining":
                monitoring = next((r for r in runs if r.notebook == "monitoring"), None)
                if monitoring is None or not _retraining_recommended(monitoring):
                    continue
                if "monitoring_run_id" in declared:
                    chosen["monitoring_run_id"] = monitoring.run_id
            if on_start:
                on_start(name)
            runs.append(run_notebook(name, chosen, pipeline_id=pipeline_id, progress=progress))
    finally:
        index = build_report_index()
    return PipelineResult(pipeline_id=pipeline_id, runs=tuple(runs), index=index)


# -- report index ----------------------------------------------------------------------------

_INDEX_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fraudkit reports</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2933}
.muted{color:#616e7c;font-size:.9rem} code{font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #e4e7eb;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f5f7fa} .FINISHED{color:#0e7c3a} .FAILED{color:#b42318} .RUNNING{color:#b54708}
.models{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #e4e7eb;border-radius:8px;padding:.8rem 1rem;min-width:16rem}
.figs{display:flex;gap:.6rem;flex-wrap:wrap}
.figs img{max-width:420px;border:1px solid #e4e7eb;border-radius:4px}
</style></head>
<body><h1>fraudkit reports</h1>
<p class="muted">Generated {{ generated }} from <code>{{ store }}</code>.</p>
<h2>Models</h2><div class="models">
{% for card in models %}<div class="card"><strong>{{ card.alias }}</strong>:
{{ card.model }} v{{ card.version }}<br><span class="muted">{{ card.metrics or "no metrics" }}<br>
run <code>{{ card.run_id }}</code></span></div>
{% else %}<p class="muted">No model holds the production or staging alias yet.</p>{% endfor %}
</div>
<h2>Notebook runs</h2>
<table><thead><tr><th>type</th><th>run</th><th>status</th><th>started (UTC)</th>
<th>key metrics</th><th>files</th><th>MLflow run id</th></tr></thead><tbody>
{% for row in rows %}<tr><td>{{ row.kind }}</td><td>{{ row.name }}</td>
<td class="{{ row.status }}">{{ row.status }}{% if row.error %}<br><span class="muted">cell
{{ row.cell }}: {{ row.error }}</span>{% endif %}</td><td>{{ row.started }}</td>
<td>{{ row.metrics }}</td><td>{% for label, href in row.links %}
<a href="{{ href }}">{{ label }}</a>{% if not loop.last %} · {% endif %}
{% else %}—{% endfor %}</td><td><code>{{ row.run_id }}</code></td></tr>
{% else %}<tr><td colspan="7">No notebook runs yet: run <code>fraudkit pipeline</code>.</td></tr>
{% endfor %}</tbody></table>
<h2>Latest figures</h2>
{% for kind, block in figures.items() %}
<h3>{{ kind }} <span class="muted">{{ block.name }}</span></h3>
<div class="figs">{% for src in block.paths %}<a href="{{ src }}"><img src="{{ src }}"
alt="{{ kind }} figure {{ loop.index }}"></a>{% endfor %}</div>
{% else %}<p class="muted">No figures yet.</p>{% endfor %}
</body></html>
"""


def _format_metrics(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in KEY_METRICS if k in metrics)


def _model_cards(client: Any) -> list[dict[str, Any]]:
    from fraudkit import registry

    cards = []
    for model in registry._paged(client.search_registered_models):
        for alias in ("production", "staging"):
            holder = registry.get_version_by_alias(client, model.name, alias)
            if holder is not None:
                metrics = registry._run_metrics(client, holder.run_id)
                cards.append(
                    {
                        "alias": alias,
                        "model": model.name,
                        "version": holder.version,
                        "run_id": holder.run_id,
                        "metrics": _format_metrics(metrics),
                    }
                )
    return cards


def _index_row(run: Any, base: Path) -> tuple[dict[str, Any], list[str]]:
    tags = run.data.tags
    folder = base / tags.get(_REPORT_TAG, f"runs/{run.info.run_name}")
    files = (("report", "report.html"), ("notebook", "notebook.html"), (".ipynb", "notebook.ipynb"))
    links = [
        (label, (folder / f).relative_to(base).as_posix())
        for label, f in files
        if (folder / f).exists()
    ]
    figures = sorted((folder / "figures").glob("*.png")) if folder.exists() else []
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
    row = {
        "kind": tags.get(f"{TAG_PREFIX}experiment_type", ""),
        "name": run.info.run_name,
        "status": run.info.status,
        "error": (tags.get(_ERROR_TAG) or "")[:200],
        "cell": tags.get(_FAILED_CELL_TAG, "?"),
        "started": started.strftime("%Y-%m-%d %H:%M:%S"),
        "metrics": _format_metrics(run.data.metrics),
        "links": links,
        "run_id": run.info.run_id,
    }
    return row, [f.relative_to(base).as_posix() for f in figures]


def build_report_index(output: str | os.PathLike | None = None) -> Path:
    """Write ``reports/index.html`` listing every notebook run, newest first.

    The page is static (open it from disk): current production and staging versions at
    the top, then one row per run with its type, name, status, start time, key metrics,
    relative links to its HTML report and executed notebook (when the files exist
    locally) and its MLflow run id, then the figures of the newest run of each notebook.
    """
    import jinja2

    from fraudkit import registry
    from fraudkit.tracking import mlflow_manager

    client = mlflow_manager.client
    target = Path(output) if output else config.reports_dir() / "index.html"
    runs = registry._paged(
        client.search_runs,
        experiment_ids=list(mlflow_manager.setup_experiments().values()),
        filter_string=f"tags.`{TAG_PREFIX}notebook` != ''",
        order_by=["attributes.start_time DESC"],
    )
    rows, figures = [], {}
    for run in runs:
        row, paths = _index_row(run, target.parent)
        rows.append(row)
        if paths and row["kind"] not in figures:
            figures[row["kind"]] = {"name": row["name"], "paths": paths}
    page = (
        jinja2.Environment(autoescape=True)
        .from_string(_INDEX_TEMPLATE)
        .render(
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            store=config.redact_uri(mlflow_manager.tracking_uri),
            models=_model_cards(client),
            rows=rows,
            figures=figures,
        )
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
