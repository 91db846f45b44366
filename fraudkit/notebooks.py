"""Headless notebook runs: parameters, papermill execution, the MLflow hand-off, the pipeline.

:func:`run_notebook` checks the parameters against the notebook's ``parameters`` cell,
creates the MLflow run and logs the parameters as its params, executes the notebook with
papermill on the kit's own Jupyter kernel (``fraudkit``) passing ``mlflow_run_id`` (the
notebook resumes that run), has :mod:`fraudkit.reports` render the executed notebook to
HTML, logs both as artifacts of the run and sets the run's final status, FAILED included:
no run is left RUNNING (unless the tracking server is unreachable by then, which the error
says), and a failed notebook still leaves its partial executed notebook and report.

Files land in ``<FRAUDKIT_HOME>/reports/runs/<run name>/`` (the folder name gets ``-2``,
``-3``... when runs started in the same second share a name). :func:`run_pipeline` runs
the notebooks in order and rebuilds ``reports/index.html``.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fraudkit import config, reports
from fraudkit.config import TAG_PREFIX, ExperimentType
from fraudkit.exceptions import ConfigurationError, NotebookExecutionError, NotebookParameterError
from fraudkit.reports import ERROR_TAG, FAILED_CELL_TAG, KEY_METRICS, REPORT_DIR_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from traitlets.config import Config

__all__ = [
    "KERNEL_DISPLAY_NAME",
    "KERNEL_NAME",
    "NOTEBOOKS",
    "PIPELINE_ORDER",
    "PIPELINE_PARAMETERS",
    "QUICK_PARAMETERS",
    "NotebookRun",
    "PipelineResult",
    "available_notebooks",
    "kernel_install_command",
    "load_pipeline_config",
    "log_parameters",
    "notebook_parameters",
    "notebook_path",
    "parameter_values",
    "run_notebook",
    "run_pipeline",
    "validate_parameters",
]

# The kit's own Jupyter kernel (`make install` registers it inside the virtualenv): a
# user-level `python3` kernelspec pointing at a Python without fraudkit cannot take over.
KERNEL_NAME = "fraudkit"
KERNEL_DISPLAY_NAME = "Python (fraudkit)"

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
    # Untyped or exotic annotation: papermill cannot tell, so neither can we.
    return type_name == "None" or not known or any(_TYPE_CHECKS[t](value) for t in known)


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


def _default_value(source: str | None) -> Any:
    # Defaults are literals in the kit's notebooks; anything else is recorded as written.
    if source is None:
        return None
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source


def parameter_values(name: str, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the values notebook ``name`` runs with: its defaults, overridden by ``parameters``.

    These are what the runner logs as the params of the run it creates (``mlflow_run_id``
    left out), so no notebook lists its parameters again.

    Raises
    ------
    NotebookParameterError
        As :func:`validate_parameters`.
    """
    declared = notebook_parameters(name)
    values = {k: _default_value(spec["default"]) for k, spec in declared.items()}
    values.update(validate_parameters(name, parameters))
    values.pop("mlflow_run_id", None)
    return values


