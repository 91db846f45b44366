"""``fraudkit sweep``: one notebook over a grid of parameters, in parallel on Dask."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

__all__ = ["progress_display", "sweep_command"]


def _echo_summary(result: Any) -> None:
    total = len(result.outcomes)
    click.echo(
        f"sweep {result.sweep_run_id} ({result.notebook}): {result.finished} of {total} "
        "points finished"
    )
    for outcome in result.failed:
        run = f"run {outcome.run_id}" if outcome.run_id else "no run"
        reason = f": {outcome.error}" if outcome.error else ""
        click.echo(
            f"  point {outcome.index} {json.dumps(outcome.point, default=str)}: "
            f"{outcome.status}, {run}{reason}"
        )
    if result.report is not None:
        click.echo(f"  report: {result.report}")
    if result.interrupted:
        click.echo(
            f"interrupted: {result.finished} of {total} points finished; run the rest with "
            f"`fraudkit sweep --resume {result.sweep_run_id}`",
            err=True,
        )


@click.command("sweep")
@click.argument("notebook", required=False)
@click.option(
    "-g",
    "--grid",
    "grid_pairs",
    nargs=2,
    multiple=True,
    metavar="NAME V1,V2,...",
    help="A varied parameter and its values, comma-separated (repeatable).",
)
@click.option(
    "-p",
    "--parameter",
    "pairs",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A parameter shared by every point (repeatable); values are read as YAML scalars.",
)
@click.option(
    "-f",
    "--sweep-file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file with notebook:, grid:, cases: and parameters:; -g and -p override it.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Local worker processes [CPU count].")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="An existing Dask scheduler, e.g. tcp://host:8786 [env DASK_SCHEDULER_ADDRESS].",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Reruns of a failed point.",
)
@click.option("--timeout", type=float, default=None, help="Time budget of each point in seconds.")
@click.option("--resume", metavar="SWEEP_RUN_ID", help="Run only the unfinished points of a sweep.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sweep_command(
    notebook: str | None,
    grid_pairs: tuple,
    pairs: tuple,
    sweep_file: str | None,
    workers: int | None,
    scheduler: str | None,
    retries: int,
    timeout: float | None,
    resume: str | None,
    quiet: bool,
    as_json: bool,
) -> int:
    """Run NOTEBOOK once per point of a grid, in parallel, under one sweep run.

    Then rebuilds reports/index.html (unless --json). Exit code 0 when every point
    finished, 1 otherwise (the failed points are named).
    """
    from fraudkit.reports.index import build_report_index
    from fraudkit.sweeps.run import run_sweep

    chosen, spec = _chosen_sweep(notebook, sweep_file, resume)
    display = progress_display(hidden=quiet or as_json)
    task = display.add_task(f"sweep {chosen or resume}", total=None)
    with display:
        result = run_sweep(
            chosen,
            grid={**spec.grid, **{name: values.split(",") for name, values in grid_pairs}},
            cases=spec.cases,
            parameters={**spec.parameters, **dict(pairs)},
            workers=workers,
            scheduler=scheduler,
            retries=retries,
            timeout=timeout,
            resume=resume,
            on_progress=lambda done, total: display.update(task, completed=done, total=total),
        )
    if as_json:
        _echo_json(result)
    else:
        _echo_summary(result)
        click.echo(f"Report index: {build_report_index()}")
    return result.exit_code


def _chosen_sweep(notebook: str | None, sweep_file: str | None, resume: str | None) -> tuple:
    """The notebook to sweep (empty when resuming) and the sweep file's spec (or an empty one)."""
    from fraudkit.sweeps.run import SweepSpec, load_sweep_spec

    spec = load_sweep_spec(sweep_file) if sweep_file else SweepSpec(notebook="")
    if notebook and spec.notebook and notebook != spec.notebook:
        raise click.BadParameter(
            f"the sweep file runs {spec.notebook!r}; drop the argument or make them agree",
            param_hint="NOTEBOOK",
        )
    chosen = notebook or spec.notebook
    if not chosen and not resume:
        raise click.UsageError("name the NOTEBOOK, or give it as notebook: in --sweep-file")
    return chosen, spec


def progress_display(*, hidden: bool) -> Any:
    """A progress bar on stderr (a rich ``Progress``), disabled when ``hidden``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=hidden,
    )


def _echo_json(result: Any) -> None:
    """Print the sweep's result as JSON."""
    outcome = {
        "sweep_run_id": result.sweep_run_id,
        "notebook": result.notebook,
        "finished": result.finished,
        "interrupted": result.interrupted,
        "report": str(result.report) if result.report else None,
        "outcomes": [asdict(o) for o in result.outcomes],
    }
    click.echo(json.dumps(outcome, indent=2, default=str))
