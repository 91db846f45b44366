"""``fraudkit dashboard ...``: tables for people, ``--json`` for scripts.

Thin presentation over :mod:`fraudkit.dashboard`; ``python -m fraudkit.dashboard`` runs
the same group.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import click

from fraudkit import dashboard as board
from fraudkit.cli.group import FraudkitGroup
from fraudkit.config import DEFAULT_MODEL_NAME

__all__ = [
    "MAX_ROWS",
    "PROGRESS_MIN",
    "dashboard",
    "dashboard_cleanup",
    "dashboard_compare",
    "dashboard_export",
    "dashboard_history",
    "dashboard_registry",
    "dashboard_summary",
]

MAX_ROWS = 50  # rows a table lists before "... and N more"
PROGRESS_MIN = 200  # deletion steps from which cleanup shows a progress bar

_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
)
_model_option = click.option(
    "--model-name", default=DEFAULT_MODEL_NAME, show_default=True, help="Registered model name."
)


def _cell(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, str | list | tuple) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _table(frame: Any, title: str, columns: dict[str, str] | None = None) -> None:
    """Print ``frame`` as a rich table; ``columns`` maps the columns to show to headings."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    columns = columns or {str(c): str(c) for c in frame.columns}
    shown = frame.head(MAX_ROWS)
    table = Table(title=title, title_justify="left")
    for heading in columns.values():
        table.add_column(heading, overflow="fold")  # wrap, never cut, ids
    for row in shown[list(columns)].itertuples(index=False):
        # Text(), not markup: run names and params may contain "[...]".
        table.add_row(*(Text(_cell(v)) for v in row))
    console = Console()
    if not console.is_terminal:  # piped or captured: no screen width to respect
        console = Console(width=max(console.width, 160))
    console.print(table)
    if len(frame) > len(shown):
        click.echo(f"... and {len(frame) - len(shown)} more (--json lists all)")


def _print_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


@click.group(cls=FraudkitGroup)
def dashboard() -> None:
    """Summaries of experiments, the model registry and model history."""


@dashboard.command("summary")
@_json_option
def dashboard_summary(as_json: bool) -> None:
    """Runs per experiment type (counts, latest, best) and registered models."""
    result = board.summarise()
    if as_json:
        _print_json(result.to_dict())
        return
    experiments = result.experiments.assign(
        by_status=[
            ", ".join(f"{row[s.lower()]} {s.lower()}" for s in board.RUN_STATUSES if row[s.lower()])
            for _, row in result.experiments.iterrows()
        ]
    )
    headings = {
        "experiment_type": "type",
        "total": "runs",
        "by_status": "by status",
        "latest_run_name": "latest run",
        "latest_start": "started (UTC)",
        "latest_status": "status",
        "best_run_name": "best run",
        f"best_{board.KEY_METRIC}": board.KEY_METRIC,
    }
    _table(experiments, "Experiments", headings)
    if result.models.empty:
        click.echo("No registered models yet.")
    else:
        _table(result.models, "Registered models")


@dashboard.command("registry")
@_json_option
def dashboard_registry(as_json: bool) -> None:
    """Every registered model version: aliases, creation time, source run, key metrics."""
    overview = board.registry_overview()
    if as_json:
        _print_json(board.to_records(overview))
    elif overview.empty:
        click.echo("No registered models yet.")
    else:
        _table(overview, "Model registry")


@dashboard.command("compare")
@_model_option
@click.option(
    "--versions",
    nargs=2,
    default=None,
    metavar="V1 V2",
    help="Compare these two versions instead of Production vs Staging.",
)
@_json_option
def dashboard_compare(model_name: str, versions: tuple[str, str] | None, as_json: bool) -> None:
    """Production vs Staging (or two versions) side by side, with the differences."""
    frame = board.compare_versions(model_name, versions=list(versions) if versions else None)
    if as_json:
        _print_json({"model": model_name, "versions": board.to_records(frame.reset_index())})
        return
    sideways = frame.T.reset_index(names="field")
    sideways.columns = [str(c) for c in sideways.columns]
    _table(sideways, f"{model_name}: {' vs '.join(map(str, frame.index[:2]))}")


