"""``fraudkit dashboard ...``: tables for people, tab-separated lines for pipes, ``--json``.

Thin presentation over :mod:`fraudkit.dashboard`; ``python -m fraudkit.dashboard`` runs
the same group. On a terminal every table is a rich table. When stdout is a pipe or a
file, a table is one header line and then one record per line, fields separated by a tab,
nothing wrapped or cut, so ``grep`` and ``cut -f`` work and ids copy whole; a command that
prints several tables puts a ``# <title>`` line before each, and notes meant for a person
("Wrote plot.png") go to stderr.

``summary``, ``registry`` and ``compare`` answer from the SQL fast path without importing
MLflow or pandas when the store allows (:mod:`fraudkit.dashboard.answers`); keep this
module's imports light for the same reason.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import click

from fraudkit import dashboard as board
from fraudkit.cli.group import FraudkitGroup
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.core.exceptions import DataValidationError
from fraudkit.dashboard.records import EXPERIMENT_COLUMNS, MODEL_COLUMNS, REGISTRY_COLUMNS
from fraudkit.dashboard.runs import KEY_METRIC, RUN_STATUSES

__all__ = [
    "ALL_METRICS",
    "MAX_ROWS",
    "PROGRESS_MIN",
    "dashboard",
    "dashboard_cleanup",
    "dashboard_compare",
    "dashboard_export",
    "dashboard_history",
    "dashboard_registry",
    "dashboard_summary",
    "stdout_is_terminal",
]

MAX_ROWS = 50  # rows a terminal table lists before "... and N more" (pipes get them all)
PROGRESS_MIN = 200  # deletion steps from which cleanup shows a progress bar
ALL_METRICS = "all"  # `history --metric all`: every metric, one line per value

_ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?Z")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
)
_model_option = click.option(
    "--model-name", default=DEFAULT_MODEL_NAME, show_default=True, help="Registered model name."
)


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (rich tables) rather than a pipe or a file (lines)."""
    return sys.stdout.isatty()


def _cell(value: Any) -> str:
    """A value as a terminal table shows it: 4 decimals, timestamps to the second."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str) and (moment := _ISO_TIME.fullmatch(value)):
        return f"{moment.group(1)} {moment.group(2)}"
    return str(value)


def _field(value: Any) -> str:
    """A value as a tab-separated line holds it: whole, on one line, tabs escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value).translate(_ESCAPES)


def _note(message: str) -> None:
    """Tell the person: on stdout at a terminal, on stderr when stdout is a pipe."""
    click.echo(message, err=not stdout_is_terminal())


def _table(
    records: Sequence[Mapping[str, Any]],
    title: str,
    columns: Mapping[str, str] | None = None,
    *,
    fields: Sequence[str] | None = None,
    titled: bool = False,
) -> None:
    """Print JSON-ready ``records``: a rich table on a terminal, tab-separated lines else.

    Parameters
    ----------
    records : sequence of dict
    title : str
        The terminal table's title (and the ``# title`` line of a pipe when ``titled``).
    columns : mapping, optional
        Keys the terminal table shows, to their headings (default: every field).
    fields : sequence of str, optional
        Keys a pipe gets, in order (default: every key of the records).
    titled : bool
        Precede the lines with ``# title`` (commands that print several tables).
    """
    keys = list(fields or dict.fromkeys(k for record in records for k in record))
    if not stdout_is_terminal():
        lines = [f"# {title}"] if titled else []
        lines.append("\t".join(map(_field, keys)))
        lines += ["\t".join(_field(record.get(k)) for k in keys) for record in records]
        click.echo("\n".join(lines))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    columns = columns or {k: k for k in keys}
    table = Table(title=title, title_justify="left")
    for heading in columns.values():
        table.add_column(heading, overflow="fold")  # wrap, never cut, ids
    for record in records[:MAX_ROWS]:
        # Text(), not markup: run names and params may contain "[...]".
        table.add_row(*(Text(_cell(record.get(key))) for key in columns))
    Console().print(table)
    if len(records) > MAX_ROWS:
        click.echo(f"... and {len(records) - MAX_ROWS} more (pipe or --json lists all)")


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
    experiments = [
        {
            **row,
            "by_status": ", ".join(
                f"{row[s.lower()]} {s.lower()}" for s in RUN_STATUSES if row[s.lower()]
            ),
        }
        for row in result.experiment_records
    ]
    headings = {
        "experiment_type": "type",
        "total": "runs",
        "by_status": "by status",
        "latest_run_name": "latest run",
        "latest_start": "started (UTC)",
        "latest_status": "status",
        "best_run_name": "best run",
        f"best_{KEY_METRIC}": KEY_METRIC,
    }
    _table(experiments, "Experiments", headings, fields=EXPERIMENT_COLUMNS, titled=True)
    if stdout_is_terminal() and not result.model_records:
        click.echo("No registered models yet.")
        return
    if not stdout_is_terminal():
        click.echo()  # a blank line between the tables of a pipe
    _table(result.model_records, "Registered models", fields=MODEL_COLUMNS, titled=True)


