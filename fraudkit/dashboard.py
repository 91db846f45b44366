"""Dashboard queries over the tracking store: summary, registry, compare, export, cleanup, history.

Every function returns plain data (DataFrames or frozen dataclasses with ``to_dict()``);
``fraudkit dashboard ...`` presents them. Functions take ``manager=`` (default: the
module-level :data:`fraudkit.mlflow_manager`, i.e. the store ``MLFLOW_TRACKING_URI`` names).

Two paths to the same answers
-----------------------------
The public MLflow API is the reference: it works on every store, including a remote
``mlflow server``. But ``search_runs`` materialises every param, metric and tag of every run
as Python objects (minutes at tens of thousands of runs) and there is no batch delete. For
an SQL store (SQLite, PostgreSQL) whose schema is exactly the one the installed MLflow
writes, the summary, export and cleanup read the few columns they need with plain SELECTs
and soft-delete with one UPDATE transaction. Anything else, or ``fast=False``, goes through
the public API. Tests check that both paths give identical results.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pandas as pd
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from fraudkit import config, registry
from fraudkit.config import DEFAULT_MODEL_NAME, ExperimentType
from fraudkit.exceptions import (
    ConfigurationError,
    RegistryError,
    TrackingError,
    TrackingUnavailableError,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from sqlalchemy.engine import Connection, Engine

    from fraudkit.tracking import MlflowManager

KEY_METRIC = "average_precision"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
EXPORT_FORMATS = ("csv", "parquet", "json")
_SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}
_PAGE_SIZE = 10_000  # runs per search_runs page
_SQL_CHUNK = 500  # run ids per IN (...) clause, well under every dialect's parameter limit
_RUN_COLUMNS = [
    "run_id",
    "run_name",
    "experiment_id",
    "status",
    "start_time",
    "end_time",
    "artifact_uri",
]

Progress = Callable[[int], None]
"""Called with the number of runs just processed (drives a progress bar)."""


# -- results ---------------------------------------------------------------------------


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of ``frame`` as JSON-ready dicts (ISO timestamps, NaN as None)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


@dataclass(frozen=True, eq=False)
class DashboardSummary:
    """Runs per experiment type and registered models.

    Attributes
    ----------
    experiments : DataFrame
        One row per experiment type: experiment_type, experiment_name, experiment_id,
        total, one count column per run status (lower case), latest_run_name,
        latest_run_id, latest_start, latest_status, best_run_name, best_run_id and
        ``best_average_precision`` (the highest value of the key metric).
    models : DataFrame
        One row per registered model: model, versions, latest_version, aliases
        (``"production=3,staging=5"``).
    """

    experiments: pd.DataFrame
    models: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """Return both tables as JSON-ready lists of records."""
        return {"experiments": to_records(self.experiments), "models": to_records(self.models)}


@dataclass(frozen=True)
class ExportResult:
    """Where and what :func:`export_runs` wrote."""

    path: Path
    format: str
    rows: int
    columns: int

    def to_dict(self) -> dict[str, Any]:
        """Return the result with the path as a string."""
        return {
            "path": str(self.path),
            "format": self.format,
            "rows": self.rows,
            "columns": self.columns,
        }


@dataclass(frozen=True, eq=False)
class CleanupPlan:
    """What :func:`execute_cleanup` would do to one experiment.

    Attributes
    ----------
    experiment_type : str
    experiment_id : str or None
        None when the experiment does not exist yet (nothing to do).
    to_delete, protected, kept : tuple of str
        Run ids, newest first. ``protected`` runs matched a deletion rule but are RUNNING
        or back a registered model version; they are never deleted.
    runs : DataFrame
        Every active run: run_id, run_name, status, start_time, artifact_uri, action
        (``delete``, ``protected`` or ``keep``) and reason.
    permanent : bool
        Whether deletion also purges the runs (rows and artifacts), as ``mlflow gc`` does.
    """

    experiment_type: str
    experiment_id: str | None
    keep_last_n: int | None
    older_than: str | None
    to_delete: tuple[str, ...]
    protected: tuple[str, ...]
    kept: tuple[str, ...]
    runs: pd.DataFrame = field(repr=False)
    permanent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the rules, the counts and the run ids of each group."""
        reasons = self.runs.set_index("run_id")["reason"].to_dict()
        return {
            "experiment_type": self.experiment_type,
            "experiment_id": self.experiment_id,
            "keep_last_n": self.keep_last_n,
            "older_than": self.older_than,
            "permanent": self.permanent,
            "counts": {
                "to_delete": len(self.to_delete),
                "protected": len(self.protected),
                "kept": len(self.kept),
            },
            "to_delete": list(self.to_delete),
            "protected": [{"run_id": r, "reason": reasons[r]} for r in self.protected],
            "kept": list(self.kept),
        }


