"""The pipeline: the kit's notebooks in order under one pipeline id, then the report index.

Retraining runs only when monitoring recommends it. :func:`load_pipeline_config` reads
per-notebook parameters from YAML; :data:`QUICK_PARAMETERS` are the small sizes of
``fraudkit pipeline --quick`` and ``make demo``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fraudkit.core.exceptions import ConfigurationError
from fraudkit.core.tags import SUMMARY_TAG_PREFIX
from fraudkit.reports.index import build_report_index
from fraudkit.runner.execution import NotebookRun, run_notebook
from fraudkit.runner.parameters import NOTEBOOKS, available_notebooks, notebook_parameters

if TYPE_CHECKING:
    from fraudkit.tracking.manager import MlflowManager

__all__ = [
    "PIPELINE_PARAMETERS",
    "QUICK_PARAMETERS",
    "PipelineResult",
    "load_pipeline_config",
    "run_pipeline",
]

# Small sizes for `fraudkit pipeline --quick` / `make demo`; only the parameters a notebook
# declares are passed to it.
# The pipeline tells a story: a logistic-regression baseline goes to production first, the
# comparison finds a stronger candidate for staging, and the A/B test decides on promotion.
PIPELINE_PARAMETERS: dict[str, dict[str, Any]] = {
    "training": {"model_type": "logistic_regression", "run_label": "baseline"},
}
# Training sizes keep 30 frauds or more in each evaluated period
# (fraudkit.science.metrics.MIN_FRAUDS), so the quick demo's numbers carry no small-sample warning.
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


def _retraining_recommended(manager: MlflowManager, run: NotebookRun) -> bool:
    tags = manager.client.get_run(run.run_id).data.tags
    return tags.get(f"{SUMMARY_TAG_PREFIX}retraining_recommended") == "True"


def run_pipeline(
    *,
    quick: bool = False,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    on_start: Callable[[str], None] | None = None,
    manager: MlflowManager | str | None = None,
    data_path: str | os.PathLike | None = None,
    schema: str | os.PathLike | None = None,
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
    manager : MlflowManager or str, optional
        The tracking store (a manager or a tracking URI); default the shared manager.
    data_path : str or os.PathLike, optional
        A transaction file every notebook reads instead of simulating (their
        ``data_path``); monitoring cuts it into windows.
    schema : str or os.PathLike, optional
        A preset name (``kaggle``, ``handbook``) or a schema file, passed as every
        notebook's ``schema``; e.g. ``handbook`` runs the whole story on the entity
        simulator.

    Raises
    ------
    NotebookExecutionError
        The first notebook that failed (after the index was rebuilt).
    """
    from fraudkit.tracking.manager import resolve_manager

    store = resolve_manager(manager)
    pipeline_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    runs: list[NotebookRun] = []
    overrides = {k: dict(v) for k, v in (parameters or {}).items()}
    shared = {"data_path": data_path, "schema": schema}
    shared = {k: os.fspath(v) for k, v in shared.items() if v is not None}
    try:
        for name in available_notebooks():
            declared = notebook_parameters(name)
            defaults = {**PIPELINE_PARAMETERS.get(name, {})}
            defaults.update(QUICK_PARAMETERS.get(name, {}) if quick else {})
            chosen = {k: v for k, v in {**defaults, **shared}.items() if k in declared}
            chosen.update(overrides.get(name, {}))
            if name == "retraining":
                monitoring = next((r for r in runs if r.notebook == "monitoring"), None)
                if monitoring is None or not _retraining_recommended(store, monitoring):
                    continue
                if "monitoring_run_id" in declared:
                    chosen["monitoring_run_id"] = monitoring.run_id
            if on_start:
                on_start(name)
            runs.append(
                run_notebook(
                    name, chosen, pipeline_id=pipeline_id, progress=progress, manager=store
                )
            )
    finally:
        index = build_report_index(manager=store)
    return PipelineResult(pipeline_id=pipeline_id, runs=tuple(runs), index=index)
