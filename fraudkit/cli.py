"""The ``fraudkit`` command line: a thin click layer over the library.

Exit codes: 0 ok, 1 user error (bad option, unknown experiment type or model, failed
notebook), 2 tracking store unreachable. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from fraudkit.exceptions import FraudkitError, TrackingUnavailableError

EXIT_OK, EXIT_USER_ERROR, EXIT_UNREACHABLE = 0, 1, 2


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class _FraudkitGroup(click.Group):
    """A click group that maps fraudkit's errors to exit codes and one-line messages."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(f"{exc.format_message()}{hint}", EXIT_USER_ERROR)
        except click.Abort:
            _fail("aborted", EXIT_USER_ERROR)
        except TrackingUnavailableError as exc:
            _fail(str(exc), EXIT_UNREACHABLE)
        except FraudkitError as exc:
            _fail(str(exc), EXIT_USER_ERROR)
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if not isinstance(exc, MlflowException):
                raise
            from fraudkit.config import tracking_uri
            from fraudkit.tracking import _store_error

            error = _store_error(exc, tracking_uri())
            code = EXIT_UNREACHABLE if isinstance(error, TrackingUnavailableError) else 1
            _fail(str(error), code)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


@click.group(cls=_FraudkitGroup)
@click.version_option(package_name="fraudkit")
def cli() -> None:
    """fraudkit: notebooks, MLflow records and a dashboard for credit-card fraud research."""


# --- dashboard commands (owned by fraudkit.dashboard's author) ---


@cli.group(cls=_FraudkitGroup)
def dashboard() -> None:
    """Summaries of experiments, the model registry and model history."""


# Imports used only by the dashboard commands, kept inside this section.
import contextlib  # noqa: E402
import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from fraudkit.config import DEFAULT_MODEL_NAME  # noqa: E402

_DASH_MAX_ROWS = 50  # rows a plan table lists before "... and N more"
_DASH_PROGRESS_MIN = 200  # deletions from which cleanup shows a progress bar

_dash_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
)
_dash_model_option = click.option(
    "--model-name", default=DEFAULT_MODEL_NAME, show_default=True, help="Registered model name."
)


