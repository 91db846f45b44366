"""The guarded SQL fast path: plain SELECTs (and one UPDATE transaction) on MLflow's tables.

``search_runs`` materialises every param, metric and tag of every run as Python objects
(minutes at tens of thousands of runs) and MLflow has no batch delete. For an SQL store
(SQLite, PostgreSQL) whose schema is exactly the one the installed MLflow writes, the
dashboard reads the few columns it needs here and soft-deletes in one transaction.

The guard is :func:`sql_engine`: it returns an engine only when the store's alembic
revision is the head revision of the installed MLflow, so every column means what this
code assumes; otherwise the caller uses the public API. Everything here mirrors what
MLflow's SqlAlchemyStore returns for the same runs; the tests compare both paths.

This module needs neither the MLflow client nor a tracking manager: SQLAlchemy and the
installed MLflow's migration scripts are enough.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlparse

from fraudkit.exceptions import TrackingError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = [
    "SQL_CHUNK",
    "RunRows",
    "can_soft_delete",
    "connect",
    "read_rows",
    "schema_head",
    "soft_delete",
    "sql_engine",
]

SQL_CHUNK = 500  # run ids per IN (...) clause, well under every dialect's parameter limit

_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*=\s*(.+)$", re.MULTILINE)
# Active runs of the experiments bound to :ids, as search_runs(ViewType.ACTIVE_ONLY) sees them.
_ACTIVE_RUNS = "r.lifecycle_stage = 'active' AND r.experiment_id IN :ids"


class RunRows(NamedTuple):
    """Rows read from the store, as tuples (pandas builds frames from tuples fastest).

    Attributes
    ----------
    runs : list of tuple
        run_id, run_name, experiment_id (str), status, start_time, end_time, artifact_uri.
    metrics, params, tags : list of tuple
        run_id, key, value (metrics: the latest value, NaN restored).
    """

    runs: list[tuple[Any, ...]]
    metrics: list[tuple[Any, ...]]
    params: list[tuple[Any, ...]]
    tags: list[tuple[Any, ...]]


@functools.cache
def schema_head() -> str | None:
    """Return the newest schema revision among the installed MLflow's migrations, or None.

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


def sql_engine(uri: str) -> Engine | None:
    """Return an engine on the store at ``uri`` when the fast path applies to it, else None.

    The fast path applies to an existing SQLite file or a PostgreSQL database whose alembic
    revision is :func:`schema_head`, with MLflow workspaces off. The caller disposes of
    the engine (or uses :func:`connect`).
    """
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
    head = schema_head()
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
def connect(uri: str, fast: bool) -> Iterator[Engine | None]:
    """Yield :func:`sql_engine` of ``uri`` (None when ``fast`` is False), disposed after."""
    engine = sql_engine(uri) if fast else None
    try:
        yield engine
    finally:
        if engine is not None:
            engine.dispose()


def _select(conn: Connection, sql: str, ids: list[str], **params: Any) -> list[tuple[Any, ...]]:
    from sqlalchemy import bindparam, text

    statement = text(sql).bindparams(bindparam("ids", expanding=True))
    rows = conn.execute(statement, {"ids": [int(i) for i in ids], **params}).all()
    return list(map(tuple, rows))  # pandas builds frames from tuples far faster than from Rows


def read_rows(engine: Engine, experiment_ids: list[str], only_metric: str | None) -> RunRows:
    """Read the active runs of ``experiment_ids`` with their metrics, params and tags.

    Parameters
    ----------
    engine : Engine
        From :func:`sql_engine`.
    experiment_ids : list of str
    only_metric : str, optional
        Read only this metric, and no params or tags.

    Returns
    -------
    RunRows

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        The store could not be read (e.g. a locked SQLite file); fall back to the API.
    """
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
    return RunRows(runs, metrics, params, tags)


def soft_delete(
    engine: Engine, run_ids: Sequence[str], progress: Callable[[int], None]
) -> list[str]:
    """Soft-delete ``run_ids`` in one transaction, as MlflowClient.delete_run does one by one.

    Runs that turned RUNNING or were deleted since they were planned are left alone.

    Parameters
    ----------
    engine : Engine
        From :func:`sql_engine`; check :func:`can_soft_delete` first.
    run_ids : sequence of str
    progress : callable
        Called with the number of runs processed after each chunk.

    Returns
    -------
    list of str
        The ids deleted, in the order of ``run_ids``.

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
            for start in range(0, len(run_ids), SQL_CHUNK):
                chunk = list(run_ids[start : start + SQL_CHUNK])
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


def can_soft_delete(engine: Engine) -> bool:
    """Return whether a plain UPDATE deletes runs exactly as MLflow's delete_run would.

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
