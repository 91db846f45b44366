"""``fraudkit card``: a registered version's model card, brought up to date."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["card_command"]


@click.command("card")
@click.argument("model_uri")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the card here: HTML for a .html name, else Markdown (with its reliability "
    "diagram beside it). Default: print the Markdown.",
)
def card_command(model_uri: str, output: Path | None) -> None:
    """Print or write the model card of MODEL_URI (models:/NAME@ALIAS or models:/NAME/N).

    The card logged when the version was registered, with its alias history as it stands
    now: who moved it, when, why and on which evidence run.
    """
    from fraudkit.display.model_card import card_markdown
    from fraudkit.tracking.model_cards import load_model_card, write_model_card

    card = load_model_card(model_uri)
    if output is None:
        click.echo(card_markdown(card), nl=False)
        return
    click.echo(f"model card of {model_uri} written to {write_model_card(card, output)}")