@dataclass(frozen=True, eq=False)
class CleanupResult:
    """What :func:`execute_cleanup` did.

    Attributes
    ----------
    plan : CleanupPlan
    deleted : tuple of str
        Runs soft-deleted (and purged when ``plan.permanent``).
    method : str
        ``"sql"`` (one transaction on the store) or ``"api"`` (MLflow's delete_run).
    artifacts_not_deleted : tuple of str
        Purged runs whose artifacts could not be removed (``mlflow gc`` carries on too).
    """

    plan: CleanupPlan
    deleted: tuple[str, ...]
    method: str
    artifacts_not_deleted: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the plan's dict plus what was deleted."""
        return {
            **self.plan.to_dict(),
            "deleted": list(self.deleted),
            "deleted_count": len(self.deleted),
            "method": self.method,
            "artifacts_not_deleted": list(self.artifacts_not_deleted),
        }


# -- store access ----------------------------------------------------------------------


def _manager(manager: MlflowManager | None) -> MlflowManager:
    if manager is not None:
        return manager
    from fraudkit.tracking import mlflow_manager

    return mlflow_manager


@contextmanager
def _translated(manager: MlflowManager) -> Iterator[None]:
    """Turn MLflow errors into fraudkit's (unreachable store -> TrackingUnavailableError)."""
    from fraudkit.tracking import _store_error

    try:
        yield
    except MlflowException as exc:
        raise _store_error(exc, manager.tracking_uri) from exc


def _experiment_ids(client: MlflowClient, types: Sequence[ExperimentType]) -> dict[str, str]:
    """``{experiment_id: type}`` of the experiments that exist (reading creates nothing)."""
    found = {}
    for kind in types:
        experiment = client.get_experiment_by_name(kind.experiment_name)
        if experiment is not None:
            found[experiment.experiment_id] = kind.value
    return found


def _paged(search: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


@dataclass(frozen=True, eq=False)
class _Tables:
    """Active runs of some experiments in long form, as both paths read them."""

    runs: pd.DataFrame  # _RUN_COLUMNS
    metrics: pd.DataFrame  # run_id, key, value (latest value of each metric)
    params: pd.DataFrame  # run_id, key, value
    tags: pd.DataFrame  # run_id, key, value


def _long(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "key", "value"])


