"""``fraudkit score``: a registered version's decisions on every row of a file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fraudkit.cli.sweep import progress_display

__all__ = ["score_command"]


@click.command("score")
@click.argument("model_uri")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of Parquet parts to write (an interrupted run's folder is completed).",
)
@click.option(
    "--reasons",
    type=click.IntRange(0, 10),
    default=None,
    help="Reasons a row, 0 to 10 (0 is fastest) [the version's own, 3].",
)
@click.option("--workers", type=click.IntRange(min=1), help="Score on a local Dask cluster.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Score on an existing Dask cluster, e.g. tcp://host:8786 (workers must reach the "
    "input, the output folder and the tracking store).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Rows a chunk or partition.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def score_command(
    model_uri: str,
    input_path: Path,
    output: Path,
    reasons: int | None,
    workers: int | None,
    scheduler: str | None,
    chunk_rows: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Score every row of INPUT (CSV or Parquet) with MODEL_URI (models:/NAME@ALIAS).

    Writes the input's row number and id with the served model's columns (probability,
    alert at the version's threshold, reasons) and logs a scoring run in the monitoring
    experiment.
    """
    from fraudkit.scoring.batch import score_file

    if workers and scheduler:
        raise click.UsageError("give --workers or --scheduler, not both")
    display = progress_display(hidden=quiet or as_json)
    task = display.add_task(f"scoring {input_path.name}", total=None)
    with display:
        result = score_file(
            model_uri,
            input_path,
            output,
            reasons=reasons,
            workers=workers,
            scheduler=scheduler,
            chunk_rows=chunk_rows,
            on_progress=lambda done, total: display.update(task, completed=done, total=total),
        )
    metrics = result.metrics
    if as_json:
        named = {"run_id": result.run_id, "output": str(result.output)}
        named |= {"model_uri": result.model_uri, "retried_parts": result.retried}
        click.echo(json.dumps({**named, **metrics}, indent=2))
        return
    click.echo(
        f"{result.totals.rows:,} rows scored with {result.model_uri} in {result.seconds:.1f} s "
        f"({metrics['rows_per_second']:,.0f} rows/s): {result.totals.alerts:,} alerts "
        f"({metrics['alert_rate']:.3%}); the calibration expects "
        f"{metrics['expected_fraud_rate']:.3%} fraud, {metrics['expected_alert_precision']:.1%} "
        "of alerts"
    )
    if result.reused or result.retried:
        click.echo(
            f"  {result.reused} parts kept from an interrupted run; parts scored again after "
            f"a lost worker: {', '.join(map(str, result.retried)) or 'none'}"
        )
    click.echo(f"  output: {result.output}  run: {result.run_id}")
