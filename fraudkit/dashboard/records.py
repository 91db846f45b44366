"""The dashboard's record types, and the registry versions each answer is built from.

Below both :mod:`~fraudkit.dashboard.answers` (records the CLI prints, no pandas) and
:mod:`~fraudkit.dashboard.queries` (DataFrames), so neither imports the other:

- the column lists and :class:`DashboardSummary`;
- :func:`registry_versions` and :func:`compared_versions`: the
  :class:`~fraudkit.tracking.versions.VersionRecord` values behind the registry overview
  and the comparison, read by the SQL fast path (:func:`fast_registry`,
  :func:`fast_comparison`) when it applies and through the MLflow client
  (:mod:`fraudkit.tracking.history`) otherwise. Either way one function builds each
  answer (:func:`~fraudkit.tracking.versions.registry_rows`,
  :func:`~fraudkit.tracking.versions.comparison_rows`), so the two paths cannot drift;
- :func:`json_records`, which makes those rows JSON-ready.

The fast path imports neither MLflow nor pandas; the MLflow client path is imported only
when it is needed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fraudkit.core.config import stage_to_alias
from fraudkit.core.exceptions import ConfigurationError
from fraudkit.dashboard import fastpath
from fraudkit.dashboard.fastregistry import Registry, read_registry, read_runs
from fraudkit.dashboard.runs import (
    KEY_METRIC,
    RUN_STATUSES,
    iso_time,
    json_value,
    store_uri,
    translated,
)
from fraudkit.tracking.versions import (
    COMPARE_FIXED,
    DEFAULT_STAGES,
    KEY_METRICS,
    REGISTRY_COLUMNS,
    VersionRecord,
)

if TYPE_CHECKING:
    import pandas as pd

    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "COMPARE_FIXED",
    "EXPERIMENT_COLUMNS",
    "MODEL_COLUMNS",
    "REGISTRY_COLUMNS",
    "REGISTRY_METRICS",
    "DashboardSummary",
    "compared_versions",
    "fast_comparison",
    "fast_registry",
    "json_records",
    "registry_versions",
]

# The key metrics of the registry overview (the same tuple as tracking's KEY_METRICS).
REGISTRY_METRICS = KEY_METRICS
EXPERIMENT_COLUMNS = [
    "experiment_type",
    "experiment_name",
    "experiment_id",
    "total",
    *(status.lower() for status in RUN_STATUSES),
    "latest_run_name",
    "latest_run_id",
    "latest_start",
    "latest_status",
    "best_run_name",
    "best_run_id",
    f"best_{KEY_METRIC}",
]
MODEL_COLUMNS = ["model", "versions", "latest_version", "aliases"]


@dataclass(frozen=True, eq=False)
class DashboardSummary:
    """Runs per experiment type and registered models.

    Attributes
    ----------
    experiment_records : list of dict
        One JSON-ready record per experiment type, keys :data:`EXPERIMENT_COLUMNS`:
        experiment_type, experiment_name, experiment_id, total, one count per run status
        (lower case), latest_run_name, latest_run_id, latest_start (ISO-8601 UTC),
        latest_status, best_run_name, best_run_id and ``best_average_precision`` (the
        highest value of the key metric).
    model_records : list of dict
        One record per registered model: model, versions, latest_version, aliases
        (``"production=3,staging=5"``).
    """

    experiment_records: list[dict[str, Any]]
    model_records: list[dict[str, Any]]

    @functools.cached_property
    def experiments(self) -> pd.DataFrame:
        """:attr:`experiment_records` as a DataFrame (``latest_start`` as UTC timestamps)."""
        import pandas as pd

        frame = pd.DataFrame(self.experiment_records, columns=EXPERIMENT_COLUMNS)
        frame["latest_start"] = pd.to_datetime(frame["latest_start"], utc=True)
        return frame

    @functools.cached_property
    def models(self) -> pd.DataFrame:
        """:attr:`model_records` as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.model_records, columns=MODEL_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """Return both tables as JSON-ready lists of records."""
        return {"experiments": self.experiment_records, "models": self.model_records}


