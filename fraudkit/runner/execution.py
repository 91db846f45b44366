"""Headless notebook runs: papermill execution on the kit's kernel and the MLflow hand-off.

:func:`run_notebook` checks the parameters against the notebook's ``parameters`` cell,
creates the MLflow run and logs the parameters as its params, executes the notebook with
papermill on the kit's own Jupyter kernel (``fraudkit``) passing ``mlflow_run_id`` (the
notebook resumes that run), has :mod:`fraudkit.reports.run_pages` render the executed notebook to
HTML, logs both as artifacts of the run and sets the run's final status, FAILED included:
no run is left RUNNING (unless the tracking server is unreachable by then, which the error
says), and a failed notebook still leaves its partial executed notebook and report.

Files land in ``<FRAUDKIT_HOME>/reports/runs/<run name>/`` (the folder name gets ``-2``,
``-3``... when runs started in the same second share a name). The notebooks' parameters
are :mod:`fraudkit.runner.parameters`; the pipeline is :mod:`fraudkit.runner.pipeline`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError, NotebookExecutionError
from fraudkit.core.tags import (
    ERROR_TAG,
    FAILED_CELL_TAG,
    MLFLOW_SOURCE_NAME_TAG,
    MLFLOW_SOURCE_TYPE_TAG,
    NOTEBOOK_TAG,
    PARENT_RUN_TAG,
    PIPELINE_TAG,
    REPORT_DIR_TAG,
)
from fraudkit.reports.run_pages import (
    RESULT_METRICS,
    describe_failure,
    new_run_folder,
    write_run_reports,
)
from fraudkit.runner.parameters import notebook_path, parameter_values, validate_parameters

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpec
    from mlflow import MlflowClient
    from traitlets.config import Config

    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "KERNEL_DISPLAY_NAME",
    "KERNEL_NAME",
    "NotebookRun",
    "ensure_kernel",
    "kernel_install_command",
    "run_notebook",
]

# The kit's own Jupyter kernel, installed with the package into <prefix>/share/jupyter/kernels
# (see pyproject.toml): a user-level `python3` kernelspec pointing at a Python without
# fraudkit cannot take over.
KERNEL_NAME = "fraudkit"
KERNEL_DISPLAY_NAME = "Python (fraudkit)"
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


def ensure_kernel() -> None:
    """Make sure the kit's kernel is registered and starts this Python.

    :func:`run_notebook` calls it before any run is created. A wheel installs the
    kernelspec (``share/jupyter/kernels/fraudkit``, argv ``python``, which jupyter_client
    replaces by this interpreter); an editable install, which carries no data files, gets
    it registered in this Python's prefix on first use, as ``make install`` does.

    Raises
    ------
    ConfigurationError
        The kernel is missing and cannot be registered, or the ``fraudkit`` kernelspec
        Jupyter finds first (a user-level one, outside a virtualenv) starts another Python,
        which would run the notebooks without this fraudkit.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        spec = _register_kernel()
    program = spec.argv[0] if spec.argv else ""
    if not _starts_this_python(program):
        raise ConfigurationError(
            f"the Jupyter kernel {KERNEL_NAME!r} found at {spec.resource_dir} starts "
            f"{program or 'nothing'}, not this Python ({sys.executable}); remove that "
            f"folder so the kernel installed with fraudkit is found, or run "
            f"`{kernel_install_command()}` if there is none"
        )


