"""Reading runs for the dashboard: the store, the experiments, and runs in long form.

Two paths give the same answers. The public MLflow API (``search_runs``) is the reference
and works on every store, including a remote ``mlflow server``; the SQL fast path
(:mod:`fraudkit.dashboard.fastpath`) reads the same rows far faster from an SQL store
whose schema it knows. :func:`read_tables` picks the path; the rest of the dashboard
works on the :class:`RunTables` it returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.dashboard import fastpath
from fraudkit.tracking.store import RUN_PAGE_SIZE, paged, store_error

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "KEY_METRIC",
    "RUN_COLUMNS",
    "RUN_STATUSES",
    "Progress",
    "RunTables",
    "api_rows",
    "as_time",
    "experiment_ids",
    "iso_time",
    "json_value",
    "long_frame",
    "newest_first",
    "read_rows",
    "read_tables",
    "store_uri",
    "to_records",
    "translated",
]

KEY_METRIC = "average_precision"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
RUN_COLUMNS = [
    "run_id",
    "run_name",
    "experiment_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Progress = Callable[[int], None]
"""Called with the number of runs just processed (drives a progress bar)."""


def iso_time(value: int | float | datetime | None) -> str | None:
    """Return epoch milliseconds (or a datetime, naive = UTC) as ``2024-05-01T12:00:00.000Z``.

    None, NaN and NaT give None.
    """
    if value is None or value != value:  # NaN and NaT are not equal to themselves
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    else:  # integer arithmetic: a float division can turn .123 s into .122999
        moment = _EPOCH + timedelta(milliseconds=int(value))
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def json_value(value: Any) -> Any:
    """Return ``value`` as JSON holds it: NaN, infinities and missing values as None,
    timestamps as :func:`iso_time` strings, numpy scalars as Python numbers."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, datetime):
        return iso_time(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of ``frame`` as JSON-ready dicts (see :func:`json_value`).

    Floats keep full precision, so the fast path and the public API give equal records.
    """
    columns = [str(c) for c in frame.columns]
    return [
        dict(zip(columns, map(json_value, row), strict=True))
        for row in frame.itertuples(index=False, name=None)
    ]


def store_uri(manager: MlflowManager | None) -> str:
    """Return the tracking URI of ``manager``, or the one fraudkit uses (without MLflow)."""
    return manager.tracking_uri if manager is not None else config.tracking_uri()


@contextmanager
def translated(manager: MlflowManager) -> Iterator[None]:
    """Turn MLflow errors into fraudkit's (unreachable store -> TrackingUnavailableError)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise store_error(exc, manager.tracking_uri) from exc


def experiment_ids(client: MlflowClient, types: Sequence[ExperimentType]) -> dict[str, str]:
    """Return ``{experiment_id: type}`` of the experiments that exist (reading creates none)."""
    found = {}
    for kind in types:
        experiment = client.get_experiment_by_name(kind.experiment_name)
        if experiment is not None:
            found[experiment.experiment_id] = kind.value
    return found


@dataclass(frozen=True, eq=False)
class RunTables:
    """Active runs of some experiments in long form, as both paths read them.

    Attributes
    ----------
    runs : DataFrame
        :data:`RUN_COLUMNS`, start and end times in epoch milliseconds.
    metrics : DataFrame
        run_id, key, value (the latest value of each metric).
    params, tags : DataFrame
        run_id, key, value.
    """

    runs: pd.DataFrame
    metrics: pd.DataFrame
    params: pd.DataFrame
    tags: pd.DataFrame

    @classmethod
    def from_rows(cls, rows: fastpath.RunRows) -> RunTables:
        """Build the tables from rows of tuples."""
        import pandas as pd

        return cls(
            pd.DataFrame(rows.runs, columns=RUN_COLUMNS),
            long_frame(rows.metrics),
            long_frame(rows.params),
            long_frame(rows.tags),
        )


def long_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Return ``(run_id, key, value)`` rows as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(rows, columns=["run_id", "key", "value"])


def api_rows(
    client: MlflowClient, ids: list[str], filter_string: str | None = None
) -> fastpath.RunRows:
    """Read the active runs of experiments ``ids`` the reference way: MLflow's search_runs.

    Returns
    -------
    fastpath.RunRows
        As :func:`fastpath.read_rows` gives them for the same runs.
    """
    from mlflow.entities import ViewType

    rows = fastpath.RunRows([], [], [], [])
    if not ids:
        return rows
    found = paged(
        client.search_runs,
        experiment_ids=ids,
        filter_string=filter_string or "",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=RUN_PAGE_SIZE,
    )
    for run in found:
        info, data = run.info, run.data
        rows.runs.append(
            (
                info.run_id,
                info.run_name,
                str(info.experiment_id),
                info.status,
                info.start_time,
                info.end_time,
                info.artifact_uri,
            )
        )
        rows.metrics.extend((info.run_id, k, v) for k, v in data.metrics.items())
        rows.params.extend((info.run_id, k, v) for k, v in data.params.items())
        rows.tags.extend((info.run_id, k, v) for k, v in data.tags.items())
    return rows


def read_rows(
    manager: MlflowManager,
    ids: list[str],
    *,
    fast: bool,
    filter_string: str | None = None,
    only_metric: str | None = None,
) -> fastpath.RunRows:
    """Read the active runs of experiments ``ids``, by the fast path when it applies.

    Parameters
    ----------
    manager : MlflowManager
    ids : list of str
        Experiment ids.
    fast : bool
        Allow the SQL fast path; it applies only without an MLflow ``filter_string``.
    filter_string : str, optional
        An MLflow search filter (the public API evaluates it).
    only_metric : str, optional
        Keep only this metric, and no params or tags.

    Returns
    -------
    fastpath.RunRows
    """
    if not filter_string:
        with fastpath.connect(manager.tracking_uri, fast) as store:
            if store is not None:
                try:
                    with store.session() as query:
                        return fastpath.read_rows(query, ids, only_metric)
                except fastpath.FastPathError:
                    pass  # e.g. a locked SQLite file: the public API decides what to report
    rows = api_rows(manager.client, ids, filter_string)
    if only_metric is not None:
        metrics = [row for row in rows.metrics if row[1] == only_metric]
        rows = fastpath.RunRows(rows.runs, metrics, [], [])
    return rows


def read_tables(
    manager: MlflowManager,
    ids: list[str],
    *,
    fast: bool,
    filter_string: str | None = None,
    only_metric: str | None = None,
) -> RunTables:
    """Read the active runs of experiments ``ids`` as :class:`RunTables`.

    The parameters are those of :func:`read_rows`.
    """
    rows = read_rows(manager, ids, fast=fast, filter_string=filter_string, only_metric=only_metric)
    return RunTables.from_rows(rows)


def newest_first(runs: pd.DataFrame) -> pd.DataFrame:
    """Sort runs as MLflow does: start time descending, run id breaking ties."""
    return runs.sort_values(
        ["start_time", "run_id"], ascending=[False, True], na_position="last", ignore_index=True
    )


def as_time(values: pd.Series) -> pd.Series:
    """Return epoch milliseconds as UTC timestamps."""
    import pandas as pd

    return pd.to_datetime(values, unit="ms", utc=True)
