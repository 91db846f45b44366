"""A sweep's results: each point's outcome, the table, the HTML report, their copies.

:class:`PointOutcome` and :class:`SweepResult` (re-exported by :mod:`fraudkit.sweeps.run`) hold
what became of each point. :func:`results_table` lays out one row per point (its varied
parameters, status, key metrics and run id); :func:`log_results` logs it on the sweep run
as ``sweep/results.csv`` and ``sweep/results.parquet`` with a self-contained HTML report
(``sweep/report.html``: the table, and each key metric against each varied parameter,
images embedded), then copies that report from the tracking store into
``reports/sweeps/<sweep run name>/report.html``. :func:`copy_run_reports` does the same for
each point's run: the executed notebook and reports travel as MLflow artifacts, so the
client's ``reports/`` never depends on the workers' disks.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.core.tags import ERROR_TAG, REPORT_DIR_TAG
from fraudkit.reports.run_pages import RESULT_METRICS
from fraudkit.reports.sweep_page import render_sweep_report, sweep_report_path
from fraudkit.tracking.store import quiet_downloads

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run


__all__ = [
    "REPORT_ARTIFACT",
    "RESULTS_CSV",
    "RESULTS_PARQUET",
    "PointOutcome",
    "SweepResult",
    "copy_run_reports",
    "log_results",
    "outcome_of_run",
    "results_table",
]

RESULTS_CSV = "sweep/results.csv"
RESULTS_PARQUET = "sweep/results.parquet"
REPORT_ARTIFACT = "sweep/report.html"

# The table's fixed columns; the varied parameters come before them, the metrics after.
_FIXED = ("index", "status")


# -- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PointOutcome:
    """What became of one point: its child run, status and key metrics.

    ``status`` is FINISHED, FAILED, KILLED (its run was interrupted) or CANCELLED (not run).
    """

    index: int
    point: dict[str, Any]
    run_id: str | None
    status: str
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class SweepResult:
    """Result of :func:`run_sweep`: one outcome per point, the results table and report."""

    sweep_run_id: str
    notebook: str
    outcomes: list[PointOutcome]
    table: pd.DataFrame
    report: Path | None
    interrupted: bool = False

    @property
    def finished(self) -> int:
        """The number of points that finished."""
        return sum(o.status == "FINISHED" for o in self.outcomes)

    @property
    def failed(self) -> list[PointOutcome]:
        """The points that did not finish (failed, killed or cancelled)."""
        return [o for o in self.outcomes if o.status != "FINISHED"]

    @property
    def exit_code(self) -> int:
        """0 when every point finished, 1 otherwise."""
        return 0 if not self.failed else 1


def outcome_of_run(index: int, point: dict[str, Any], run: Run) -> PointOutcome:
    """Return the outcome a point's finished (or ended) run records."""
    metrics = {k: v for k, v in run.data.metrics.items() if k in RESULT_METRICS}
    error = run.data.tags.get(ERROR_TAG)
    return PointOutcome(index, point, run.info.run_id, run.info.status, error, metrics)


# -- the table and the report --------------------------------------------------------


def _cell(value: Any) -> Any:
    # Lists and mappings (cases may vary them) become JSON text: Parquet needs one type a column.
    return (
        value if isinstance(value, str | int | float | bool) or value is None else json.dumps(value)
    )


def results_table(outcomes: Sequence[PointOutcome]) -> pd.DataFrame:
    """Return one row per point: index, varied parameters, status, key metrics, run id.

    Metrics are those of :data:`fraudkit.reports.run_pages.RESULT_METRICS` that some point
    reported, in that order; a point without a value (failed, cancelled) has NaN.
    """
    import pandas as pd

    names = list(dict.fromkeys(k for o in outcomes for k in o.point))
    metrics = [m for m in RESULT_METRICS if any(m in o.metrics for o in outcomes)]
    rows = [
        {
            "index": o.index,
            **{n: _cell(o.point.get(n)) for n in names},
            "status": o.status,
            **{m: o.metrics.get(m, float("nan")) for m in metrics},
            "run_id": o.run_id,
        }
        for o in outcomes
    ]
    return pd.DataFrame(rows, columns=[*_FIXED[:1], *names, _FIXED[1], *metrics, "run_id"])


def log_results(client: MlflowClient, run: Run, notebook: str, table: pd.DataFrame) -> Path:
    """Log the table (CSV, Parquet) and the report on the sweep run; copy the report to reports/.

    Returns
    -------
    Path
        The client's copy of the report, downloaded from the tracking store.
    """
    run_id, name = run.info.run_id, run.info.run_name or run.info.run_id
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "sweep"
        folder.mkdir()
        table.to_csv(folder / "results.csv", index=False)
        table.to_parquet(folder / "results.parquet", index=False)
        render_sweep_report(
            table, notebook=notebook, run_id=run_id, title=name, destination=folder / "report.html"
        )
        client.log_artifacts(run_id, str(folder), artifact_path="sweep")
    target = sweep_report_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, quiet_downloads():
        shutil.copyfile(client.download_artifacts(run_id, REPORT_ARTIFACT, scratch), target)
    return target


def copy_run_reports(client: MlflowClient, run_id: str | None) -> Path | None:
    """Copy a point run's ``notebook/`` artifacts into its folder of the client's reports/.

    The folder is the one the run's ``fraudkit.report_dir`` tag names (as the report index
    reads it). A run without reports (it never started), or a copy that fails, is skipped
    with a warning: the files stay in the tracking store.

    Returns
    -------
    Path or None
        The folder written, or None.
    """
    from mlflow.exceptions import MlflowException

    if run_id is None:
        return None
    try:
        relative = client.get_run(run_id).data.tags.get(REPORT_DIR_TAG)
        if not relative:
            return None
        target = (config.reports_dir() / relative).resolve()
        if not target.is_relative_to(config.reports_dir().resolve()):  # a tag is any text
            raise OSError(f"its report folder tag {relative!r} leads out of the reports folder")
        with tempfile.TemporaryDirectory() as scratch, quiet_downloads():
            downloaded = client.download_artifacts(run_id, "notebook", scratch)
            shutil.copytree(downloaded, target, dirs_exist_ok=True)
    except (MlflowException, OSError) as exc:
        warnings.warn(
            f"could not copy the reports of run {run_id} into {config.reports_dir()}: {exc}; "
            "they remain artifacts of the run",
            stacklevel=2,
        )
        return None
    return target
