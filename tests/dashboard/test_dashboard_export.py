"""fraudkit.dashboard.export: CSV, Parquet and JSON round trips, spreadsheet formulas."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from support import dashboard_store
from support.dashboard_store import sqlite_only

from fraudkit import dashboard
from fraudkit.core.exceptions import ConfigurationError

populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store


def _assert_same_column(back: pd.Series, written: pd.Series) -> None:
    """Compare a column read back from CSV/JSON text with the column written."""
    if isinstance(written.dtype, pd.DatetimeTZDtype):
        parsed = pd.to_datetime(back.replace("", None), utc=True, format="ISO8601")
        back, written = parsed.dt.as_unit("ms"), written.dt.as_unit("ms")
    elif pd.api.types.is_float_dtype(written):
        back = back.astype(float)
    else:
        back, written = back.fillna("").astype(object), written.fillna("").astype(object)
    pd.testing.assert_series_equal(back, written, check_names=False, check_dtype=False)


@sqlite_only
@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_round_trips(store, tmp_path, fmt):
    frame = dashboard.runs_frame("training")
    result = dashboard.export_runs(tmp_path / "out" / f"runs.{fmt}", "training")
    assert (result.format, result.rows, result.columns) == (fmt, 6, frame.shape[1])
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(result.path), frame)
        return
    if fmt == "csv":
        back = pd.read_csv(result.path, dtype=str, keep_default_na=False)
        frame = dashboard.neutralise_formulas(frame)  # what a CSV is meant to hold
    else:
        back = pd.read_json(io.StringIO(result.path.read_text()), orient="records", dtype=False)
    assert list(back.columns) == list(frame.columns)
    for column in frame.columns:
        _assert_same_column(back[column], frame[column])


@sqlite_only
def test_csv_export_neutralises_formulas_only(store, tmp_path):
    path = dashboard.export_runs(tmp_path / "runs.csv", "training").path
    back = pd.read_csv(path)
    assert back["params.note"].str.startswith("'=HYPERLINK").all()
    assert (back["params.n_jobs"] == -1).all()  # a negative number stays a number
    assert back["metrics.average_precision"].dtype == float


def test_neutralise_formulas():
    frame = pd.DataFrame(
        {
            "text": ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "-1.5e3", None],
            "number": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan],
            "mixed": ["=x", 1, -2, None, "ok", "+1", "-", "", "@"],
        }
    )
    out = dashboard.neutralise_formulas(frame)
    assert list(out["text"][:6]) == ["'=1+2", "'+cmd", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx"]
    assert list(out["text"][6:8]) == ["plain", "-1.5e3"]
    assert pd.isna(out["text"].iloc[8])
    pd.testing.assert_series_equal(out["number"], frame["number"])
    assert list(out["mixed"]) == ["'=x", 1, -2, None, "ok", "+1", "'-", "", "'@"]
    assert frame["text"].iloc[0] == "=1+2"  # input untouched


@sqlite_only
def test_export_format_choice(store, tmp_path):
    result = dashboard.export_runs(tmp_path / "runs.data", fmt="JSON")
    assert result.format == "json" and result.rows == 8
    with pytest.raises(ConfigurationError, match="cannot tell the export format"):
        dashboard.export_runs(tmp_path / "runs.txt")
    with pytest.raises(ConfigurationError, match="unknown export format"):
        dashboard.export_runs(tmp_path / "runs.csv", fmt="xlsx")
