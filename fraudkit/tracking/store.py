"""Shared helpers for an MLflow store: opening it, paged search, the latest run, errors.

Every module of the MLflow layer (tracking, registry, dashboard, notebooks, cli) talks to
the store through :class:`mlflow.MlflowClient`; the few things they all need are written
once here. The module stays cheap to import: MLflow itself is imported only by the
functions that need it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError, FraudkitError, RegistryError, TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = [
    "MISSING_CODES",
    "PAGE_SIZE",
    "RUN_PAGE_SIZE",
    "find_run",
    "is_missing",
    "latest_finished_run",
    "open_client",
    "paged",
    "quiet_downloads",
    "quote",
    "retrying",
    "run_metrics",
    "store_error",
]

T = TypeVar("T")

# Within every search API's limit (registered models allow at most 1000 per page).
PAGE_SIZE = 1000
# search_runs alone allows up to 50,000 per page. Ten times PAGE_SIZE cuts the round trips
# (one HTTP request or SQL query each) a dashboard pays over tens of thousands of runs,
# while a page of runs with their params and metrics still fits comfortably in memory.
RUN_PAGE_SIZE = 10_000
# The error codes MLflow uses for "no such run/model/version" (the REST API answers
# INVALID_PARAMETER_VALUE for some of them).
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
# Errors of two writers colliding on one store, worth a retry.
_RETRYABLE = (
    "database is locked",
    "already exists",
    "unique constraint",
    "duplicate key",
    "duplicate column",
)


def open_client(uri: str) -> MlflowClient:
    """Open an :class:`mlflow.MlflowClient` on ``uri`` (tracking and registry), checked now.

    The schema of a database store is created or migrated here, under a file lock for a
    local SQLite store, so a failure surfaces at once with a message saying how to fix it.

    Parameters
    ----------
    uri : str
        A tracking URI (``sqlite:///...``, ``postgresql://...``, ``http://...``).

    Returns
    -------
    mlflow.MlflowClient

    Raises
    ------
    FraudkitError
        The store cannot be opened (see :func:`store_error`).
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    if config.is_remote(uri):
        config.apply_http_defaults()
    # Opening a database store can also fail outside MLflow's own errors: a missing driver
    # (ImportError), a refused connection (SQLAlchemyError), an unusable folder (OSError).
    try:
        with _schema_lock(uri):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)  # creates/migrates the schema now
    except (MlflowException, SQLAlchemyError, ImportError, OSError) as exc:
        raise store_error(exc, uri) from exc
    return client