def _api_tables(
    client: MlflowClient, experiment_ids: list[str], filter_string: str | None = None
) -> _Tables:
    """The reference path: MLflow's search_runs."""
    runs, metrics, params, tags = [], [], [], []
    if experiment_ids:
        found = _paged(
            client.search_runs,
            experiment_ids=experiment_ids,
            filter_string=filter_string or "",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=_PAGE_SIZE,
        )
        for run in found:
            info, data = run.info, run.data
            runs.append(
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
            metrics += [(info.run_id, k, v) for k, v in data.metrics.items()]
            params += [(info.run_id, k, v) for k, v in data.params.items()]
            tags += [(info.run_id, k, v) for k, v in data.tags.items()]
    return _Tables(pd.DataFrame(runs, columns=_RUN_COLUMNS), *map(_long, (metrics, params, tags)))


# -- SQL fast path ---------------------------------------------------------------------
# Read-only SELECTs (and one UPDATE transaction for cleanup) on MLflow's own tables, used
# only when the store's alembic revision is the head revision of the installed MLflow, so
# every column means what this code assumes. Everything here mirrors what MLflow's
# SqlAlchemyStore returns for the same runs; tests compare both paths.

_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*=\s*(.+)$", re.MULTILINE)


@functools.cache
def _mlflow_schema_head() -> str | None:
    """The newest schema revision among the installed MLflow's migrations, or None.

    Read from the migration scripts' ``revision``/``down_revision`` lines: the head is the
    revision no other revises. (Alembic's ScriptDirectory gives the same answer but
    imports every migration module, which costs about a second.)
    """
    import mlflow.store

    revisions: set[str] = set()
    revised: set[str] = set()
    versions = Path(mlflow.store.__file__).parent / "db_migrations" / "versions"
    for script in versions.glob("*.py"):
        for kind, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            names = re.findall(r"['\"](\w+)['\"]", value)
            (revisions if kind == "revision" else revised).update(names)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _sql_engine(uri: str) -> Engine | None:
    """An engine on the store at ``uri`` when the fast path applies to it, else None."""
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    scheme = urlparse(uri).scheme.lower()
    if not (scheme == "sqlite" or scheme.startswith("postgresql")):
        return None
    if MLFLOW_ENABLE_WORKSPACES.get():
        return None  # workspace scoping is enforced by MLflow's store, not by these queries
    if scheme == "sqlite" and not Path(uri[len("sqlite:///") :]).is_file():
        return None  # connecting would create an empty file; let MLflow initialise the store
    head = _mlflow_schema_head()
    try:
        engine = create_engine(uri, poolclass=NullPool)
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (SQLAlchemyError, ImportError):
        return None
    if head is None or revision != head:
        engine.dispose()
        return None
    return engine


@contextmanager
def _sql(manager: MlflowManager, fast: bool) -> Iterator[Engine | None]:
    engine = _sql_engine(manager.tracking_uri) if fast else None
    try:
        yield engine
    finally:
        if engine is not None:
            engine.dispose()


# Active runs of the experiments bound to :ids, as search_runs(ViewType.ACTIVE_ONLY) sees them.
_ACTIVE_RUNS = "r.lifecycle_stage = 'active' AND r.experiment_id IN :ids"


def _select(conn: Connection, sql: str, ids: list[str], **params: Any) -> list[tuple[Any, ...]]:
    from sqlalchemy import bindparam, text

    statement = text(sql).bindparams(bindparam("ids", expanding=True))
    rows = conn.execute(statement, {"ids": [int(i) for i in ids], **params}).all()
    return list(map(tuple, rows))  # pandas builds frames from tuples far faster than from Rows


def _sql_tables(engine: Engine, experiment_ids: list[str], only_metric: str | None) -> _Tables:
    """Read the same tables as :func:`_api_tables` (params and tags skipped with only_metric)."""
    runs_sql = (
        "SELECT r.run_uuid, r.name, t.value, r.experiment_id, r.status, r.start_time,"
        " r.end_time, r.artifact_uri FROM runs r LEFT JOIN tags t"
        f" ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.runName' WHERE {_ACTIVE_RUNS}"
    )
    metrics_sql = (
        "SELECT m.run_uuid, m.key, m.value, m.is_nan FROM latest_metrics m"
        f" JOIN runs r ON r.run_uuid = m.run_uuid WHERE {_ACTIVE_RUNS}"
    )
    pairs_sql = (
        "SELECT x.run_uuid, x.key, x.value FROM {table} x"
        f" JOIN runs r ON r.run_uuid = x.run_uuid WHERE {_ACTIVE_RUNS}"
    )
    with engine.connect() as conn:
        runs = [
            # MLflow falls back to the mlflow.runName tag when the name column is empty.
            (run_id, name or tag_name or name, str(exp), status, start, end, uri)
            for run_id, name, tag_name, exp, status, start, end, uri in _select(
                conn, runs_sql, experiment_ids
            )
        ]
        if only_metric is None:
            found = _select(conn, metrics_sql, experiment_ids)
            params = _select(conn, pairs_sql.format(table="params"), experiment_ids)
            tags = _select(conn, pairs_sql.format(table="tags"), experiment_ids)
        else:
            metrics_sql += " AND m.key = :key"
            found = _select(conn, metrics_sql, experiment_ids, key=only_metric)
            params, tags = [], []
    # NaN is stored as value 0 with is_nan set; MLflow's entity turns it back into NaN.
    metrics = [(run_id, key, float("nan") if nan else value) for run_id, key, value, nan in found]
    return _Tables(pd.DataFrame(runs, columns=_RUN_COLUMNS), *map(_long, (metrics, params, tags)))


def _sql_soft_delete(engine: Engine, run_ids: Sequence[str], progress: Progress) -> list[str]:
    """Soft-delete ``run_ids`` in one transaction, as MlflowClient.delete_run does one by one.

    Runs that turned RUNNING or were deleted since the plan are left alone. Returns the
    ids deleted.

    Raises
    ------
    TrackingError
        The transaction failed (it is rolled back: nothing was deleted).
    """
    from sqlalchemy import bindparam, text
    from sqlalchemy.exc import SQLAlchemyError

    eligible = text(
        "SELECT run_uuid FROM runs WHERE run_uuid IN :ids"
        " AND lifecycle_stage = 'active' AND status <> 'RUNNING'"
    ).bindparams(bindparam("ids", expanding=True))
    update = text(
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = :now"
        " WHERE run_uuid IN :ids AND lifecycle_stage = 'active' AND status <> 'RUNNING'"
    ).bindparams(bindparam("ids", expanding=True))
    now = int(time.time() * 1000)
    deleted: list[str] = []
    try:
        with engine.begin() as conn:
            for start in range(0, len(run_ids), _SQL_CHUNK):
                chunk = list(run_ids[start : start + _SQL_CHUNK])
                deleted += [row[0] for row in conn.execute(eligible, {"ids": chunk})]
                conn.execute(update, {"ids": chunk, "now": now})
                progress(len(chunk))
    except SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0]
        raise TrackingError(
            f"deleting runs failed and was rolled back, nothing was deleted ({reason}); "
            "retry when the store is not busy"
        ) from exc
    order = {run_id: i for i, run_id in enumerate(run_ids)}
    return sorted(deleted, key=order.__getitem__)


