"""Export runs with their params, metrics and tags to CSV, Parquet or JSON."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import ConfigurationError
from fraudkit.dashboard.queries import runs_frame

if TYPE_CHECKING:
    from fraudkit.tracking.manager import MlflowManager

__all__ = ["EXPORT_FORMATS", "ExportResult", "export_runs", "neutralise_formulas"]

EXPORT_FORMATS = ("csv", "parquet", "json")
_SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportResult:
    """Where and what :func:`export_runs` wrote."""

    path: Path
    format: str
    rows: int
    columns: int

    def to_dict(self) -> dict[str, Any]:
        """Return the result with the path as a string."""
        return {
            "path": str(self.path),
            "format": self.format,
            "rows": self.rows,
            "columns": self.columns,
        }


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would execute as a formula.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    neutralised, unless the whole cell is a plain number such as ``-0.5`` (MLflow stores
    params as text; a spreadsheet reads those as numbers, not formulas). Numeric columns
    are never touched.

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    DataFrame
        A copy; ``frame`` is left as it was.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.StringDtype):
            text = values
        elif values.dtype == object:
            text = values.where(values.map(lambda v: isinstance(v, str)))
        else:
            continue
        risky = text.str.startswith(_FORMULA_START, na=False) & ~text.str.fullmatch(
            _NUMBER, na=False
        )
        if risky.any():
            out[column] = values.mask(risky, "'" + text)
    return out


def _export_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt.lower() not in EXPORT_FORMATS:
            raise ConfigurationError(
                f"unknown export format {fmt!r}; use one of: {', '.join(EXPORT_FORMATS)}"
            )
        return fmt.lower()
    found = _SUFFIX_FORMATS.get(path.suffix.lower())
    if found is None:
        raise ConfigurationError(
            f"cannot tell the export format of {str(path)!r}; name the file .csv, .parquet or "
            ".json, or pass --format"
        )
    return found


def export_runs(
    output_file: str | os.PathLike,
    experiment_type: str | ExperimentType | None = None,
    *,
    fmt: str | None = None,
    filter_string: str | None = None,
    manager: MlflowManager | None = None,
    fast: bool = True,
) -> ExportResult:
    """Write :func:`fraudkit.dashboard.runs_frame` to CSV, Parquet or JSON.

    Parameters
    ----------
    output_file : path
        Destination; its suffix (.csv, .parquet/.pq, .json) picks the format unless
        ``fmt`` is given. Missing parent directories are created.
    experiment_type, filter_string, manager, fast
        As for :func:`fraudkit.dashboard.runs_frame`.
    fmt : {"csv", "parquet", "json"}, optional

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigurationError
        Unknown format, or a suffix that names none.

    Notes
    -----
    CSV output goes through :func:`neutralise_formulas`. JSON is a list of records with
    ISO timestamps.
    """
    path = Path(output_file).expanduser().resolve()
    chosen = _export_format(path, fmt)
    frame = runs_frame(experiment_type, filter_string=filter_string, manager=manager, fast=fast)
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "csv":
        neutralise_formulas(frame).to_csv(path, index=False)
    elif chosen == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", date_format="iso", indent=1)
    return ExportResult(path, chosen, len(frame), frame.shape[1])
