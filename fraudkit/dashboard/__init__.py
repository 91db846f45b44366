"""Dashboard queries over the tracking store: summary, registry, compare, export, cleanup, history.

Every function returns plain data (DataFrames or frozen dataclasses with ``to_dict()``);
``fraudkit dashboard ...`` (:mod:`fraudkit.cli.dashboard`) presents them.

Modules: :mod:`~fraudkit.dashboard.answers` (the summary, and the registry and comparison
as plain records: what the CLI prints, computed without pandas or MLflow on the fast
path), :mod:`~fraudkit.dashboard.queries` (registry overview, comparison, runs, history as
DataFrames), :mod:`~fraudkit.dashboard.records` (below both: the record types, and the
registry versions both answers are built from, read by either path),
:mod:`~fraudkit.dashboard.export`, :mod:`~fraudkit.dashboard.cleanup`,
:mod:`~fraudkit.dashboard.runs` (reading runs by either path),
:mod:`~fraudkit.dashboard.fastpath` and :mod:`~fraudkit.dashboard.fastregistry` (the
guarded SQL fast path). The public names are importable from here; they load on first
use, so ``import fraudkit.dashboard`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudkit.dashboard.answers import compare_records, registry_records, summarise
    from fraudkit.dashboard.cleanup import (
        CleanupPlan,
        CleanupResult,
        execute_cleanup,
        parse_age,
        plan_cleanup,
    )
    from fraudkit.dashboard.export import (
        EXPORT_FORMATS,
        ExportResult,
        export_runs,
        neutralise_formulas,
    )
    from fraudkit.dashboard.queries import (
        compare_versions,
        history_table,
        model_history,
        registry_overview,
        runs_frame,
        save_history_plot,
    )
    from fraudkit.dashboard.records import DashboardSummary
    from fraudkit.dashboard.runs import KEY_METRIC, RUN_STATUSES, Progress, to_records

# Public name -> submodule that defines it.
_EXPORTS: dict[str, str] = {
    "KEY_METRIC": "runs",
    "RUN_STATUSES": "runs",
    "Progress": "runs",
    "to_records": "runs",
    "DashboardSummary": "records",
    "summarise": "answers",
    "registry_records": "answers",
    "compare_records": "answers",
    "history_table": "queries",
    "registry_overview": "queries",
    "compare_versions": "queries",
    "runs_frame": "queries",
    "model_history": "queries",
    "save_history_plot": "queries",
    "EXPORT_FORMATS": "export",
    "ExportResult": "export",
    "export_runs": "export",
    "neutralise_formulas": "export",
    "CleanupPlan": "cleanup",
    "CleanupResult": "cleanup",
    "parse_age": "cleanup",
    "plan_cleanup": "cleanup",
    "execute_cleanup": "cleanup",
}

__all__ = [
    "EXPORT_FORMATS",
    "KEY_METRIC",
    "RUN_STATUSES",
    "CleanupPlan",
    "CleanupResult",
    "DashboardSummary",
    "ExportResult",
    "Progress",
    "compare_records",
    "compare_versions",
    "execute_cleanup",
    "export_runs",
    "history_table",
    "model_history",
    "neutralise_formulas",
    "parse_age",
    "plan_cleanup",
    "registry_overview",
    "registry_records",
    "runs_frame",
    "save_history_plot",
    "summarise",
    "to_records",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fraudkit.dashboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fraudkit.dashboard.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
