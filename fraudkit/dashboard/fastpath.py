"""The guarded SQL fast path: plain SELECTs (and one UPDATE transaction) on MLflow's tables.

``search_runs`` materialises every param, metric and tag of every run as Python objects
(minutes at tens of thousands of runs), MLflow has no batch delete, and importing MLflow
alone takes seconds. For an SQL store (SQLite, PostgreSQL) whose schema is one the tests
have exercised, the dashboard reads the few columns it needs here and soft-deletes in one
transaction.

The guard is :func:`open_store`: it returns a :class:`SqlStore` only when the store's
alembic revision is one of :data:`TESTED_REVISIONS`, so every column means what this code
assumes; on any other revision (an MLflow upgrade that migrated the schema, an old store)
the caller uses the public API, and the first such store is logged at debug level.
Everything here mirrors what MLflow's SqlAlchemyStore returns for the same rows; the
tests compare both paths.

This module imports neither MLflow nor pandas: a SQLite store is read with the standard
library's ``sqlite3`` (importing SQLAlchemy costs more than the whole answer), a
PostgreSQL store through SQLAlchemy. The registry's tables are read by
:mod:`fraudkit.dashboard.fastregistry`.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlparse

from fraudkit.core.config import redact_uri
from fraudkit.core.exceptions import TrackingError

__all__ = [
    "DELETED_STAGE",
    "SQL_CHUNK",
    "TESTED_REVISIONS",
    "WORKSPACE",
    "FastPathError",
    "Query",
    "RunRows",
    "SqlStore",
    "can_soft_delete",
    "connect",
    "experiment_ids",
    "nan_restored",
    "open_store",
    "read_rows",
    "read_states",
    "run_names",
    "schema_head",
    "soft_delete",
]

# The alembic revisions of MLflow's schema this module's SQL was tested on; a store on any
# other revision is read and written through MLflow's public API. Add a revision only
# after the dashboard tests pass on it (they compare both paths answer for answer):
# ``fastpath.schema_head()`` names the installed MLflow's newest.
TESTED_REVISIONS: tuple[str, ...] = (
    "dc11669786a5",  # MLflow 3.17.2 (head: add_job_executor_persistence_model)
    # MLflow 3.18.0: its three migrations add skill-registry tables, extend `issues` and
    # re-key the MCP server versions; none touches a table this module reads or writes.
    "f4a9b2c7d1e6",  # MLflow 3.18.0 (head: make_mcp_versions_case_sensitive)
)
SQL_CHUNK = 500  # values per IN (...) list, well under every dialect's parameter limit
WORKSPACE = "default"  # MLflow's only workspace while MLFLOW_ENABLE_WORKSPACES is off
DELETED_STAGE = "Deleted_Internal"  # MLflow's stage of a deleted version it keeps a row of

_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*=\s*(.+)$", re.MULTILINE)
# Active runs of the experiments bound to :ids, as search_runs(ViewType.ACTIVE_ONLY) sees them.
_ACTIVE_RUNS = "r.lifecycle_stage = 'active' AND r.experiment_id IN :ids"
_SQLITE_TIMEOUT_S = 5.0  # wait this long for a writer's lock, as SQLAlchemy's default does
# UPDATE ... RETURNING, which deletes and reports in one statement, arrived in SQLite 3.35.
_SQLITE_RETURNING = (3, 35, 0)

_log = logging.getLogger(__name__)
# URIs whose untested revision was already logged: once per process and store is enough.
_untested_logged: set[str] = set()
_untested_lock = threading.Lock()

Query = Callable[..., list[tuple[Any, ...]]]
"""Runs one SQL statement of a :meth:`SqlStore.session`: ``query(sql, **params)``.

A list or tuple parameter ``ids`` fills an ``IN :ids`` clause; the rows come back as
tuples (pandas builds frames from tuples fastest, and the CLI needs no frames at all).
"""


class FastPathError(Exception):
    """A fast-path statement failed (a locked SQLite file, a lost connection).

    Readers fall back to the public API, which decides what to report; writers turn it
    into a :class:`~fraudkit.core.exceptions.TrackingError`.
    """


class RunRows(NamedTuple):
    """Rows read from the store, as tuples.

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