def json_records(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Return ``rows`` as JSON-ready records with exactly ``columns``, in that order.

    ``created`` (epoch ms) becomes an ISO-8601 UTC string, NaN becomes None (see
    :func:`~fraudkit.dashboard.runs.json_value`), and a column a row lacks is None.
    """

    def ready(column: str, value: Any) -> Any:
        return iso_time(value) if column == "created" else json_value(value)

    return [{column: ready(column, row.get(column)) for column in columns} for row in rows]


# -- the fast path ---------------------------------------------------------------------


def fast_registry(
    manager: MlflowManager | None = None, fast: bool = True
) -> list[VersionRecord] | None:
    """Read every registered version, with its source run, by the fast path.

    Returns
    -------
    list of VersionRecord or None
        None when the fast path does not apply (use the MLflow client).
    """
    with fastpath.connect(store_uri(manager), fast) as store:
        if store is None:
            return None
        try:
            with store.session() as query:
                registry = read_registry(query)
        except fastpath.FastPathError:
            return None
    return None if registry is None else list(registry.versions)


def _chosen(
    registry: Registry,
    model_name: str,
    stages: Sequence[str] | None,
    versions: Sequence[str | int] | None,
) -> list[tuple[str, VersionRecord]] | None:
    """The labelled versions to compare, or None when one is missing (the client says which)."""
    by_number = {version.version: version for version in registry.versions}
    chosen = []
    if versions is not None:
        for wanted in versions:
            number = str(wanted).strip()
            if not (number.isascii() and number.isdigit()) or int(number) not in by_number:
                return None
            found = by_number[int(number)]
            chosen.append((f"v{found.version}", found))
        return chosen
    for stage in stages or DEFAULT_STAGES:
        try:
            alias = stage_to_alias(stage)
        except ConfigurationError:
            return None
        holder = registry.aliases.get(model_name, {}).get(alias)
        if holder is None or holder not in by_number:
            return None
        chosen.append((alias, by_number[holder]))
    return chosen


def fast_comparison(
    model_name: str,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> list[tuple[str, VersionRecord]] | None:
    """Return the versions to compare, labelled, with their source runs, by the fast path.

    Labels are the alias (``production``) or ``v<N>`` for explicit ``versions``.

    Returns
    -------
    list of (str, VersionRecord) or None
        None when the fast path does not apply, or when the model, a version or an alias
        is missing: the MLflow client then raises the error that says so.
    """
    if versions is not None and not versions:
        return None
    with fastpath.connect(store_uri(manager), fast) as store:
        if store is None:
            return None
        try:
            with store.session() as query:
                registry = read_registry(query, model_name, runs=False)
                if registry is None or model_name not in registry.models:
                    return None
                chosen = _chosen(registry, model_name, stages, versions)
                if chosen is None:
                    return None
                runs = read_runs(query, [v.run_id for _, v in chosen if v.run_id])
        except fastpath.FastPathError:
            return None
    return [
        (label, v._replace(run=runs.get(v.run_id) if v.run_id else None)) for label, v in chosen
    ]


# -- either path -----------------------------------------------------------------------


def registry_versions(
    *, manager: MlflowManager | None = None, fast: bool = True
) -> list[VersionRecord]:
    """Return every registered version with its source run, by whichever path applies.

    Parameters
    ----------
    manager : MlflowManager, optional
        The store to read (default: the one :data:`fraudkit.mlflow_manager` uses).
    fast : bool
        Allow the SQL fast path; False forces the MLflow client.

    Raises
    ------
    TrackingUnavailableError
        The store cannot be reached.
    """
    found = fast_registry(manager, fast)
    if found is not None:
        return found
    from fraudkit.tracking.history import read_versions
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    with translated(manager):
        return read_versions(manager.client)


def compared_versions(
    model_name: str,
    *,
    stages: Sequence[str] | None = None,
    versions: Sequence[str | int] | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> list[tuple[str, VersionRecord]]:
    """Return the labelled versions to compare, by whichever path applies.

    Parameters
    ----------
    model_name : str
    stages : sequence of str, optional
        Stage or alias names (default Production, Staging); ignored with ``versions``.
    versions : sequence, optional
        Explicit version numbers (labelled ``v<N>``).
    manager : MlflowManager, optional
    fast : bool
        Allow the SQL fast path.

    Raises
    ------
    RegistryError
        Unknown model or version, an empty ``versions``, or an alias that is not set.
    """
    chosen = fast_comparison(
        model_name, stages=stages, versions=versions, manager=manager, fast=fast
    )
    if chosen is not None:
        return chosen
    from fraudkit.tracking.history import read_compared
    from fraudkit.tracking.manager import resolve_manager

    manager = resolve_manager(manager)
    with translated(manager):
        return read_compared(manager.client, model_name, stages, versions)