@dashboard.command("export")
@click.option("--experiment-type", default=None, help="training, ab_testing, ... (default: all).")
@click.option(
    "--output-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Destination; .csv, .parquet or .json picks the format.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"], case_sensitive=False),
    default=None,
    help="Override the format the file suffix implies.",
)
@click.option(
    "--filter", "filter_string", default=None, help="MLflow filter, e.g. \"status = 'FINISHED'\"."
)
@_json_option
def dashboard_export(
    experiment_type: str | None,
    output_file: str,
    fmt: str | None,
    filter_string: str | None,
    as_json: bool,
) -> None:
    """Write runs with their params, metrics and tags to CSV, Parquet or JSON."""
    result = board.export_runs(output_file, experiment_type, fmt=fmt, filter_string=filter_string)
    if as_json:
        _print_json(result.to_dict())
    else:
        click.echo(
            f"Exported {result.rows} runs ({result.columns} columns) as {result.format} to "
            f"{result.path}"
        )


@dashboard.command("cleanup")
@click.option("--experiment-type", required=True, help="training, ab_testing, ...")
@click.option(
    "--keep-last-n", type=click.IntRange(min=0), default=None, help="Keep the newest N runs."
)
@click.option("--older-than", default=None, help="Only delete runs older than this (30d, 12h, 2w).")
@click.option("--yes", is_flag=True, help="Delete; without it this is a dry run.")
@click.option(
    "--permanent",
    is_flag=True,
    help="Also purge the runs, their logged models and artifacts with `mlflow gc`.",
)
@_json_option
def dashboard_cleanup(
    experiment_type: str,
    keep_last_n: int | None,
    older_than: str | None,
    yes: bool,
    permanent: bool,
    as_json: bool,
) -> None:
    """Soft-delete old runs, never RUNNING ones or those behind a model version.

    A dry run unless --yes.
    """
    plan = board.plan_cleanup(
        experiment_type, keep_last_n=keep_last_n, older_than=older_than, permanent=permanent
    )
    how = "permanently delete" if permanent else "delete"
    if not yes:
        if as_json:
            _print_json({**plan.to_dict(), "dry_run": True})
            return
        click.echo(
            f"Dry run: would {how} {len(plan.to_delete)} of {len(plan.runs)} runs in "
            f"{plan.experiment_type!r} (keep {len(plan.kept)}, protected "
            f"{len(plan.protected)}). Re-run with --yes to {how} them."
        )
        _plan_tables(plan)
        return
    steps = len(plan.to_delete) * (2 if permanent else 1)
    with _progress(steps, f"Deleting {len(plan.to_delete)} runs") as advance:
        result = board.execute_cleanup(plan, progress=advance)
    if as_json:
        _print_json({**result.to_dict(), "dry_run": False})
        return
    done = "Permanently deleted" if permanent else "Deleted"
    click.echo(
        f"{done} {len(result.deleted)} runs in {plan.experiment_type!r}; kept "
        f"{len(plan.kept)}, protected {len(plan.protected)}."
    )
    if result.logged_models_deleted:
        click.echo(f"Permanently deleted {len(result.logged_models_deleted)} logged models.")
    if result.artifacts_not_deleted:
        n = len(result.artifacts_not_deleted)
        click.echo(f"Artifacts of {n} runs or logged models could not be removed.")
    _plan_tables(plan, deleting=False)


def _plan_tables(plan: board.CleanupPlan, deleting: bool = True) -> None:
    columns = {
        "run_id": "run id",
        "run_name": "name",
        "start_time": "started (UTC)",
        "status": "status",
    }
    runs = plan.runs
    if deleting and plan.to_delete:
        _table(runs[runs["action"] == "delete"], "Runs to delete", columns)
    if plan.protected:
        protected = runs[runs["action"] == "protected"]
        _table(protected, "Protected (not deleted)", {**columns, "reason": "reason"})


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield a callback advancing a rich progress bar on stderr (none for small jobs)."""
    if total < PROGRESS_MIN:
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task, done)


@dashboard.command("history")
@_model_option
@click.option("--metric", default=None, help="Only this metric (the plot: average_precision).")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the metric over time, one line per version, to this PNG.",
)
@_json_option
def dashboard_history(model_name: str, metric: str | None, plot: str | None, as_json: bool) -> None:
    """Performance history of every version of a registered model."""
    history = board.model_history(model_name, metric=metric)
    written = None
    if plot:
        written = board.save_history_plot(history, plot, metric=metric or board.KEY_METRIC)
    if as_json:
        payload = {"model": model_name, "history": board.to_records(history), "plot": written}
        _print_json(payload)
        return
    if history.empty:
        click.echo(f"No metrics recorded for the versions of {model_name!r} yet.")
    else:
        columns = ["version", "source", "metric", "step", "timestamp", "value", "run_id"]
        _table(history, f"{model_name}: performance history", {c: c for c in columns})
    if written:
        click.echo(f"Wrote {written}")
