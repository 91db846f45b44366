"""The ``fraudkit`` command line: a thin click layer over the library.

Exit codes: 0 ok, 1 user error (bad option, unknown experiment type or model, failed
notebook), 2 tracking store unreachable (see :mod:`fraudkit.cli.group`). The commands
live in :mod:`fraudkit.cli.commands`, :mod:`fraudkit.cli.sweep`, :mod:`fraudkit.cli.score`,
:mod:`fraudkit.cli.card` and :mod:`fraudkit.cli.dashboard`. Only entry points
(``fraudkit/__main__.py``, ``fraudkit/dashboard/__main__.py`` and the ``fraudkit``
console script) import this package; the library never does.
"""

from __future__ import annotations

import click

from fraudkit.cli import card, commands, dashboard, score, sweep
from fraudkit.cli.group import FraudkitGroup

__all__ = ["cli", "main"]


@click.group(cls=FraudkitGroup)
@click.version_option(package_name="fraudkit")
def cli() -> None:
    """fraudkit: notebooks, MLflow records and a dashboard for credit-card fraud research."""


cli.add_command(dashboard.dashboard)
cli.add_command(commands.run_command)
cli.add_command(commands.pipeline_command)
cli.add_command(commands.notebooks_group)
cli.add_command(sweep.sweep_command)
cli.add_command(score.score_command)
cli.add_command(card.card_command)
cli.add_command(commands.report_command)
cli.add_command(commands.ui_command)


def main() -> None:
    """Console-script entry point."""
    cli()
