"""``fraudkit run | pipeline | notebooks | report | ui``: notebooks, the report index and
the MLflow UI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

__all__ = [
    "notebooks_group",
    "pipeline_command",
    "report_command",
    "run_command",
    "ui_command",
]

# `--notebooks-dir DIR` is FRAUDKIT_NOTEBOOKS_DIR for one command: the runner, the kernels it
# starts and a sweep's workers all read the variable.
_notebooks_dir_option = click.option(
    "--notebooks-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Run the notebooks of this folder (`fraudkit notebooks copy` makes one); "
    "default FRAUDKIT_NOTEBOOKS_DIR, else the kit's own.",
)


def _use_notebooks_dir(folder: Path | None) -> None:
    if folder is not None:
        from fraudkit.core.config import ENV_NOTEBOOKS_DIR

        os.environ[ENV_NOTEBOOKS_DIR] = str(folder.resolve())


def _echo_run(run: Any) -> None:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(run.metrics.items()))
    click.echo(f"{run.notebook}: {run.status} run {run.run_id} ({run.duration_s:.1f} s) {metrics}")
    click.echo(f"  report: {run.html_report}")


@click.command("run")
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
@_notebooks_dir_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_command(
    notebook: str,
    pairs: tuple,
    parameters_file: str | None,
    timeout: float | None,
    notebooks_dir: Path | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Execute NOTEBOOK (training, model_comparison, ab_testing, monitoring, retraining)."""
    import yaml

    from fraudkit.runner.execution import run_notebook

    _use_notebooks_dir(notebooks_dir)
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


@click.command("pipeline")
@click.option("--quick", is_flag=True, help="Small data: the whole pipeline in about a minute.")
@click.option(
    "-f",
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML mapping notebook name -> parameters.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False),
    help=(
        "A CSV or Parquet file of transactions every notebook reads instead of simulating "
        "(the A/B test and monitoring then read rows the models trained on: a demonstration, "
        "not an evaluation)."
    ),
)
@click.option(
    "--schema",
    metavar="NAME|FILE",
    help="The data's schema: kaggle (default), handbook (the entity simulator) or a YAML file.",
)
@_notebooks_dir_option
@click.option("--quiet", is_flag=True, help="No per-cell progress bars.")
def pipeline_command(
    quick: bool,
    config_file: str | None,
    data_path: str | None,
    schema: str | None,
    notebooks_dir: Path | None,
    quiet: bool,
) -> None:
    """Run the notebooks in order under one pipeline id, then rebuild reports/index.html."""
    from fraudkit.core.exceptions import NotebookExecutionError
    from fraudkit.runner.pipeline import load_pipeline_config, run_pipeline

    _use_notebooks_dir(notebooks_dir)
    overrides = load_pipeline_config(config_file) if config_file else None
    try:
        result = run_pipeline(
            quick=quick,
            parameters=overrides,
            progress=not quiet,
            on_start=lambda name: click.echo(f"== {name}"),
            data_path=data_path,
            schema=schema,
        )
    except NotebookExecutionError:
        from fraudkit.core.config import reports_dir

        click.echo(f"Report index: {reports_dir() / 'index.html'}", err=True)
        raise
    for run in result.runs:
        _echo_run(run)
    click.echo(f"pipeline {result.pipeline_id}: {len(result.runs)} notebooks")
    click.echo(f"Report index: {result.index}")


@click.group("notebooks")
def notebooks_group() -> None:
    """The kit's notebooks, to open and edit in JupyterLab."""


@notebooks_group.command("copy")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Copy into a folder that is not empty.")
def notebooks_copy_command(folder: Path, force: bool) -> None:
    """Copy the five notebooks into FOLDER, for `fraudkit run` to execute once edited."""
    from fraudkit.runner.execution import KERNEL_DISPLAY_NAME, ensure_kernel
    from fraudkit.runner.parameters import copy_notebooks

    copies = copy_notebooks(folder, force=force)
    ensure_kernel()  # an editable install has none until then: JupyterLab lists it now
    for copy in copies:
        click.echo(f"copied {copy}")
    where = copies[0].parent
    click.echo(f"Open them with `jupyter lab {where}` (kernel: {KERNEL_DISPLAY_NAME}).")
    click.echo(
        f"To run the copies, set FRAUDKIT_NOTEBOOKS_DIR={where} (or pass --notebooks-dir {where})."
    )


@click.command("report")
def report_command() -> None:
    """Rebuild reports/index.html from the tracking store."""
    from fraudkit.reports.index import build_report_index

    click.echo(f"Report index: {build_report_index()}")


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server worker processes.",
)
def ui_command(host: str, port: int, workers: int) -> None:
    """Open the MLflow UI on the kit's tracking store, in its machine-learning view.

    Stops with everything it started on Ctrl+C or SIGTERM. MLflow's GenAI job runner stays
    off unless MLFLOW_SERVER_ENABLE_JOB_EXECUTION is set.
    """
    from fraudkit.core.config import artifact_root, is_remote, redact_uri, tracking_uri
    from fraudkit.tracking.ui import kit_experiment_urls, run_server, server_command, server_url

    uri = tracking_uri()
    if is_remote(uri):
        raise click.UsageError(
            f"the store is a tracking server already; open {redact_uri(uri)} in a browser"
        )
    # The store URI may hold a database password: it goes to the server in its
    # environment, which stays private to the user, where `ps` shows a command line to all.
    command, env = server_command(host, port, uri, artifact_root(uri), workers=workers)
    base = server_url(host, port)
    links = kit_experiment_urls(base)
    click.echo(f"MLflow UI for {redact_uri(uri)} on {base} (Ctrl+C to stop)")
    click.echo("Experiments, machine-learning view:")
    width = max(map(len, links), default=0)
    for name, link in links.items():
        click.echo(f"  {name:<{width}}  {link}")
    # The server writes to the same stdout; a file or pipe must get the banner first.
    sys.stdout.flush()
    outcome = run_server(command, env)
    if outcome.forced:
        click.echo("MLflow UI: processes that ignored SIGTERM were killed", err=True)
    sys.exit(outcome.exit_code)