@dashboard.command("registry")
@_json_option
def dashboard_registry(as_json: bool) -> None:
    """Every registered model version: aliases, creation time, source run, key metrics."""
    records = board.registry_records()
    if as_json:
        _print_json(records)
        return
    if not records:
        _note("No registered models yet.")
        if stdout_is_terminal():
            return
    _table(records, "Model registry", fields=REGISTRY_COLUMNS)


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
    """Production vs Staging (or two versions) side by side, with the differences.

    One line per field (alias, version, run_id, ..., each metric and param), one column
    per version: `compare | grep average_precision` shows the metric side by side.
    """
    records = board.compare_records(model_name, versions=list(versions) if versions else None)
    if as_json:
        _print_json({"model": model_name, "versions": records})
        return
    labels = [str(record["label"]) for record in records]
    sideways = [
        {"field": key, **{label: r.get(key) for label, r in zip(labels, records, strict=True)}}
        for key in records[0]
        if key != "label"
    ]
    if stdout_is_terminal():  # a person reads a difference with its sign
        for row in sideways:
            if isinstance(row.get("difference"), float):
                row["difference"] = f"{row['difference']:+.4f}"
    _table(sideways, f"{model_name}: {' vs '.join(labels[:2])}", fields=["field", *labels])


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
    if result.skipped:
        click.echo(
            f"Left {len(result.skipped)} runs alone that started again or came to back a "
            f"model version since the plan: {', '.join(result.skipped)}."
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
    records = board.to_records(plan.runs)
    fields = list(plan.runs.columns)
    if deleting and plan.to_delete:
        to_delete = [r for r in records if r["action"] == "delete"]
        _table(to_delete, "Runs to delete", columns, fields=fields, titled=True)
    if plan.protected:
        protected = [r for r in records if r["action"] == "protected"]
        headings = {**columns, "reason": "reason"}
        _table(protected, "Protected (not deleted)", headings, fields=fields, titled=True)


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
@click.option(
    "--metric",
    default=KEY_METRIC,
    show_default=True,
    help=f"The metric: one row per version and run, one column per window; "
    f"'{ALL_METRICS}': every metric, one line per value.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the metric over time, one line per version, to this PNG.",
)
@_json_option
def dashboard_history(model_name: str, metric: str, plot: str | None, as_json: bool) -> None:
    """Performance history of every version of a registered model.

    The training evaluation of each version, then what later runs (monitoring windows,
    retraining) measured of it.
    """
    every = metric == ALL_METRICS
    history = board.model_history(model_name, metric=None if every else metric)
    if history.empty and not every:
        recorded = sorted(set(board.model_history(model_name)["metric"]))
        if recorded:
            raise DataValidationError(
                f"no {metric!r} recorded for the versions of {model_name!r}; use --metric "
                f"with one of: {', '.join(recorded)} (or {ALL_METRICS})"
            )
    written = None
    if plot:
        plotted = KEY_METRIC if every else metric
        written = board.save_history_plot(history, plot, metric=plotted)
    if as_json:
        records = board.to_records(history)
        payload = {"model": model_name, "metric": metric, "history": records, "plot": written}
        _print_json(payload)
        return
    if history.empty:
        _note(f"No metrics recorded for the versions of {model_name!r} yet.")
    elif every:
        columns = ["version", "source", "metric", "step", "timestamp", "value", "run_id"]
        records = board.to_records(history)
        _table(records, f"{model_name}: performance history", fields=columns)
    else:
        table = board.history_table(history, metric)
        title = f"{model_name}: {metric} by version and window"
        _table(board.to_records(table), title, fields=[str(c) for c in table.columns])
    if written:
        _note(f"Wrote {written}")
