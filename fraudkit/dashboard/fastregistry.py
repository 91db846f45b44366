"""The model registry on the SQL fast path: registered models, versions, aliases, source runs.

Reads what ``search_registered_models``, ``search_model_versions``, ``get_model_version``
and ``get_run`` return for fraudkit's use, from MLflow's tables, through a
:data:`~fraudkit.dashboard.fastpath.Query` of a store that
:func:`~fraudkit.dashboard.fastpath.open_store` vouched for. MLflow's searches leave
prompts out (registered models tagged ``mlflow.prompt.is_prompt``); fraudkit never
registers one, so a store that holds any is left to the public API rather than
re-implementing that filter: :func:`read_registry` returns None. Like
:mod:`~fraudkit.dashboard.fastpath`, this imports neither MLflow nor pandas.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from fraudkit.core.tags import PROMPT_TAG
from fraudkit.dashboard.fastpath import (
    DELETED_STAGE,
    SQL_CHUNK,
    WORKSPACE,
    Query,
    nan_restored,
)
from fraudkit.tracking.versions import SourceRun, VersionRecord

__all__ = [
    "Registry",
    "read_registry",
    "read_runs",
]


class Registry(NamedTuple):
    """Registered models with their aliases and versions.

    Attributes
    ----------
    models : list of str
        Names, sorted.
    aliases : dict
        ``{model: {alias: version}}``.
    versions : list of VersionRecord
        Sorted by model and version.
    """

    models: list[str]
    aliases: dict[str, dict[str, int]]
    versions: list[VersionRecord]


def _chunked(query: Query, sql: str, values: list[str]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), SQL_CHUNK):
        rows += query(sql, ids=values[start : start + SQL_CHUNK])
    return rows


def read_runs(query: Query, run_ids: Iterable[str]) -> dict[str, SourceRun]:
    """Return ``{run_id: SourceRun}`` of the runs that exist among ``run_ids``.

    Deleted runs count: ``get_run`` finds them too, and a version's source run may be one.
    """
    wanted = sorted(set(run_ids))
    found = {
        row[0]
        for row in _chunked(query, "SELECT run_uuid FROM runs WHERE run_uuid IN :ids", wanted)
    }
    data = {run_id: SourceRun({}, {}) for run_id in found}
    metrics_sql = "SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN :ids"
    for run_id, key, value in nan_restored(_chunked(query, metrics_sql, sorted(found))):
        data[run_id].metrics[key] = float(value)
    params_sql = "SELECT run_uuid, key, value FROM params WHERE run_uuid IN :ids"
    for run_id, key, value in _chunked(query, params_sql, sorted(found)):
        data[run_id].params[key] = value
    return data


def read_registry(
    query: Query, model_name: str | None = None, *, runs: bool = True
) -> Registry | None:
    """Read the registered models (or only ``model_name``) with their aliases and versions.

    Parameters
    ----------
    query : Query
        Of a :meth:`~fraudkit.dashboard.fastpath.SqlStore.session`.
    model_name : str, optional
        Only this model (an unknown name gives an empty :class:`Registry`).
    runs : bool
        Also read each version's source run (``VersionRecord.run``); else ``run`` is None.

    Returns
    -------
    Registry or None
        None when the store holds prompts: use the public API.

    Raises
    ------
    FastPathError
        The store could not be read.
    """
    prompts = [
        f"SELECT 1 FROM {table} WHERE key = :key AND workspace = :ws"
        for table in ("registered_model_tags", "model_version_tags")
    ]
    if any(query(sql + " LIMIT 1", key=PROMPT_TAG, ws=WORKSPACE) for sql in prompts):
        return None
    where, params = "workspace = :ws", {"ws": WORKSPACE}
    if model_name is not None:
        where, params = where + " AND name = :name", {**params, "name": model_name}
    models = sorted(
        row[0] for row in query(f"SELECT name FROM registered_models WHERE {where}", **params)
    )
    aliases: dict[str, dict[str, int]] = {}
    by_version: dict[tuple[str, int], list[str]] = {}
    for name, alias, version in query(
        f"SELECT name, alias, version FROM registered_model_aliases WHERE {where}", **params
    ):
        aliases.setdefault(name, {})[alias] = int(version)
        by_version.setdefault((name, int(version)), []).append(alias)
    tags: dict[tuple[str, int], dict[str, str]] = {}
    for name, version, key, value in query(
        f"SELECT name, version, key, value FROM model_version_tags WHERE {where}", **params
    ):
        tags.setdefault((name, int(version)), {})[key] = value
    found = query(
        "SELECT name, version, creation_time, status, run_id FROM model_versions"
        f" WHERE {where} AND current_stage <> :deleted",
        **params,
        deleted=DELETED_STAGE,
    )
    sources = read_runs(query, (row[4] for row in found if row[4])) if runs else {}
    versions = [
        VersionRecord(
            model=name,
            version=int(version),
            created=None if created is None else int(created),
            status=status,
            run_id=run_id,
            aliases=tuple(sorted(by_version.get((name, int(version)), []))),
            tags=tags.get((name, int(version)), {}),
            run=sources.get(run_id) if run_id else None,
        )
        for name, version, created, status, run_id in found
    ]
    versions.sort(key=lambda v: (v.model, v.version))
    return Registry(models, aliases, versions)