def _sql_can_delete(engine: Engine) -> bool:
    """Whether a plain UPDATE deletes runs exactly as MLflow's delete_run would.

    MLflow's delete_run also removes GenAI assessments whose metadata names the run as
    their source; fraudkit never writes any, but when a store has some, use the API.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM assessments WHERE assessment_metadata LIKE :marker LIMIT 1"),
                {"marker": "%mlflow.assessment.sourceRunId%"},
            ).first()
    except SQLAlchemyError:
        return False
    return found is None


def _tables(
    manager: MlflowManager,
    experiment_ids: list[str],
    *,
    fast: bool,
    filter_string: str | None = None,
    only_metric: str | None = None,
) -> _Tables:
    """Read runs by the fast path when it applies (no MLflow filter string), else the API."""
    from sqlalchemy.exc import SQLAlchemyError

    if not filter_string:
        with _sql(manager, fast) as engine:
            if engine is not None:
                try:
                    return _sql_tables(engine, experiment_ids, only_metric)
                except SQLAlchemyError:
                    pass  # e.g. a locked SQLite file: the public API decides what to report
    tables = _api_tables(manager.client, experiment_ids, filter_string)
    if only_metric is not None:
        metrics = tables.metrics[tables.metrics["key"] == only_metric].reset_index(drop=True)
        tables = _Tables(tables.runs, metrics, _long([]), _long([]))
    return tables


# -- frames ----------------------------------------------------------------------------


def _newest_first(runs: pd.DataFrame) -> pd.DataFrame:
    # MLflow's own order: start time descending, run id breaking ties.
    return runs.sort_values(
        ["start_time", "run_id"], ascending=[False, True], na_position="last", ignore_index=True
    )


def _as_time(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, unit="ms", utc=True)


def _wide(tables: _Tables, types_by_id: dict[str, str]) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*``, ``tags.*`` (sorted)."""
    runs = _newest_first(tables.runs)
    frame = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs["run_name"],
            "experiment_type": runs["experiment_id"].map(types_by_id),
            "experiment_id": runs["experiment_id"],
            "status": runs["status"],
            "start_time": _as_time(runs["start_time"]),
            "end_time": _as_time(runs["end_time"]),
            "artifact_uri": runs["artifact_uri"],
        }
    )
    groups = {"metrics.": tables.metrics, "params.": tables.params, "tags.": tables.tags}
    for prefix, long in groups.items():
        if long.empty:
            continue
        wide = long.pivot(index="run_id", columns="key", values="value")
        wide = wide[sorted(wide.columns)].add_prefix(prefix)
        wide.columns.name = None
        frame = frame.join(wide, on="run_id")
    return frame


