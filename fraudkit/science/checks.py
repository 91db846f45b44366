"""Reading a transaction file, and checking a frame against its declared schema.

:func:`check_transactions` is what :meth:`TransactionSchema.validate` runs: every check
names the column, the first bad row and the fix, and nothing downstream (features,
models, the tracking store) sees a frame that has not passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import DataValidationError

if TYPE_CHECKING:
    from fraudkit.science.schema import TransactionSchema

__all__ = ["COMPRESSIONS", "CheckedTransactions", "check_transactions", "read_table"]

COMPRESSIONS = {".gz", ".bz2", ".zip", ".xz", ".zst"}


class _Where(str):
    """Where a check looks (the source and its schema), and the number of its first row.

    A string, so messages read ``f"{where}: ..."``; ``row(i)`` numbers the ``i``-th row of
    the frame checked as the file does, for a frame that is a chunk of a larger file.
    """

    first_row: int

    def __new__(cls, text: str, first_row: int = 1) -> _Where:
        made = super().__new__(cls, text)
        made.first_row = first_row
        return made

    def row(self, position: int) -> int:
        return self.first_row + int(position)


@dataclass(frozen=True)
class CheckedTransactions:
    """A frame that passed its schema, in time order, and what the check noticed."""

    frame: pd.DataFrame
    schema: TransactionSchema
    notes: tuple[str, ...] = ()


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv`` (optionally compressed) or ``.parquet`` file, with a RangeIndex.

    Raises
    ------
    DataValidationError
        If the file is missing, empty, of an unknown type or cannot be parsed.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    is_csv = ".csv" in suffixes and suffixes[-1] in {".csv", *COMPRESSIONS}
    if not is_csv and suffixes[-1:] != [".parquet"]:
        raise DataValidationError(
            f"{path}: unknown file type {''.join(path.suffixes) or '(no suffix)'!r}; "
            "use .csv (optionally .gz/.bz2/.zip/.xz/.zst compressed) or .parquet"
        )
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty; expected a header and data rows")
    try:
        frame = pd.read_csv(path, engine="c") if is_csv else pd.read_parquet(path)
    except (ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataValidationError(f"{path}: cannot read the file ({reason})") from error
    return frame.reset_index(drop=True)


def check_transactions(
    schema: TransactionSchema,
    frame: pd.DataFrame,
    *,
    source: str = "transactions",
    require_labels: bool = True,
    first_row: int = 1,
) -> CheckedTransactions:
    """Check ``frame`` against ``schema`` and return a copy in stable time order.

    The copy holds the schema's columns only, time (and label time) as datetimes or
    float numbers as declared, amount and numeric columns as float64, the label as
    int64, categorical columns as strings (empty cells NaN), entity keys as they came.

    ``first_row`` is the number the messages give the frame's first row: 1 for a whole
    file, more for a chunk of one, so that a bad row is named by its row in the file.

    Raises
    ------
    DataValidationError
        Naming the column, the first bad row and the fix.
    """
    where = _Where(f"{source} (schema {schema.name or 'from a mapping'})", first_row)
    _check_present(schema, frame, where, require_labels)
    out = pd.DataFrame(index=frame.index)
    out[schema.time] = _time_column(schema, frame, schema.time, where, allow_missing=False)
    for role, column in schema.column_roles():
        if column == schema.time or column not in frame.columns:
            continue
        values = frame[column]
        if role == "amount" or role == "numeric":
            values = _float_column(values, column, where, negative_ok=role == "numeric")
        elif role == "label":
            values = _labels(values, column, where)
        elif role == "label_time":
            values = _time_column(schema, frame, column, where, allow_missing=True)
        elif role in ("entity", "id"):
            _reject(values.isna().to_numpy(), column, where, "an empty key", "fill or drop them")
        elif role == "categorical":
            values = _category_strings(values)
        out[column] = values
    if schema.id and out[schema.id].duplicated().any():
        first = int(np.flatnonzero(out[schema.id].duplicated().to_numpy())[0])
        value = str(out[schema.id].iloc[first])
        raise DataValidationError(
            f"{where}: column {schema.id} (id), row {where.row(first)}: id {value!r} "
            "appears more than once; ids must be unique (drop the duplicates)"
        )
    if schema.label_time:
        early = schema.timestamps(out, schema.label_time) < schema.timestamps(out)
        known = out[schema.label_time].notna().to_numpy()
        _reject(
            early & known,
            schema.label_time,
            where,
            "a label known before its transaction happened",
            f"{schema.label_time} must be at or after {schema.time}",
        )
    return _in_time_order(schema, out, where)


def _check_present(
    schema: TransactionSchema, frame: pd.DataFrame, where: _Where, require_labels: bool
) -> None:
    roles = [
        (role, column)
        for role, column in schema.column_roles()
        if column not in frame.columns and (require_labels or role not in ("label", "label_time"))
    ]
    if roles:
        named = ", ".join(f"{column} ({role})" for role, column in roles)
        found = ", ".join(map(str, frame.columns[:20]))
        raise DataValidationError(
            f"{where}: missing column(s) {named}; the data has {found}. Rename the "
            "columns or fix the schema file"
        )
    if len(frame) == 0:
        raise DataValidationError(f"{where}: no data rows; at least one transaction is needed")


def _reject(bad: np.ndarray, column: str, where: _Where, what: str, fix: str) -> None:
    positions = np.flatnonzero(bad)
    if len(positions):
        raise DataValidationError(
            f"{where}: column {column}, row {where.row(positions[0])}: {what} "
            f"({len(positions)} such rows); {fix}"
        )


def _time_column(
    schema: TransactionSchema,
    frame: pd.DataFrame,
    column: str,
    where: _Where,
    *,
    allow_missing: bool,
) -> pd.Series:
    values = frame[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if schema.time_unit is None:
        if numeric:
            raise DataValidationError(
                f"{where}: column {column} holds numbers, not datetimes; add "
                "'time_unit: s' (or ms) to the schema if they count seconds"
            )
        converted = _as_datetimes(values, column, where)
    else:
        if not numeric:
            raise DataValidationError(
                f"{where}: column {column} does not hold numbers ({values.dtype}); remove "
                f"'time_unit: {schema.time_unit}' from the schema if it holds datetimes"
            )
        converted = values.astype(np.float64)
        _reject(np.isinf(converted.to_numpy()), column, where, "an infinite time", "fix those rows")
    if not allow_missing:
        _reject(converted.isna().to_numpy(), column, where, "an empty time", "fill or drop them")
    return converted


def _as_datetimes(values: pd.Series, column: str, where: _Where) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        converted = values
    else:
        converted = pd.to_datetime(values, errors="coerce", format="mixed")
        _reject(
            (converted.isna() & values.notna()).to_numpy(),
            column,
            where,
            "a value that is not a datetime",
            "write ISO dates (2026-01-31 12:00:00), or numbers with time_unit",
        )
    if getattr(converted.dt, "tz", None) is not None:
        converted = converted.dt.tz_convert("UTC").dt.tz_localize(None)
    return converted.astype("datetime64[ns]")


def _float_column(values: pd.Series, column: str, where: _Where, *, negative_ok: bool) -> pd.Series:
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        numeric = pd.to_numeric(values, errors="coerce")
        _reject(
            (numeric.isna() & values.notna()).to_numpy(),
            column,
            where,
            "a value that is not a number",
            "fix or drop those rows",
        )
        values = numeric
    floats = values.astype(np.float64)
    array = floats.to_numpy()
    _reject(np.isinf(array), column, where, "an infinite value", "fix or drop those rows")
    if not negative_ok:
        _reject(np.isnan(array), column, where, "an empty amount", "fill or drop those rows")
        _reject(array < 0, column, where, "a negative amount", "amounts must be >= 0")
    return floats


def _category_strings(values: pd.Series) -> pd.Series:
    """Categories as Python strings (``1`` and ``"1"`` alike), an empty cell as NaN."""
    text = values.astype(str).to_numpy(dtype=object)
    return pd.Series(np.where(values.isna(), np.nan, text), index=values.index, dtype=object)


def _labels(values: pd.Series, column: str, where: _Where) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    _reject(
        ~np.isin(numeric, (0.0, 1.0)),
        column,
        where,
        "a label other than 0 or 1",
        "labels must be 0 (legit) or 1 (fraud)",
    )
    return pd.Series(numeric.astype(np.int64), index=values.index)


def _in_time_order(
    schema: TransactionSchema, out: pd.DataFrame, where: _Where
) -> CheckedTransactions:
    times = schema.timestamps(out)
    notes: list[str] = []
    unordered = int(np.sum(np.diff(times) < 0))
    if unordered:
        order = np.argsort(times, kind="stable")
        out = out.iloc[order]
        notes.append(
            f"{where}: {unordered} rows were out of time order; sorted stably by {schema.time}"
        )
    return CheckedTransactions(out.reset_index(drop=True), schema, tuple(notes))
