"""Tables of named values, formatted for people: the notebooks' displayed tables.

A notebook builds its tables from dicts of metrics, and pandas stores a column of mixed
counts and rates as floats: ``n_fraud`` would print as ``43.000000`` next to an AUPRC of
``0.812345``. :func:`format_table` keeps the numbers as they are and formats only what is
shown, cell by cell, by the name of the metric the cell holds
(:func:`fraudkit.display.glossary.format_value`): counts as integers, rates as percentages,
differences with a sign, booleans as yes/no.

The module is pure (pandas and the glossary), so it belongs with the science modules.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from fraudkit.core.exceptions import ConfigurationError
from fraudkit.display.glossary import describe, format_value

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler
    from pandas.io.formats.style_render import CSSDict

__all__ = ["format_cell", "format_table", "grouped_notes"]


def format_cell(name: str, value: Any) -> str:
    """Print one value of the metric ``name``, lists and unknown objects included.

    Parameters
    ----------
    name : str
        The logged name of the metric or summary entry (e.g. ``"n_fraud"``).
    value : Any
        A scalar as :func:`fraudkit.display.glossary.format_value` takes, or a list or tuple
        (e.g. the windows that raised an alert), printed comma-separated.

    Returns
    -------
    str
        ``"12,000"`` for a count, ``"80.0%"`` for a rate, ``"yes"`` for a true boolean,
        ``"4, 5"`` for a list of window numbers, ``"none"`` for an empty list; the text
        of a name the glossary does not know (a run id, a digest) as it is.
    """
    if isinstance(value, Sequence | set) and not isinstance(value, str):
        return ", ".join(str(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key} {format_cell(str(key), item)}" for key, item in value.items())
    if isinstance(value, str) and describe(name) is None:
        # Text of an unknown name (a run id, a digest) stays text: "12345e67" is no number.
        return value
    return format_value(name, value)


def format_table(
    table: pd.DataFrame | pd.Series, *, names: Literal["index", "columns"] = "index"
) -> Styler:
    """Display ``table`` with each cell formatted by the metric it holds.

    Parameters
    ----------
    table : pandas.DataFrame or pandas.Series
        Values by metric name: a Series or a frame with one row per metric (``names=
        "index"``, e.g. one column per model), or a frame with one column per metric
        (``names="columns"``, e.g. one row per window). A Series is shown as one column
        named after it.
    names : {"index", "columns"}, default "index"
        Where the metric names are.

    Returns
    -------
    pandas.io.formats.style.Styler
        The table, formatted for display only: its data keep their values and dtypes
        (``styler.data``). A notebook shows it as an HTML table whose column headers may
        break after an underscore (a ``<wbr>`` in the header text), so a wide table of long
        names fits a report's page.

    Raises
    ------
    ConfigurationError
        ``names`` is neither ``"index"`` nor ``"columns"``.

    Examples
    --------
    >>> metrics = pd.Series({"n_fraud": 43.0, "fraud_recall": 0.8}, name="test")
    >>> format_table(metrics).to_string(delimiter=" ").splitlines()[1:]
    ['n_fraud 43', 'fraud_recall 80.0%']
    """
    if names not in ("index", "columns"):
        raise ConfigurationError(
            f"names={names!r}: say where the metric names are, 'index' (one row per metric) "
            "or 'columns' (one column per metric)"
        )
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    styler = frame.style
    labels = frame.index if names == "index" else frame.columns
    for name in dict.fromkeys(labels):  # each label once, in order
        subset = pd.IndexSlice[[name], :] if names == "index" else pd.IndexSlice[:, [name]]
        styler = styler.format(partial(format_cell, str(name)), subset=subset)
    # A wide table of long snake_case names (estimated_average_precision_upper) has no
    # space to wrap at, so it ran off a report's page and squeezed its text column into a
    # tall sliver: column headers may break after an underscore (<wbr> adds no character
    # to copied text), and cells wrap at a readable width.
    styler = styler.format_index(_breakable, axis="columns")
    return styler.set_table_styles(_FIT_THE_PAGE, overwrite=False)


def _breakable(name: Any) -> str:
    return html.escape(str(name)).replace("_", "_<wbr>")


_FIT_THE_PAGE: list[CSSDict] = [
    {"selector": "th.col_heading", "props": "max-width: 7em;"},
    {"selector": "td", "props": "max-width: 32em;"},
]


def grouped_notes(notes: Mapping[str, Iterable[str]]) -> str:
    """Notes said of several models, each printed once with the models it was said of.

    Parameters
    ----------
    notes : mapping of str to iterable of str
        Model name -> the notes said of it (sentences without the final stop).

    Returns
    -------
    str
        One ``Note (models): note.`` line per distinct note, in first-said order; empty
        when there are none.

    Examples
    --------
    >>> print(grouped_notes({"A": ["few days"], "B": ["few days", "B floods the budget"]}))
    Note (A, B): few days.
    Note (B): B floods the budget.
    """
    said_of: dict[str, list[str]] = {}
    for model, said in notes.items():
        for note in said:
            said_of.setdefault(note, []).append(model)
    return "\n".join(f"Note ({', '.join(models)}): {note}." for note, models in said_of.items())