def _expand(sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Turn each list parameter ``:name`` into ``(:name_0, :name_1, ...)``."""
    flat: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, list | tuple):
            names = [f"{name}_{i}" for i in range(len(value))]
            # An empty IN () is a syntax error on PostgreSQL; IN (NULL) matches nothing.
            listed = "(" + ", ".join(f":{n}" for n in names) + ")" if names else "(NULL)"
            sql = re.sub(rf":{name}(?!\w)", listed, sql)
            flat.update(zip(names, value, strict=True))
        else:
            flat[name] = value
    return sql, flat


class SqlStore:
    """An SQL tracking store the fast path applies to; :func:`open_store` opens one.

    Parameters
    ----------
    uri : str
        The store's URI.
    sqlite_path : str, optional
        The SQLite file (read with ``sqlite3``); None for another dialect (SQLAlchemy).
    """

    def __init__(self, uri: str, sqlite_path: str | None = None) -> None:
        self.uri = uri
        self._sqlite: sqlite3.Connection | None = None
        self._engine: Any = None
        if sqlite_path is not None:
            # mode=rw: never create a missing file; autocommit: transactions are explicit.
            target = f"file:{quote(sqlite_path)}?mode=rw"
            self._sqlite = sqlite3.connect(
                target, uri=True, timeout=_SQLITE_TIMEOUT_S, isolation_level=None
            )
        else:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(uri, poolclass=NullPool)

    @property
    def dialect(self) -> str:
        """``sqlite`` or SQLAlchemy's dialect name (``postgresql``)."""
        return "sqlite" if self._sqlite is not None else str(self._engine.dialect.name)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Query]:
        """Yield a :data:`Query` whose statements share one transaction, committed after.

        Reads see one snapshot of the store. ``write=True`` takes SQLite's write lock at
        once, so a transaction never fails half-way for want of it.

        Raises
        ------
        FastPathError
            A statement failed; the transaction was rolled back.
        """
        if self._sqlite is not None:
            with self._sqlite_session(write) as query:
                yield query
            return
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._engine.begin() as conn:

                def query(sql: str, **params: Any) -> list[tuple[Any, ...]]:
                    statement, values = _expand(sql, params)
                    return [tuple(row) for row in conn.execute(text(statement), values)]

                yield query
        except SQLAlchemyError as exc:
            raise FastPathError(str(exc).splitlines()[0]) from exc

    @contextmanager
    def _sqlite_session(self, write: bool) -> Iterator[Query]:
        conn = self._sqlite
        assert conn is not None

        def query(sql: str, **params: Any) -> list[tuple[Any, ...]]:
            statement, values = _expand(sql, params)
            return conn.execute(statement, values).fetchall()

        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield query
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise FastPathError(str(exc).splitlines()[0]) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection (or dispose of the engine)."""
        if self._sqlite is not None:
            self._sqlite.close()
        if self._engine is not None:
            self._engine.dispose()


@functools.cache
def schema_head() -> str | None:
    """Return the newest schema revision among the installed MLflow's migrations, or None.

    Not the guard (:data:`TESTED_REVISIONS` is): it names what an MLflow upgrade brought,
    in the debug message and in the test that the installed revision is a tested one.
    Read from the migration scripts' ``revision``/``down_revision`` lines: the head is the
    revision no other revises. The scripts are found without importing MLflow (which
    costs seconds); alembic's ScriptDirectory gives the same answer but imports every
    migration module.
    """
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (package / "store" / "db_migrations" / "versions").glob("*.py"):
        for kind, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            names = re.findall(r"['\"](\w+)['\"]", value)
            (revisions if kind == "revision" else revised).update(names)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _workspaces_enabled() -> bool:
    # MLflow reads MLFLOW_ENABLE_WORKSPACES as true/false/1/0 (and rejects anything else);
    # anything but an explicit "off" leaves the store to MLflow.
    flag = os.environ.get("MLFLOW_ENABLE_WORKSPACES")
    return flag is not None and flag.lower() not in ("false", "0")


def open_store(uri: str) -> SqlStore | None:
    """Return a :class:`SqlStore` on ``uri`` when the fast path applies to it, else None.

    The fast path applies to an existing SQLite file or a PostgreSQL database whose alembic
    revision is one of :data:`TESTED_REVISIONS`, with MLflow workspaces off. The caller
    closes the store (or uses :func:`connect`).
    """
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if not (scheme == "sqlite" or scheme.startswith("postgresql")) or _workspaces_enabled():
        return None  # workspace scoping is enforced by MLflow's store, not by these queries
    sqlite_path = None
    if scheme == "sqlite":
        sqlite_path = uri[len("sqlite:///") :]
        if parsed.query or not Path(sqlite_path).is_file():
            # Connecting would create an empty file: MLflow initialises a store.
            return None
    try:
        store = SqlStore(uri, sqlite_path)
    except (sqlite3.Error, ImportError, ValueError):
        return None
    try:
        with store.session() as query:
            found = [row[0] for row in query("SELECT version_num FROM alembic_version")]
    except FastPathError:  # unreadable, or a server that cannot be reached: MLflow reports it
        found = []
    if len(found) == 1 and found[0] in TESTED_REVISIONS:
        return store
    store.close()
    if found:
        _log_untested(uri, found)
    return None


def _log_untested(uri: str, revisions: list[str]) -> None:
    """Say once per process and store that its schema revision sends it to the public API."""
    with _untested_lock:
        if uri in _untested_logged:
            return
        _untested_logged.add(uri)
    _log.debug(
        "%s has MLflow schema revision %s, which the SQL fast path was not tested on "
        "(tested: %s; installed MLflow's newest: %s); using MLflow's client API instead",
        redact_uri(uri),
        ", ".join(revisions),
        ", ".join(TESTED_REVISIONS) or "none",
        schema_head(),
    )


@contextmanager
def connect(uri: str, fast: bool) -> Iterator[SqlStore | None]:
    """Yield :func:`open_store` of ``uri`` (None when ``fast`` is False), closed after."""
    store = open_store(uri) if fast else None
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def experiment_ids(query: Query, names: Sequence[str]) -> dict[str, str]:
    """Return ``{name: experiment_id}`` of the experiments called ``names`` that exist.

    Deleted experiments count, as :meth:`MlflowClient.get_experiment_by_name` finds them.
    """
    found = query(
        "SELECT name, experiment_id FROM experiments WHERE workspace = :ws AND name IN :names",
        ws=WORKSPACE,
        names=list(names),
    )
    return {name: str(experiment_id) for name, experiment_id in found}


def read_rows(query: Query, experiment_ids: list[str], only_metric: str | None) -> RunRows:
    """Read the active runs of ``experiment_ids`` with their metrics, params and tags.

    Parameters
    ----------
    query : Query
        Of a :meth:`SqlStore.session`.
    experiment_ids : list of str
    only_metric : str, optional
        Read only this metric, and no params or tags.

    Returns
    -------
    RunRows

    Raises
    ------
    FastPathError
        The store could not be read (e.g. a locked SQLite file); fall back to the API.
    """
    ids = [int(i) for i in experiment_ids]
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
    runs = [
        # MLflow falls back to the mlflow.runName tag when the name column is empty.
        (run_id, name or tag_name or name, str(exp), status, start, end, uri)
        for run_id, name, tag_name, exp, status, start, end, uri in query(runs_sql, ids=ids)
    ]
    if only_metric is None:
        found = query(metrics_sql, ids=ids)
        params = query(pairs_sql.format(table="params"), ids=ids)
        tags = query(pairs_sql.format(table="tags"), ids=ids)
    else:
        found = query(metrics_sql + " AND m.key = :key", ids=ids, key=only_metric)
        params, tags = [], []
    return RunRows(runs, nan_restored(found), params, tags)


def read_states(
    query: Query, experiment_ids: list[str], metric: str
) -> tuple[list[tuple[Any, ...]], dict[str, float]]:
    """Read what the summary needs of the active runs of ``experiment_ids``, and no more.

    Returns
    -------
    runs : list of tuple
        run_id, experiment_id (str), status, start_time (epoch ms) per run.
    values : dict
        ``{run_id: latest value of metric}`` (NaN restored).

    Raises
    ------
    FastPathError
        The store could not be read.
    """
    ids = [int(i) for i in experiment_ids]
    found = query(
        "SELECT r.run_uuid, r.experiment_id, r.status, r.start_time FROM runs r"
        f" WHERE {_ACTIVE_RUNS}",
        ids=ids,
    )
    runs = [(run_id, str(exp), status, start) for run_id, exp, status, start in found]
    # Driven from runs (a scan), each metric by its primary key: twice as fast on SQLite.
    metrics = query(
        "SELECT r.run_uuid, m.key, m.value, m.is_nan FROM runs r CROSS JOIN latest_metrics m"
        f" WHERE m.run_uuid = r.run_uuid AND m.key = :key AND {_ACTIVE_RUNS}",
        ids=ids,
        key=metric,
    )
    return runs, {run_id: float(value) for run_id, _, value in nan_restored(metrics)}


def run_names(query: Query, run_ids: list[str]) -> dict[str, str | None]:
    """Return ``{run_id: run name}`` of ``run_ids``, as MLflow's ``Run.info.run_name``."""
    found = query(
        "SELECT r.run_uuid, r.name, t.value FROM runs r LEFT JOIN tags t"
        " ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.runName' WHERE r.run_uuid IN :ids",
        ids=sorted(set(run_ids)),
    )
    # MLflow falls back to the mlflow.runName tag when the name column is empty.
    return {run_id: name or tag_name or name for run_id, name, tag_name in found}