def _experiment_rows(tables: _Tables, types_by_id: dict[str, str]) -> pd.DataFrame:
    """The per-type summary table from the runs and their key metric."""
    runs = _newest_first(tables.runs)
    key = tables.metrics[tables.metrics["key"] == KEY_METRIC].set_index("run_id")["value"]
    runs["metric"] = runs["run_id"].map(key).astype(float)
    id_by_type = {kind: exp_id for exp_id, kind in types_by_id.items()}
    rows = []
    for kind in ExperimentType:
        mine = runs[runs["experiment_id"] == id_by_type.get(kind.value)]
        counts = mine["status"].value_counts()
        row: dict[str, Any] = {
            "experiment_type": kind.value,
            "experiment_name": kind.experiment_name,
            "experiment_id": id_by_type.get(kind.value),
            "total": len(mine),
            **{status.lower(): int(counts.get(status, 0)) for status in RUN_STATUSES},
        }
        latest = mine.head(1)
        scored = mine.dropna(subset=["metric"])
        # Ties on the metric go to the newest run (mine is newest first; the sort is stable).
        best = scored.sort_values("metric", ascending=False, kind="stable").head(1)
        row.update(
            latest_run_name=_first(latest, "run_name"),
            latest_run_id=_first(latest, "run_id"),
            latest_start=_as_time(latest["start_time"]).iloc[0] if len(latest) else pd.NaT,
            latest_status=_first(latest, "status"),
            best_run_name=_first(best, "run_name"),
            best_run_id=_first(best, "run_id"),
            **{f"best_{KEY_METRIC}": float(best["metric"].iloc[0]) if len(best) else None},
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _first(frame: pd.DataFrame, column: str) -> Any:
    return frame[column].iloc[0] if len(frame) else None


def _model_rows(client: MlflowClient) -> pd.DataFrame:
    versions: dict[str, list[int]] = {}
    aliases: dict[str, list[str]] = {}
    for model in _paged(client.search_registered_models):
        versions[model.name] = []
        aliases[model.name] = [f"{a}={v}" for a, v in sorted(model.aliases.items())]
    for mv in _paged(client.search_model_versions):
        versions.setdefault(mv.name, []).append(int(mv.version))
    rows = [
        {
            "model": name,
            "versions": len(numbers),
            "latest_version": max(numbers) if numbers else None,
            "aliases": ",".join(aliases.get(name, [])),
        }
        for name, numbers in sorted(versions.items())
    ]
    return pd.DataFrame(rows, columns=["model", "versions", "latest_version", "aliases"])


# -- public API ------------------------------------------------------------------------


def summarize(*, manager: MlflowManager | None = None, fast: bool = True) -> DashboardSummary:
    """Summarise every experiment type and the registered models.

    Parameters
    ----------
    manager : MlflowManager, optional
        The store to read (default: :data:`fraudkit.mlflow_manager`).
    fast : bool
        Allow the SQL fast path (see the module doc); False forces the public API.

    Returns
    -------
    DashboardSummary

    Raises
    ------
    TrackingUnavailableError
        The store cannot be reached.
    """
    manager = _manager(manager)
    with _translated(manager):
        types_by_id = _experiment_ids(manager.client, list(ExperimentType))
        tables = _tables(manager, list(types_by_id), fast=fast, only_metric=KEY_METRIC)
        return DashboardSummary(_experiment_rows(tables, types_by_id), _model_rows(manager.client))


def registry_overview(*, manager: MlflowManager | None = None) -> pd.DataFrame:
    """Every registered model version with aliases, creation time, source run and key metrics.

    See :func:`fraudkit.registry.get_registry_overview` for the columns.
    """
    manager = _manager(manager)
    with _translated(manager):
        return registry.get_registry_overview(manager.client)


def compare_versions(
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
) -> pd.DataFrame:
    """Production vs Staging (or explicit ``versions``) side by side with a difference row.

    See :func:`fraudkit.registry.compare_model_versions`.

    Raises
    ------
    RegistryError
        Unknown model or version, or an alias that is not set.
    """
    manager = _manager(manager)
    with _translated(manager):
        return registry.compare_model_versions(
            manager.client, model_name, stages=stages, versions=versions
        )


def runs_frame(
    experiment_type: str | ExperimentType | None = None,
    *,
    filter_string: str | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> pd.DataFrame:
    """Return the active runs of one experiment type (or all five), one row per run.

    Parameters
    ----------
    experiment_type : str, optional
        ``training``, ``ab_testing``, ... None: all five experiments.
    filter_string : str, optional
        An MLflow search filter (``"metrics.average_precision > 0.8"``); with a filter the
        public API is used.
    manager : MlflowManager, optional
    fast : bool
        Allow the SQL fast path.

    Returns
    -------
    DataFrame
        Columns run_id, run_name, experiment_type, experiment_id, status, start_time,
        end_time (UTC), artifact_uri, then ``metrics.<key>`` (float), ``params.<key>`` and
        ``tags.<key>`` (strings), each group sorted by key. Rows newest first.

    Raises
    ------
    ConfigurationError
        Unknown experiment type.
    TrackingError
        Invalid filter string.
    """
    manager = _manager(manager)
    types = (
        list(ExperimentType) if experiment_type is None else [ExperimentType.parse(experiment_type)]
    )
    with _translated(manager):
        types_by_id = _experiment_ids(manager.client, types)
        tables = _tables(manager, list(types_by_id), fast=fast, filter_string=filter_string)
    return _wide(tables, types_by_id)


_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would execute as a formula.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    neutralised, unless the whole cell is a plain number such as ``-0.5`` (MLflow stores
    params as text; a spreadsheet reads those as numbers, not formulas). Numeric columns
    are never touched.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.StringDtype):
            text = values
        elif values.dtype == object:
            text = values.where(values.map(lambda v: isinstance(v, str)))
        else:
            continue
        risky = text.str.startswith(_FORMULA_START, na=False) & ~text.str.fullmatch(
            _NUMBER, na=False
        )
        if risky.any():
            out[column] = values.mask(risky, "'" + text)
    return out


def _export_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt.lower() not in EXPORT_FORMATS:
            raise ConfigurationError(
                f"unknown export format {fmt!r}; use one of: {', '.join(EXPORT_FORMATS)}"
            )
        return fmt.lower()
    found = _SUFFIX_FORMATS.get(path.suffix.lower())
    if found is None:
        raise ConfigurationError(
            f"cannot tell the export format of {str(path)!r}; name the file .csv, .parquet or "
            ".json, or pass --format"
        )
    return found


def export_runs(
    output_file: str | os.PathLike,
    experiment_type: str | ExperimentType | None = None,
    *,
    fmt: str | None = None,
    filter_string: str | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> ExportResult:
    """Write :func:`runs_frame` to CSV, Parquet or JSON.

    Parameters
    ----------
    output_file : path
        Destination; its suffix (.csv, .parquet/.pq, .json) picks the format unless
        ``fmt`` is given. Missing parent directories are created.
    experiment_type, filter_string, manager, fast
        As for :func:`runs_frame`.
    fmt : {"csv", "parquet", "json"}, optional

    Returns
    -------
    ExportResult

    Notes
    -----
    CSV output goes through :func:`neutralise_formulas`. JSON is a list of records with
    ISO timestamps.
    """
    path = Path(output_file).expanduser().resolve()
    chosen = _export_format(path, fmt)
    frame = runs_frame(experiment_type, filter_string=filter_string, manager=manager, fast=fast)
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "csv":
        neutralise_formulas(frame).to_csv(path, index=False)
    elif chosen == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", date_format="iso", indent=1)
    return ExportResult(path, chosen, len(frame), frame.shape[1])


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([hdw])")
_AGE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """Parse an age such as ``30d``, ``12h`` or ``2w`` (hours, days, weeks).

    Raises
    ------
    ConfigurationError
        If ``text`` is not a number followed by h, d or w.
    """
    match = _AGE.fullmatch(str(text).strip().lower())
    if match is None:
        raise ConfigurationError(
            f"cannot read age {text!r}; use a number and a unit, e.g. 12h, 30d or 2w"
        )
    return timedelta(**{_AGE_UNITS[match.group(2)]: float(match.group(1))})


def _protected_runs(client: MlflowClient) -> dict[str, str]:
    """``{run_id: "model vN"}`` for every run that backs a registered model version."""
    backing: dict[str, str] = {}
    for mv in _paged(client.search_model_versions):
        if mv.run_id:
            backing.setdefault(mv.run_id, f"backs {mv.name} v{mv.version}")
    return backing


def _check_purge_supported(manager: MlflowManager) -> None:
    if config.is_remote(manager.tracking_uri):
        raise TrackingError(
            "permanent deletion is not available through the tracking server "
            f"{config.redact_uri(manager.tracking_uri)} (its REST API only soft-deletes); "
            "run cleanup without --permanent, then `mlflow gc --backend-store-uri <store>` "
            "on the server"
        )


def plan_cleanup(
    experiment_type: str | ExperimentType,
    *,
    keep_last_n: int | None = None,
    older_than: str | timedelta | None = None,
    permanent: bool = False,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> CleanupPlan:
    """Decide which runs of an experiment a cleanup deletes; change nothing.

    A run is deleted when it is outside the newest ``keep_last_n`` runs and (if given)
    started more than ``older_than`` ago. A RUNNING run, or one that backs a registered
    model version, is protected instead.

    Parameters
    ----------
    experiment_type : str
    keep_last_n : int, optional
        How many of the newest runs to keep (>= 0).
    older_than : str or timedelta, optional
        Only runs older than this are deleted (``"30d"``, ``"12h"``, ``"2w"``).
    permanent : bool
        Plan to purge the runs (rows and artifacts), as ``mlflow gc`` does.
    manager : MlflowManager, optional
    fast : bool
        Allow the SQL fast path for reading the runs.

    Raises
    ------
    ConfigurationError
        Unknown experiment type, negative ``keep_last_n``, unreadable ``older_than``, or
        neither rule given.
    TrackingError
        ``permanent`` on a remote tracking server.
    """
    kind = ExperimentType.parse(experiment_type)
    if keep_last_n is None and older_than is None:
        raise ConfigurationError(
            "say which runs to delete: give --keep-last-n N, --older-than AGE (e.g. 30d), or both"
        )
    if keep_last_n is not None and keep_last_n < 0:
        raise ConfigurationError(f"keep_last_n must be >= 0, got {keep_last_n}")
    age = parse_age(older_than) if isinstance(older_than, str) else older_than
    manager = _manager(manager)
    if permanent:
        _check_purge_supported(manager)
    with _translated(manager):
        types_by_id = _experiment_ids(manager.client, [kind])
        tables = _tables(manager, list(types_by_id), fast=fast, only_metric=KEY_METRIC)
        backing = _protected_runs(manager.client) if types_by_id else {}
    columns = ["run_id", "run_name", "status", "start_time", "artifact_uri"]
    runs = _newest_first(tables.runs)[columns]  # index 0, 1, ... = position, newest first
    candidate = pd.Series(runs.index >= (keep_last_n or 0), index=runs.index)
    if age is not None:
        cutoff_ms = (time.time() - age.total_seconds()) * 1000
        candidate &= runs["start_time"].fillna(cutoff_ms) < cutoff_ms
    reasons = [
        "running" if status == "RUNNING" else backing.get(run_id, "")
        for run_id, status in zip(runs["run_id"], runs["status"], strict=True)
    ]
    runs = runs.assign(start_time=_as_time(runs["start_time"]), reason=reasons)
    protected = candidate & (runs["reason"] != "")
    runs["action"] = "keep"
    runs.loc[candidate, "action"] = "delete"
    runs.loc[protected, "action"] = "protected"
    ids = {
        action: tuple(runs.loc[runs["action"] == action, "run_id"])
        for action in ("delete", "protected", "keep")
    }
    return CleanupPlan(
        experiment_type=kind.value,
        experiment_id=next(iter(types_by_id), None),
        keep_last_n=keep_last_n,
        older_than=str(older_than) if older_than is not None else None,
        to_delete=ids["delete"],
        protected=ids["protected"],
        kept=ids["keep"],
        runs=runs,
        permanent=permanent,
    )


def execute_cleanup(
    plan: CleanupPlan,
    *,
    manager: MlflowManager | None = None,
    fast: bool = True,
    progress: Progress | None = None,
) -> CleanupResult:
    """Soft-delete the runs of ``plan.to_delete`` (and purge them when ``plan.permanent``).

    Parameters
    ----------
    plan : CleanupPlan
        From :func:`plan_cleanup` on the same store.
    manager : MlflowManager, optional
    fast : bool
        Allow one UPDATE transaction on an SQL store instead of a delete_run per run.
    progress : callable, optional
        Called with the number of runs processed after each step (soft delete, then purge).

    Returns
    -------
    CleanupResult

    Raises
    ------
    TrackingError
        ``plan.permanent`` on a remote tracking server (nothing is deleted), or a deletion
        failed.
    """
    manager = _manager(manager)
    progress = progress or (lambda done: None)
    if plan.permanent:
        _check_purge_supported(manager)
    with _translated(manager), _sql(manager, fast) as engine:
        if engine is not None and _sql_can_delete(engine):
            deleted, method = _sql_soft_delete(engine, plan.to_delete, progress), "sql"
        else:
            for run_id in plan.to_delete:
                manager.client.delete_run(run_id)
                progress(1)
            deleted, method = list(plan.to_delete), "api"
        failed = _purge(manager, plan, deleted, progress) if plan.permanent else []
    return CleanupResult(plan, tuple(deleted), method, tuple(failed))


def _purge(
    manager: MlflowManager, plan: CleanupPlan, run_ids: list[str], progress: Progress
) -> list[str]:
    """Remove soft-deleted runs for good, run by run, as ``mlflow gc --run-ids`` does.

    Returns the runs whose artifacts could not be deleted (their rows are gone anyway).
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    # The same store object `mlflow gc --backend-store-uri <uri>` would build for this URI.
    store = manager.client._tracking_client.store
    if not hasattr(store, "_hard_delete_run"):
        raise TrackingError(
            f"the store {config.redact_uri(manager.tracking_uri)} cannot purge runs; they "
            "were soft-deleted only"
        )
    uris = plan.runs.set_index("run_id")["artifact_uri"]
    failed = []
    for run_id in run_ids:
        try:
            get_artifact_repository(uris[run_id]).delete_artifacts()
        except (MlflowException, OSError):
            failed.append(run_id)
        store._hard_delete_run(run_id)
        progress(1)
    return failed


def model_history(
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    metric: str | None = None,
    manager: MlflowManager | None = None,
) -> pd.DataFrame:
    """Return the performance history of every version of ``model_name``.

    Parameters
    ----------
    model_name : str
    metric : str, optional
        Keep only this metric.
    manager : MlflowManager, optional

    Returns
    -------
    DataFrame
        As :func:`fraudkit.registry.get_model_performance_history`: version, run_id,
        source, metric, step, timestamp, value.

    Raises
    ------
    RegistryError
        No registered model of that name.
    """
    manager = _manager(manager)
    with _translated(manager):
        _require_model(manager, model_name)
        metrics = [metric] if metric else None
        return registry.get_model_performance_history(manager.client, model_name, metrics)


def _require_model(manager: MlflowManager, model_name: str) -> None:
    from fraudkit.tracking import _store_error

    try:
        manager.client.get_registered_model(model_name)
    except MlflowException as exc:
        error = _store_error(exc, manager.tracking_uri)
        if isinstance(error, TrackingUnavailableError):
            raise error from exc
        raise RegistryError(
            f"registered model {model_name!r} not found; `fraudkit dashboard registry` lists "
            "the registered models"
        ) from exc


def save_history_plot(
    history: pd.DataFrame, path: str | os.PathLike, *, metric: str = KEY_METRIC
) -> Path:
    """Draw ``metric`` over time, one line per version, to an image file; return its path.

    Raises
    ------
    DataValidationError
        ``metric`` is absent from ``history``.
    """
    import matplotlib.pyplot as plt

    from fraudkit.plots import plot_metric_history

    target = Path(path).expanduser().resolve()
    figure = plot_metric_history(history, metric=metric, x="timestamp", by="version")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return target


if __name__ == "__main__":
    from fraudkit.cli import dashboard as _dashboard_cli

    _dashboard_cli(prog_name="python -m fraudkit.dashboard")