def log_parameters(name: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Log notebook ``name``'s parameters on the active run, as the runner does headless.

    A notebook calls it once, after starting its run, with ``globals()``: run
    interactively (``mlflow_run_id`` is None) its parameter values become the run's params;
    run by :func:`run_notebook`, the runner has logged them already and nothing is logged.

    Returns
    -------
    dict
        The notebook's parameters and their values, ``mlflow_run_id`` left out.
    """
    from fraudkit.tracking import mlflow_manager

    declared = notebook_parameters(name)
    values = {k: namespace[k] for k in declared if k != "mlflow_run_id" and k in namespace}
    if namespace.get("mlflow_run_id") is None:
        mlflow_manager.log_params(values)
    return values


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
    values = dict(values)
    # Artifact-download progress bars, and tqdm's "IProgress not found" hint (raised by
    # `import mlflow` in a kernel without ipywidgets, with a local path), would be frozen
    # into every report as stderr.
    values[_PROGRESS_BAR_ENV] = os.environ.get(_PROGRESS_BAR_ENV, "false")
    quiet = [os.environ.get("PYTHONWARNINGS", ""), "ignore:IProgress not found"]
    values["PYTHONWARNINGS"] = ",".join(filter(None, quiet))
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


def kernel_install_command() -> str:
    """Return the command that registers the kit's Jupyter kernel in this Python's prefix."""
    return (
        f"{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME} "
        f'--display-name "{KERNEL_DISPLAY_NAME}"'
    )


def _require_kernel() -> None:
    """Fail before any run is created when the kit's kernel is not registered."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel as exc:
        raise ConfigurationError(
            f"the Jupyter kernel {KERNEL_NAME!r} the notebooks run on is not installed; run "
            f"`make install`, or `{kernel_install_command()}`"
        ) from exc


@contextlib.contextmanager
def _ipc_kernel() -> Iterator[Config]:
    """Kernel-manager settings for a kernel reached over IPC sockets, not TCP ports.

    No port is opened and ipykernel's "Kernel is running over TCP without encryption"
    warning goes away. The sockets live in a fresh folder only this user can enter
    (mkdtemp makes it 0700), not the working directory: kernels started side by side
    would otherwise share ``kernel-ipc-1``... there.
    """
    from traitlets.config import Config

    folder = tempfile.mkdtemp(prefix="fraudkit-kernel-")
    try:
        yield Config(KernelManager={"transport": "ipc", "ip": os.path.join(folder, "kernel")})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _record_outcome(
    client: MlflowClient, run_id: str, executed: Path, error: BaseException | None
) -> None:
    """Log the report folder as artifacts and tag the run with its folder and failure."""
    folder = executed.parent
    client.log_artifacts(run_id, str(folder), artifact_path="notebook")
    run_tags = {REPORT_DIR_TAG: folder.relative_to(config.reports_dir()).as_posix()}
    if error is not None:
        cell, message, trace = reports.describe_failure(error, executed)
        run_tags.update({FAILED_CELL_TAG: str(cell), ERROR_TAG: message[:5000]})
        client.log_text(run_id, trace, "notebook/error.txt")
    for tag, value in run_tags.items():
        client.set_tag(run_id, tag, value)


def run_notebook(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    pipeline_id: str | None = None,
    timeout: float | None = None,
    progress: bool = True,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    job_timeout: float | None = None,
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
    parent_run_id : str, optional
        Makes the run a child of this run (``mlflow.parentRunId``), as a sweep's points are.
    tags : mapping, optional
        Extra tags of the run, set when it is created.
    job_timeout : float, optional
        Time budget of the whole execution in seconds: each cell may use what is left of it.

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

    from fraudkit.store import store_error
    from fraudkit.tracking import mlflow_manager

    key = ExperimentType.parse(name).value
    source = notebook_path(key)
    checked = validate_parameters(key, parameters)
    _require_kernel()
    manager = mlflow_manager
    client = manager.client
    run_name = manager.run_name(key, source.stem)
    run_tags = {
        **manager.run_tags(key, source.stem),
        f"{TAG_PREFIX}notebook": source.name,
        "mlflow.source.name": source.name,
        "mlflow.source.type": "NOTEBOOK",
        **(tags or {}),
    }
    if pipeline_id:
        run_tags[f"{TAG_PREFIX}pipeline_id"] = pipeline_id
    if parent_run_id:
        run_tags["mlflow.parentRunId"] = parent_run_id
    try:
        run = client.create_run(manager.experiment_id(key), run_name=run_name, tags=run_tags)
    except MlflowException as exc:
        raise store_error(exc, manager.tracking_uri, what=f"creating a {key} run") from exc
    run_id = run.info.run_id
    output_dir = config.reports_dir() / "runs" / run_name
    started = time.perf_counter()
    deadline = started + (job_timeout or 0.0)

    def cell_timeout(_cell: Any) -> float:
        # nbclient asks this for each cell's timeout, in place of `timeout`: what is left of
        # the job's budget, at least 1 s (nbclient reads 0 as "no timeout").
        return max(1.0, min(deadline - time.perf_counter(), timeout or float("inf")))

    error: BaseException | None = None
    try:
        output_dir = reports.new_run_folder(output_dir)
        if checked:
            client.log_dict(run_id, checked, "notebook/parameters.json")
        manager.log_params(parameter_values(key, checked), run_id=run_id)
        env = {
            config.ENV_HOME: str(config.fraudkit_home()),
            config.ENV_TRACKING_URI: manager.tracking_uri,
            config.ENV_NOTEBOOK: source.name,
            config.ENV_NOTEBOOKS_DIR: str(config.notebooks_dir()),
        }
        if pipeline_id:
            env[config.ENV_PIPELINE_ID] = pipeline_id
        with _kernel_environment(env), _ipc_kernel() as kernel_config:
            papermill.execute_notebook(
                str(source),
                str(output_dir / "notebook.ipynb"),
                parameters={**checked, "mlflow_run_id": run_id},
                kernel_name=KERNEL_NAME,
                progress_bar=progress,
                execution_timeout=timeout,
                config=kernel_config,  # passed on to nbclient, which gives it to the kernel manager
                timeout_func=cell_timeout if job_timeout else None,
            )
    except BaseException as exc:
        error = exc
    executed = output_dir / "notebook.ipynb"
    # Report and record the outcome; whatever fails here (disk, server, Ctrl-C), the run is
    # still terminated below and the first failure is raised after.
    failure: BaseException | None = None
    try:
        reports.write_run_reports(source, executed, run_id)
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
        lost = store_error(failure, manager.tracking_uri, what=f"recording run {run_id}")
        raise type(lost)(
            f"{lost}; run {run_id} {outcome}; the executed notebook is kept at {executed}"
        ) from failure
    if failure is not None:
        raise failure
    if error is not None:
        if isinstance(error, KeyboardInterrupt):
            raise error
        cell, message, trace = reports.describe_failure(error, executed)
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
        index = reports.build_report_index()
    return PipelineResult(pipeline_id=pipeline_id, runs=tuple(runs), index=index)