def nan_restored(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Return ``(id, key, value, is_nan)`` metric rows as ``(id, key, value)``.

    MLflow stores NaN as value 0 with ``is_nan`` set; its entities turn it back into NaN.
    """
    return [(owner, key, float("nan") if nan else value) for owner, key, value, nan in rows]


def soft_delete(
    store: SqlStore, run_ids: Sequence[str], progress: Callable[[int], None]
) -> list[str]:
    """Soft-delete ``run_ids`` in one transaction, as MlflowClient.delete_run does one by one.

    The rules that protect a run are checked again by the deleting statement itself, not
    only when the cleanup was planned: a run that is RUNNING, backs a registered model
    version (deleted versions aside) or is no longer active is left alone, so a version
    registered or a run restarted since the plan keeps its run.

    Parameters
    ----------
    store : SqlStore
        From :func:`open_store`; check :func:`can_soft_delete` first.
    run_ids : sequence of str
    progress : callable
        Called with the number of runs processed after each chunk.

    Returns
    -------
    list of str
        The ids deleted, in the order of ``run_ids``; the others were left alone.

    Raises
    ------
    TrackingError
        The transaction failed (it is rolled back: nothing was deleted).
    """
    # One statement checks and deletes, so no writer can slip in between the check and
    # the delete: on SQLite the transaction holds the write lock from its start (BEGIN
    # IMMEDIATE), so registrations and run updates wait for the commit; on PostgreSQL the
    # UPDATE locks each run row it changes and re-checks a row another transaction changed
    # first. A version whose registration commits while the UPDATE runs was not visible
    # to it: that registration serialises after the cleanup, exactly like registering a
    # version from a run deleted earlier (which MLflow allows).
    update = (
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = :now"
        " WHERE run_uuid IN :ids AND lifecycle_stage = 'active' AND status <> 'RUNNING'"
        " AND NOT EXISTS (SELECT 1 FROM model_versions v"
        " WHERE v.run_id = runs.run_uuid AND v.current_stage <> :gone)"
        " RETURNING run_uuid"
    )
    now = int(time.time() * 1000)
    deleted: list[str] = []
    try:
        with store.session(write=True) as query:
            for start in range(0, len(run_ids), SQL_CHUNK):
                chunk = list(run_ids[start : start + SQL_CHUNK])
                deleted += [row[0] for row in query(update, ids=chunk, now=now, gone=DELETED_STAGE)]
                progress(len(chunk))
    except FastPathError as exc:
        raise TrackingError(
            f"deleting runs failed and was rolled back, nothing was deleted ({exc}); "
            "retry when the store is not busy"
        ) from exc
    order = {run_id: i for i, run_id in enumerate(run_ids)}
    return sorted(deleted, key=order.__getitem__)


def can_soft_delete(store: SqlStore) -> bool:
    """Return whether a plain UPDATE deletes runs exactly as MLflow's delete_run would.

    MLflow's delete_run also removes GenAI assessments whose metadata names the run as
    their source; fraudkit never writes any, but when a store has some, use the API. An
    SQLite library older than 3.35 lacks the ``UPDATE ... RETURNING`` that
    :func:`soft_delete` checks and deletes with.
    """
    if store.dialect == "sqlite" and sqlite3.sqlite_version_info < _SQLITE_RETURNING:
        return False
    try:
        with store.session() as query:
            found = query(
                "SELECT 1 FROM assessments WHERE assessment_metadata LIKE :marker LIMIT 1",
                marker="%mlflow.assessment.sourceRunId%",
            )
    except FastPathError:
        return False
    return not found