def _register_kernel() -> KernelSpec:
    """Register the kit's kernel in ``sys.prefix`` and return it, or fail naming the fix."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    kernels = Path(sys.prefix, "share", "jupyter", "kernels")
    staging = kernels / f".{KERNEL_NAME}-{os.getpid()}"
    try:
        kernels.mkdir(parents=True, exist_ok=True)
        write_kernel_spec(
            staging,
            overrides={"display_name": KERNEL_DISPLAY_NAME},
            python_arguments=["-Xfrozen_modules=off"],
        )
        # A rename is atomic: of runs starting side by side (a sweep's workers), one
        # registers the kernel and the others find it.
        os.rename(staging, kernels / KERNEL_NAME)
    except OSError:
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        return KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel as exc:
        raise ConfigurationError(
            f"the Jupyter kernel {KERNEL_NAME!r} the notebooks run on is not installed and "
            f"could not be registered in {kernels}; run `make install` in a checkout, or "
            f"`{kernel_install_command()}`"
        ) from exc


def _starts_this_python(program: str) -> bool:
    # jupyter_client runs a bare `python`, `python3` or `python3.X` as sys.executable;
    # otherwise the spec names an interpreter, this one when it sits in the same folder
    # (a virtualenv's python and python3 both link to the base interpreter, so the
    # links themselves, not their targets, are compared).
    major, minor = sys.version_info[:2]
    if program in ("python", f"python{major}", f"python{major}.{minor}"):
        return True
    if not os.path.isabs(program):
        return False
    here = os.path.realpath(os.path.dirname(sys.executable))
    return os.path.realpath(os.path.dirname(program)) == here


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
        cell, message, trace = describe_failure(error, executed)
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
    manager: MlflowManager | str | None = None,
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
    manager : MlflowManager or str, optional
        The tracking store (a manager or a tracking URI); default the shared manager.

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
    from fraudkit.tracking.manager import resolve_manager

    key = ExperimentType.parse(name).value
    source = notebook_path(key)
    checked = validate_parameters(key, parameters)
    ensure_kernel()
    store = resolve_manager(manager)
    run_id, run_name = _create_run(store, key, source, pipeline_id, parent_run_id, tags)
    started = time.perf_counter()
    executed = config.reports_dir() / "runs" / run_name / "notebook.ipynb"
    error: BaseException | None = None
    try:
        executed = new_run_folder(executed.parent) / "notebook.ipynb"
        _execute(
            store,
            key,
            source,
            checked,
            run_id,
            executed,
            pipeline_id,
            progress,
            _cell_timeout(started, timeout, job_timeout),
            timeout,
        )
    except BaseException as exc:
        error = exc
    _finish_run(store, key, run_id, source, executed, error)
    metrics = store.client.get_run(run_id).data.metrics
    return NotebookRun(
        notebook=key,
        run_id=run_id,
        run_name=run_name,
        status="FINISHED",
        output_dir=executed.parent,
        executed_notebook=executed,
        html_report=executed.parent / "report.html",
        html_full=executed.parent / "notebook.html",
        duration_s=time.perf_counter() - started,
        metrics={
            k: v for k, v in metrics.items() if k in RESULT_METRICS or k.startswith("summary")
        },
        pipeline_id=pipeline_id,
    )


def _create_run(
    manager: MlflowManager,
    key: str,
    source: Path,
    pipeline_id: str | None,
    parent_run_id: str | None,
    extra_tags: Mapping[str, str] | None,
) -> tuple[str, str]:
    """Create the notebook's run with the kit's tags; return its id and name."""
    from mlflow.exceptions import MlflowException

    from fraudkit.tracking.store import store_error

    run_name = manager.run_name(key, source.stem)
    run_tags = {
        **manager.run_tags(key, source.stem),
        NOTEBOOK_TAG: source.name,
        MLFLOW_SOURCE_NAME_TAG: source.name,
        MLFLOW_SOURCE_TYPE_TAG: "NOTEBOOK",
        **(extra_tags or {}),
    }
    if pipeline_id:
        run_tags[PIPELINE_TAG] = pipeline_id
    if parent_run_id:
        run_tags[PARENT_RUN_TAG] = parent_run_id
    try:
        run = manager.client.create_run(
            manager.experiment_id(key), run_name=run_name, tags=run_tags
        )
    except MlflowException as exc:
        raise store_error(exc, manager.tracking_uri, what=f"creating a {key} run") from exc
    return run.info.run_id, run_name


def _cell_timeout(
    started: float, timeout: float | None, job_timeout: float | None
) -> Callable[[Any], float] | None:
    """nbclient's per-cell timeout under a job budget, or None without one."""
    if not job_timeout:
        return None
    deadline = started + job_timeout

    def cell_timeout(_cell: Any) -> float:
        # nbclient asks this for each cell's timeout, in place of `timeout`: what is left of
        # the job's budget, at least 1 s (nbclient reads 0 as "no timeout").
        return max(1.0, min(deadline - time.perf_counter(), timeout or float("inf")))

    return cell_timeout


def _execute(
    manager: MlflowManager,
    key: str,
    source: Path,
    checked: Mapping[str, Any],
    run_id: str,
    executed: Path,
    pipeline_id: str | None,
    progress: bool,
    cell_timeout: Callable[[Any], float] | None,
    timeout: float | None,
) -> None:
    """Log the run's parameters and execute the notebook with papermill into ``executed``."""
    import papermill

    if checked:
        manager.client.log_dict(run_id, dict(checked), "notebook/parameters.json")
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
            str(executed),
            parameters={**checked, "mlflow_run_id": run_id},
            kernel_name=KERNEL_NAME,
            progress_bar=progress,
            execution_timeout=timeout,
            config=kernel_config,  # passed on to nbclient, which gives it to the kernel manager
            timeout_func=cell_timeout,
        )


def _finish_run(
    manager: MlflowManager,
    key: str,
    run_id: str,
    source: Path,
    executed: Path,
    error: BaseException | None,
) -> None:
    """Report and record the outcome, end the run, and raise what went wrong.

    Whatever fails while reporting (disk, server, Ctrl-C), the run is still terminated, and
    the first failure is raised after.
    """
    from mlflow.exceptions import MlflowException

    from fraudkit.tracking.store import store_error

    client = manager.client
    failure: BaseException | None = None
    try:
        write_run_reports(source, executed, run_id)
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
    if error is None:
        return
    if isinstance(error, KeyboardInterrupt):
        raise error
    cell, message, trace = describe_failure(error, executed)
    raise NotebookExecutionError(
        key,
        cell_index=cell,
        error=message,
        traceback=trace,
        run_id=run_id,
        output_path=str(executed),
    ) from error
