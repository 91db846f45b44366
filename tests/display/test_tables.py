from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudkit.core.exceptions import ConfigurationError
from fraudkit.display.tables import format_cell, format_table, grouped_notes


def _cells(styler) -> list[list[str]]:
    """The displayed cells, row by row (header rows left out)."""
    rows = styler.to_string(delimiter="\t").splitlines()
    return [row.split("\t")[1:] for row in rows if row]


def test_metrics_by_row_print_as_people_read_them() -> None:
    # A dict of mixed counts and rates becomes a float Series: 12000.0, 43.0, 0.8...
    metrics = {"n_transactions": 12_000, "n_fraud": 43, "fraud_recall": 0.8,
               "fraud_rate": 0.00172, "average_precision": 0.81234}  # fmt: skip
    series = pd.Series(metrics, name="test")
    assert series.dtype == float
    styler = format_table(series)
    assert _cells(styler)[1:] == [["12,000"], ["43"], ["80.0%"], ["0.17%"], ["0.812"]]
    assert styler.data.loc["n_fraud", "test"] == 43.0  # the data keep their values


def test_columns_of_metrics_one_row_per_window() -> None:
    windows = pd.DataFrame(
        {
            "estimate_reliable": [1, 0],
            "fraud_recall": [0.5, np.nan],  # the newest window has no labels yet
            "alert_retraining_recommended": [0.0, 1.0],
            "judged_on": ["labels", "estimate"],
        },
        index=pd.RangeIndex(2, name="window"),
    )
    cells = _cells(format_table(windows, names="columns"))
    assert cells[-2:] == [["yes", "50.0%", "no", "labels"], ["no", "n/a", "yes", "estimate"]]


def test_models_side_by_side_and_signed_differences() -> None:
    table = pd.DataFrame(
        {"production": {"n_alerts": 120.0, "auprc_difference": np.nan},
         "retrained": {"n_alerts": 98.0, "auprc_difference": 0.0712}}
    )  # fmt: skip
    cells = _cells(format_table(table))
    assert cells[-2:] == [["120", "98"], ["n/a", "+0.071"]]


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("retraining_windows", [4, 5, 6], "4, 5, 6"),
        ("retraining_windows", [], "none"),
        ("first_alert_window", None, "—"),
        ("promoted", "True", "yes"),  # as MLflow tags hold it
        ("relative_improvement", 0.4881, "+48.8%"),
        ("winner", "B", "B"),
        ("dataset_digest", "12345e67", "12345e67"),  # text, though float() would take it
        ("model_version", "3", "3"),
    ],
)
def test_format_cell(name: str, value: object, shown: str) -> None:
    assert format_cell(name, value) == shown


def test_names_must_say_where_the_metrics_are() -> None:
    with pytest.raises(ConfigurationError, match=r"'index' .* or 'columns'"):
        format_table(pd.Series({"n_fraud": 1}), names="rows")  # type: ignore[arg-type]


def test_wide_tables_fit_a_page_without_changing_names() -> None:
    windows = pd.DataFrame({"estimated_average_precision_upper": [0.9], "a<b": [1]})
    page = format_table(windows, names="columns").to_html()
    assert "estimated_<wbr>average_<wbr>precision_<wbr>upper" in page  # may break there
    assert "a&lt;b" in page  # a header is text, never markup
    assert "max-width: 7em" in page
    assert list(windows.columns) == ["estimated_average_precision_upper", "a<b"]


def test_notes_said_of_several_models_are_printed_once_naming_them() -> None:
    notes = {"lr": ["rows stand in for cards"], "hgb": ["rows stand in for cards", "floods"]}
    assert grouped_notes(notes).splitlines() == [
        "Note (lr, hgb): rows stand in for cards.",
        "Note (hgb): floods.",
    ]
    assert grouped_notes({"lr": []}) == ""