def _dash_cell(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, str | list | tuple) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _dash_table(frame: Any, title: str, columns: dict[str, str] | None = None) -> None:
    """Print ``frame`` as a rich table; ``columns`` maps the columns to show to headings."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    columns = columns or {str(c): str(c) for c in frame.columns}
    shown = frame.head(_DASH_MAX_ROWS)
    table = Table(title=title, title_justify="left")
    for heading in columns.values():
        table.add_column(heading, overflow="fold")  # wrap, never cut, ids
    for row in shown[list(columns)].itertuples(index=False):
        # Text(), not markup: run names and params may contain "[...]".
        table.add_row(*(Text(_dash_cell(v)) for v in row))
    console = Console()
    if not console.is_terminal:  # piped or captured: no screen width to respect
        console = Console(width=max(console.width, 160))
    console.print(table)
    if len(frame) > len(shown):
        click.echo(f"... and {len(frame) - len(shown)} more (--json lists all)")


def _dash_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


@dashboard.command("summary")
@_dash_json_option
def dashboard_summary(as_json: bool) -> None:
    """Runs per experiment type (counts, latest, best) and registered models."""
    from fraudkit import dashboard as board

    result = board.summarize()
    if as_json:
        _dash_json(result.to_dict())
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
    _dash_table(experiments, "Experiments", headings)
    if result.models.empty:
        click.echo("No registered models yet.")
    else:
        _dash_table(result.models, "Registered models")


@dashboard.command("registry")
@_dash_json_option
def dashboard_registry(as_json: bool) -> None:
    """Every registered model version: aliases, creation time, source run, key metrics."""
    from fraudkit import dashboard as board

    overview = board.registry_overview()
    if as_json:
        _dash_json(board.to_records(overview))
    elif overview.empty:
        click.echo("No registered models yet.")
    else:
        _dash_table(overview, "Model registry")


@dashboard.command("compare")
@_dash_model_option
@click.option(
    "--versions",
    nargs=2,
    default=None,
    metavar="V1 V2",
    help="Compare these two versions instead of Production vs Staging.",
)
@_dash_json_option
def dashboard_compare(model_name: str, versions: tuple[str, str] | None, as_json: bool) -> None:
    """Production vs Staging (or two versions) side by side, with the differences."""
    from fraudkit import dashboard as board

    frame = board.compare_versions(model_name, versions=list(versions) if versions else None)
    if as_json:
        _dash_json({"model": model_name, "versions": board.to_records(frame.reset_index())})
        return
    sideways = frame.T.reset_index(names="field")
    sideways.columns = [str(c) for c in sideways.columns]
    _dash_table(sideways, f"{model_name}: {' vs '.join(map(str, frame.index[:2]))}")


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
@_dash_json_option
def dashboard_export(
    experiment_type: str | None,
    output_file: str,
    fmt: str | None,
    filter_string: str | None,
    as_json: bool,
) -> None:
    """Write runs with their params, metrics and tags to CSV, Parquet or JSON."""
    from fraudkit import dashboard as board

    result = board.export_runs(output_file, experiment_type, fmt=fmt, filter_string=filter_string)
    if as_json:
        _dash_json(result.to_dict())
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
    "--permanent", is_flag=True, help="Also purge the runs and artifacts, as `mlflow gc` does."
)
@_dash_json_option
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
    from fraudkit import dashboard as board

    plan = board.plan_cleanup(
        experiment_type, keep_last_n=keep_last_n, older_than=older_than, permanent=permanent
    )
    how = "permanently delete" if permanent else "delete"
    if not yes:
        if as_json:
            _dash_json({**plan.to_dict(), "dry_run": True})
            return
        click.echo(
            f"Dry run: would {how} {len(plan.to_delete)} of {len(plan.runs)} runs in "
            f"{plan.experiment_type!r} (keep {len(plan.kept)}, protected "
            f"{len(plan.protected)}). Re-run with --yes to {how} them."
        )
        _dash_plan_tables(plan)
        return
    steps = len(plan.to_delete) * (2 if permanent else 1)
    with _dash_progress(steps, f"Deleting {len(plan.to_delete)} runs") as advance:
        result = board.execute_cleanup(plan, progress=advance)
    if as_json:
        _dash_json({**result.to_dict(), "dry_run": False})
        return
    done = "Permanently deleted" if permanent else "Deleted"
    click.echo(
        f"{done} {len(result.deleted)} runs in {plan.experiment_type!r}; kept "
        f"{len(plan.kept)}, protected {len(plan.protected)}."
    )
    if result.artifacts_not_deleted:
        click.echo(f"Artifacts of {len(result.artifacts_not_deleted)} runs could not be removed.")
    _dash_plan_tables(plan, deleting=False)


def _dash_plan_tables(plan: Any, deleting: bool = True) -> None:
    columns = {
        "run_id": "run id",
        "run_name": "name",
        "start_time": "started (UTC)",
        "status": "status",
    }
    runs = plan.runs
    if deleting and plan.to_delete:
        _dash_table(runs[runs["action"] == "delete"], "Runs to delete", columns)
    if plan.protected:
        protected = runs[runs["action"] == "protected"]
        _dash_table(protected, "Protected (not deleted)", {**columns, "reason": "reason"})


@contextlib.contextmanager
def _dash_progress(total: int, label: str) -> Iterator[Any]:
    """Yield a callback advancing a rich progress bar on stderr (none for small jobs)."""
    if total < _DASH_PROGRESS_MIN:
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.advance(task, done)


@dashboard.command("history")
@_dash_model_option
@click.option("--metric", default=None, help="Only this metric (the plot: average_precision).")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the metric over time, one line per version, to this PNG.",
)
@_dash_json_option
def dashboard_history(model_name: str, metric: str | None, plot: str | None, as_json: bool) -> None:
    """Performance history of every version of a registered model."""
    from fraudkit import dashboard as board

    history = board.model_history(model_name, metric=metric)
    written = None
    if plot:
        written = board.save_history_plot(history, plot, metric=metric or board.KEY_METRIC)
    if as_json:
        payload = {"model": model_name, "history": board.to_records(history), "plot": written}
        _dash_json(payload)
        return
    if history.empty:
        click.echo(f"No metrics recorded for the versions of {model_name!r} yet.")
    else:
        columns = ["version", "source", "metric", "step", "timestamp", "value", "run_id"]
        _dash_table(history, f"{model_name}: performance history", {c: c for c in columns})
    if written:
        click.echo(f"Wrote {written}")


# --- end dashboard commands ---


# --- notebook commands ---


def _echo_run(run: Any) -> None:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(run.metrics.items()))
    click.echo(f"{run.notebook}: {run.status} run {run.run_id} ({run.duration_s:.1f} s) {metrics}")
    click.echo(f"  report: {run.html_report}")


@cli.command("run")
@click.argument("notebook")
@click.option(
    "-p",
    "--parameter",
    "pairs",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A notebook parameter (repeatable); values are read as YAML scalars.",
)
@click.option(
    "-f",
    "--parameters-file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file of parameters; -p values override it.",
)
@click.option("--timeout", type=float, default=None, help="Per-cell timeout in seconds.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_command(
    notebook: str,
    pairs: tuple,
    parameters_file: str | None,
    timeout: float | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Execute NOTEBOOK (training, model_comparison, ab_testing, monitoring, retraining)."""
    import json

    import yaml

    from fraudkit.notebooks import run_notebook

    parameters: dict[str, Any] = {}
    if parameters_file:
        try:
            with open(parameters_file, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            # PyYAML's messages span several lines; errors here are one line.
            raise click.BadParameter(
                f"not valid YAML: {' '.join(str(exc).split())}", param_hint="--parameters-file"
            ) from exc
        if not isinstance(loaded, dict):
            raise click.BadParameter(
                "must hold a mapping of parameter names to values", param_hint="--parameters-file"
            )
        parameters.update(loaded)
    parameters.update(dict(pairs))
    result = run_notebook(notebook, parameters, timeout=timeout, progress=not quiet)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _echo_run(result)


@cli.command("pipeline")
@click.option("--quick", is_flag=True, help="Small data: the whole pipeline in about a minute.")
@click.option(
    "-f",
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML mapping notebook name -> parameters.",
)
@click.option("--quiet", is_flag=True, help="No per-cell progress bars.")
def pipeline_command(quick: bool, config_file: str | None, quiet: bool) -> None:
    """Run the notebooks in order under one pipeline id, then rebuild reports/index.html."""
    from fraudkit.exceptions import NotebookExecutionError
    from fraudkit.notebooks import load_pipeline_config, run_pipeline

    overrides = load_pipeline_config(config_file) if config_file else None
    try:
        result = run_pipeline(
            quick=quick,
            parameters=overrides,
            progress=not quiet,
            on_start=lambda name: click.echo(f"== {name}"),
        )
    except NotebookExecutionError:
        from fraudkit.config import reports_dir

        click.echo(f"Report index: {reports_dir() / 'index.html'}", err=True)
        raise
    for run in result.runs:
        _echo_run(run)
    click.echo(f"pipeline {result.pipeline_id}: {len(result.runs)} notebooks")
    click.echo(f"Report index: {result.index}")


@cli.command("report")
def report_command() -> None:
    """Rebuild reports/index.html from the tracking store."""
    from fraudkit.notebooks import build_report_index

    click.echo(f"Report index: {build_report_index()}")


@cli.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=int)
def ui_command(host: str, port: int) -> None:
    """Open the MLflow UI on the kit's tracking store."""
    import subprocess

    from fraudkit.config import artifact_root, is_remote, redact_uri, tracking_uri

    uri = tracking_uri()
    if is_remote(uri):
        raise click.UsageError(
            f"the store is a tracking server already; open {redact_uri(uri)} in a browser"
        )
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    root = artifact_root(uri)
    if root:
        command += ["--default-artifact-root", root]
    click.echo(f"MLflow UI for {redact_uri(uri)} on http://{host}:{port} (Ctrl+C to stop)")
    sys.exit(subprocess.call(command))


def main() -> None:
    """Console-script entry point."""
    cli()