def retrying(action: Callable[[], T], *, attempts: int = 8, first_delay: float = 0.05) -> T:
    """Run ``action``, retrying with backoff on SQLite lock and create-race errors.

    Two processes initialising one fresh SQLite store, or creating the same experiment,
    collide; MLflow's busy timeout does not cover schema creation, so we retry a few times.

    Parameters
    ----------
    action : callable
        Called with no arguments until it returns or fails with another error.
    attempts : int
        Calls at most.
    first_delay : float
        Seconds before the first retry, doubled each time (at most 2 s).

    Returns
    -------
    object
        What ``action`` returned.
    """
    delay = first_delay
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            text = str(exc).lower()
            if attempt == attempts - 1 or not any(marker in text for marker in _RETRYABLE):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _schema_lock(uri: str) -> Iterator[None]:
    """Serialise first opening of a local SQLite store across processes.

    MLflow creates and migrates the schema when a store is first opened; two processes
    doing that at once on a fresh file fail (alembic sees the other's half-done migration),
    and a busy timeout does not help. A file lock next to the database makes them queue.
    """
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        yield
        return
    import fcntl

    database = Path(uri[len("sqlite:///") :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def paged(search: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """Yield every item of a paged MLflow search, following page tokens.

    Parameters
    ----------
    search : callable
        A client search method, e.g. ``client.search_runs``; called with ``page_token=``
        and ``kwargs``.
    **kwargs
        Passed to ``search``; ``max_results`` defaults to :data:`PAGE_SIZE`.

    Yields
    ------
    object
        Each item of each page, in the order MLflow returns them.
    """
    kwargs.setdefault("max_results", PAGE_SIZE)
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:  # None on SQL stores, "" over REST
            return


def quote(value: str) -> str:
    """Quote ``value`` for an MLflow filter string.

    Parameters
    ----------
    value : str
        A model name, tag value or other string to compare against.

    Returns
    -------
    str
        ``value`` in single quotes, or in double quotes when it holds a single quote.

    Raises
    ------
    RegistryError
        ``value`` holds both quote characters, which MLflow's filter parser cannot express.
    """
    # MLflow's filter parser strips the surrounding quotes but knows no escapes.
    text = str(value)
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise RegistryError(f"name {text!r} holds both quote characters; MLflow cannot search it")


def is_missing(exc: Exception) -> bool:
    """Return True when an MLflow error says the thing asked for does not exist."""
    return getattr(exc, "error_code", None) in MISSING_CODES


def find_run(client: MlflowClient, run_id: str | None) -> Run | None:
    """Return the run ``run_id``, or None when it is not given or does not exist.

    Raises
    ------
    mlflow.exceptions.MlflowException
        Any store error other than a missing run.
    """
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        return None


def run_metrics(client: MlflowClient, run_id: str | None) -> dict[str, float]:
    """Return the latest value of each metric of run ``run_id`` (empty when there is no run).

    Parameters
    ----------
    client : MlflowClient
    run_id : str or None

    Returns
    -------
    dict
        ``{metric key: latest value}``; empty for a missing or unknown run.
    """
    run = find_run(client, run_id)
    return dict(run.data.metrics) if run else {}


def store_error(exc: Exception, uri: str, *, what: str = "the tracking store") -> FraudkitError:
    """Translate an error of the store into a FraudkitError with an actionable message.

    Parameters
    ----------
    exc : Exception
        What MLflow (or the database driver, or the file system) raised.
    uri : str
        The tracking URI in use; shown with any password redacted.
    what : str
        What was being done or looked for, for the message (``"run 'abc'"``).

    Returns
    -------
    FraudkitError
        ``TrackingUnavailableError`` for an unreachable store, ``ConfigurationError`` for a
        missing driver or an unusable folder, else ``TrackingError``. Raise it ``from exc``.
    """
    from fraudkit.core.exceptions import TrackingUnavailableError

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = config.redact_secrets(text, uri)  # MLflow quotes the URLs it requested
    code = getattr(exc, "error_code", "")
    shown = config.redact_uri(uri)
    if "RESOURCE_DOES_NOT_EXIST" in str(code) or "not found" in text.lower():
        return TrackingError(f"{what} not found in {shown}: {text}")
    if any(s in text.lower() for s in ("connection", "max retries", "timed out", "unable to open")):
        return TrackingUnavailableError(
            f"cannot reach the MLflow tracking store {shown} ({text}); start the server or "
            "fix MLFLOW_TRACKING_URI"
        )
    if isinstance(exc, ImportError):
        return ConfigurationError(
            f"the tracking store {shown} needs a database driver that is not installed "
            f"({text}); install it (e.g. pip install psycopg2-binary for a "
            "postgresql+psycopg2:// URI) or fix MLFLOW_TRACKING_URI"
        )
    if isinstance(exc, OSError):
        return ConfigurationError(
            f"cannot open the tracking store {shown} ({text}); point MLFLOW_TRACKING_URI or "
            "FRAUDKIT_HOME at a writable folder"
        )
    return TrackingError(f"{what} failed on {shown}: {text}")


def latest_finished_run(
    experiment_type: str | ExperimentType,
    *,
    client: MlflowClient | None = None,
    filter_string: str | None = None,
) -> Run | None:
    """Return the newest FINISHED run of a fraudkit experiment, or None.

    Reading creates nothing: an experiment that does not exist yet has no runs.

    Parameters
    ----------
    experiment_type : str or ExperimentType
        Which of the five experiments (``"monitoring"``, ``ExperimentType.TRAINING``...).
    client : MlflowClient, optional
        The store to read; default the kit's tracking store
        (:func:`fraudkit.core.config.tracking_uri`).
    filter_string : str, optional
        An extra MLflow search filter, joined with ``AND`` (e.g.
        ``"tags.`fraudkit.summary.retraining_recommended` = 'True'"``).

    Returns
    -------
    mlflow.entities.Run or None
        The FINISHED run with the latest start time; None when there is none.

    Raises
    ------
    ConfigurationError
        Unknown experiment type.
    """
    kind = ExperimentType.parse(experiment_type)
    if client is None:
        client = open_client(config.tracking_uri())
    experiment = client.get_experiment_by_name(kind.experiment_name)
    if experiment is None:
        return None
    wanted = "attributes.status = 'FINISHED'"
    if filter_string:
        wanted = f"{wanted} AND {filter_string}"
    found = client.search_runs(
        [experiment.experiment_id],
        wanted,
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


# MLflow shows a progress bar for every artifact download unless this says "false".
_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """Turn MLflow's artifact-download progress bars off, within the block.

    They would cut through a command's own progress bar (a sweep's, a scoring job's) and
    into its ``--json`` output.
    """
    saved = os.environ.get(_PROGRESS_BAR_ENV)
    os.environ[_PROGRESS_BAR_ENV] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_PROGRESS_BAR_ENV, None)
        else:
            os.environ[_PROGRESS_BAR_ENV] = saved
