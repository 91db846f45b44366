"""Credit-card transactions in the Kaggle/ULB ``creditcard.csv`` schema.

The schema constants name the columns every module uses. :func:`load_transactions` reads
and validates user files (the real ``creditcard.csv`` loads as is), :func:`time_split`
makes delayed-feedback time splits, :func:`time_windows` cuts a file into monitoring
windows and :func:`data_fingerprint` identifies a frame for tracking tags. The notebooks'
first step, a file or a simulation in any schema, is
:func:`fraudkit.science.transactions.load_or_simulate`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import (
    AMOUNT_COLUMN,
    KAGGLE_COLUMNS,
    LABEL_COLUMN,
    TIME_COLUMN,
)
from fraudkit.science.checks import read_table
from fraudkit.science.metrics import MIN_FRAUDS, few_frauds_message
from fraudkit.science.schema import TransactionSchema

__all__ = [
    "DataSplit",
    "data_fingerprint",
    "load_transactions",
    "require_columns",
    "time_split",
    "time_windows",
    "validate_transactions",
]


@dataclass(frozen=True)
class DataSplit:
    """Time-ordered train, validation and test frames (see :func:`time_split`).

    ``time_column`` and ``label_column`` name the schema's time and label (Kaggle's
    ``Time`` and ``Class`` by default).
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    time_column: str = TIME_COLUMN
    label_column: str = LABEL_COLUMN

    def to_dict(self) -> dict[str, Any]:
        """Return rows, frauds and time range of each part as flat, loggable values."""
        summary: dict[str, Any] = {}
        for name in ("train", "validation", "test"):
            part: pd.DataFrame = getattr(self, name)
            summary[f"{name}_rows"] = len(part)
            if self.label_column in part.columns:
                summary[f"{name}_frauds"] = int(part[self.label_column].sum())
            for end, value in (
                ("start", part[self.time_column].min()),
                ("end", part[self.time_column].max()),
            ):
                # Numbers (seconds) as they are; datetimes as ISO text.
                summary[f"{name}_time_{end}"] = (
                    value.isoformat() if isinstance(value, pd.Timestamp) else float(value)
                )
        return summary

    @property
    def reference(self) -> pd.DataFrame:
        """The monitoring reference: the validation and test periods, which the model never
        trained on, in time order (see :mod:`fraudkit.science.drift`)."""
        return pd.concat([self.validation, self.test], ignore_index=True)

    @property
    def base_rate(self) -> tuple[int, int] | None:
        """``(frauds, rows)`` of all three parts: the longest labelled history, whose fraud
        rate monitoring weighs the reference to. None for unlabelled frames."""
        parts = (self.train, self.validation, self.test)
        if any(self.label_column not in part.columns for part in parts):
            return None
        return sum(int(part[self.label_column].sum()) for part in parts), sum(map(len, parts))

    def small_sample_warnings(self, minimum: int = MIN_FRAUDS) -> list[str]:
        """One sentence for each labelled part holding fewer than ``minimum`` frauds.

        Parameters
        ----------
        minimum : int, default :data:`fraudkit.science.metrics.MIN_FRAUDS`
            Fewest frauds for a usable estimate.

        Returns
        -------
        list of str
            Empty when every part holds enough; see
            :func:`fraudkit.science.metrics.few_frauds_message`.
        """
        messages = []
        for name, what in (("train", "training"), ("validation", "validation"), ("test", "test")):
            part: pd.DataFrame = getattr(self, name)
            if self.label_column in part.columns:
                n_fraud = int(part[self.label_column].sum())
                message = few_frauds_message(n_fraud, len(part), f"the {what} period", minimum)
                if message:
                    messages.append(message)
        return messages


def validate_transactions(
    df: pd.DataFrame, *, require_labels: bool = True, require_both_classes: bool = False
) -> pd.DataFrame:
    """Check a frame against the ``creditcard.csv`` schema and return a clean copy.

    Parameters
    ----------
    df : pandas.DataFrame
        Transactions with columns :data:`KAGGLE_COLUMNS` in any order (``Class`` may be
        absent when ``require_labels`` is false).
    require_labels : bool
        Whether the ``Class`` column must be present.
    require_both_classes : bool
        Whether both classes 0 and 1 must occur (needed to train or evaluate).

    Returns
    -------
    pandas.DataFrame
        Columns in Kaggle order, float64 features and Time, int64 ``Class``; the index of
        ``df`` is kept.

    Raises
    ------
    DataValidationError
        On missing or unexpected columns, no rows, non-numeric or non-finite values,
        negative amounts, labels other than 0/1, or a single class when two are needed.
        The message names the column and the row's index label.
    """
    return _validate(
        df,
        require_labels=require_labels,
        require_both_classes=require_both_classes,
        source="transactions",
        row_name=lambda position: f"index {df.index[position]}",
    )


def load_transactions(
    path: str | Path, *, require_labels: bool = True, require_both_classes: bool = False
) -> pd.DataFrame:
    """Load and validate transactions from CSV or Parquet in the Kaggle schema.

    The real ``creditcard.csv`` (quoted header) loads as is; compressed CSV
    (``.csv.gz``, ``.csv.zip``, ...) works too.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv`` (optionally compressed) or ``.parquet`` file.
    require_labels : bool
        Whether the ``Class`` column must be present.
    require_both_classes : bool
        Whether both classes 0 and 1 must occur.

    Returns
    -------
    pandas.DataFrame
        As :func:`validate_transactions` returns, with a RangeIndex.

    Raises
    ------
    DataValidationError
        If the file does not exist, has an unknown suffix, cannot be parsed, or fails a
        check of :func:`validate_transactions`; the message names the file, the column
        and the 1-based data row (the header is not counted).
    """
    df = read_table(path)
    return _validate(
        df,
        require_labels=require_labels,
        require_both_classes=require_both_classes,
        source=str(path),
        row_name=lambda position: f"data row {position + 1}",
    )


def _validate(
    df: pd.DataFrame,
    *,
    require_labels: bool,
    require_both_classes: bool,
    source: str,
    row_name: Callable[[int], str],
) -> pd.DataFrame:
    labelled = require_labels or require_both_classes or LABEL_COLUMN in df.columns
    expected = KAGGLE_COLUMNS if labelled else KAGGLE_COLUMNS[:-1]
    _check_columns(df, expected, source)
    columns = _numeric_columns(df, expected, source, row_name)
    matrix = np.column_stack([columns[c] for c in expected])

    rows, cols = np.nonzero(~np.isfinite(matrix))
    if len(rows):
        raise DataValidationError(
            f"{source}: column {expected[cols[0]]}, {row_name(rows[0])}: value "
            f"{matrix[rows[0], cols[0]]} is not a finite number ({len(rows)} such values); "
            "drop or impute those rows"
        )
    _reject_first(
        columns[AMOUNT_COLUMN] < 0,
        lambda i: (
            f"{source}: column {AMOUNT_COLUMN}, {row_name(i)}: negative amount "
            f"{columns[AMOUNT_COLUMN][i]}"
        ),
        "amounts must be >= 0",
    )
    out = pd.DataFrame(matrix, columns=expected, index=df.index)
    if labelled:
        out[LABEL_COLUMN] = _checked_labels(
            columns[LABEL_COLUMN],
            require_both_classes=require_both_classes,
            source=source,
            row_name=row_name,
        )
    return out


def _check_columns(df: pd.DataFrame, expected: Sequence[str], source: str) -> None:
    """Reject a frame without exactly the ``expected`` columns, or without rows."""
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing column(s) {', '.join(missing)}; expected the creditcard.csv "
            f"columns {', '.join(expected)}"
        )
    unexpected = [str(c) for c in df.columns if c not in expected]
    if unexpected:
        raise DataValidationError(
            f"{source}: unexpected column(s) {', '.join(unexpected)}; keep only "
            f"{', '.join(expected)}"
        )
    if len(df) == 0:
        raise DataValidationError(f"{source}: no data rows; at least one transaction is needed")


def _numeric_columns(
    df: pd.DataFrame, expected: Sequence[str], source: str, row_name: Callable[[int], str]
) -> dict[str, np.ndarray]:
    """The ``expected`` columns as float64 arrays; a non-numeric value is an error."""
    columns = {}
    for column in expected:
        values = df[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = np.flatnonzero(numeric.isna().to_numpy() & values.notna().to_numpy())
            if len(bad):
                raise DataValidationError(
                    f"{source}: column {column}, {row_name(bad[0])}: non-numeric value "
                    f"{values.iloc[bad[0]]!r} ({len(bad)} such rows); fix or drop those rows"
                )
            values = numeric
        columns[column] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return columns


def _checked_labels(
    labels: np.ndarray,
    *,
    require_both_classes: bool,
    source: str,
    row_name: Callable[[int], str],
) -> np.ndarray:
    """The labels as int64, each 0 or 1 (and both present when required)."""
    _reject_first(
        (labels != 0) & (labels != 1),
        lambda i: f"{source}: column {LABEL_COLUMN}, {row_name(i)}: label {labels[i]:g}",
        "labels must be 0 (legit) or 1 (fraud)",
    )
    present = np.unique(labels)
    if require_both_classes and len(present) < 2:
        raise DataValidationError(
            f"{source}: column {LABEL_COLUMN} holds only class {int(present[0])} in "
            f"{len(labels)} rows; training and evaluation need rows of both classes 0 and 1"
        )
    return labels.astype(np.int64)


def _reject_first(bad: np.ndarray, describe: Callable[[int], str], rule: str) -> None:
    positions = np.flatnonzero(bad)
    if len(positions):
        raise DataValidationError(f"{describe(positions[0])} ({len(positions)} such rows); {rule}")


def time_split(
    df: pd.DataFrame,
    *,
    train: float = 0.6,
    validation: float = 0.2,
    test: float = 0.2,
    delay_seconds: float = 0.0,
    schema: TransactionSchema | None = None,
) -> DataSplit:
    """Split transactions by time into train, validation and test parts.

    The cut points are the ``Time`` values at the given row fractions of the time-sorted
    frame, so rows sharing a timestamp never straddle two parts. Rows within
    ``delay_seconds`` after each cut are dropped: labels of the latest transactions
    arrive late in practice (feedback delay), and the gap keeps the evaluation honest.

    Parameters
    ----------
    df : pandas.DataFrame
        Transactions with a ``Time`` column.
    train, validation, test : float
        Positive fractions of rows summing to 1.
    delay_seconds : float
        Length of each dropped gap, non-negative.
    schema : TransactionSchema, optional
        The frame's schema, when its time column is not Kaggle's ``Time``.

    Returns
    -------
    DataSplit
        The three parts, each sorted by time (original index kept).

    Raises
    ------
    ConfigurationError
        If a fraction is not positive, they do not sum to 1, or ``delay_seconds`` is
        negative.
    DataValidationError
        If ``Time`` is missing or a part ends up empty.
    """
    fractions = {"train": train, "validation": validation, "test": test}
    for name, value in fractions.items():
        if not (math.isfinite(value) and value > 0):
            raise ConfigurationError(f"{name} = {value} must be a positive fraction")
    if not math.isclose(train + validation + test, 1.0, abs_tol=1e-9):
        raise ConfigurationError(
            f"train + validation + test = {train + validation + test:g}; the fractions must "
            "sum to 1"
        )
    if not (math.isfinite(delay_seconds) and delay_seconds >= 0):
        raise ConfigurationError(
            f"delay_seconds = {delay_seconds} must be a non-negative number of seconds"
        )
    time_column = schema.time if schema is not None else TIME_COLUMN
    if time_column not in df.columns:
        raise DataValidationError(f"time_split needs a {time_column} column; it is missing")

    ordered = df.sort_values(time_column, kind="stable")
    times = _seconds(ordered, schema)
    n = len(times)
    first_cut = times[min(round(train * n), n - 1)]
    second_cut = times[min(round((train + validation) * n), n - 1)]
    parts = {
        "train": ordered[times < first_cut],
        "validation": ordered[(times >= first_cut + delay_seconds) & (times < second_cut)],
        "test": ordered[times >= second_cut + delay_seconds],
    }
    for name, part in parts.items():
        if part.empty:
            needed = math.ceil(1.0 / min(fractions.values()))
            raise DataValidationError(
                f"time_split: the {name} part is empty ({n} rows, fractions "
                f"{train:g}/{validation:g}/{test:g}, delay_seconds={delay_seconds:g}); supply "
                f"at least {needed} rows with distinct Time values and spanning more than the "
                "delay gaps"
            )
    label_column = schema.label if schema is not None else LABEL_COLUMN
    return DataSplit(**parts, time_column=time_column, label_column=label_column)


def _seconds(frame: pd.DataFrame, schema: TransactionSchema | None) -> np.ndarray:
    """The frame's time in seconds (a schema's datetimes or milliseconds converted)."""
    if schema is None:
        return frame[TIME_COLUMN].to_numpy(dtype=np.float64)
    return schema.timestamps(frame) / 1e9


def time_windows(
    df: pd.DataFrame,
    n_windows: int | None = None,
    *,
    window_rows: int | None = None,
    schema: TransactionSchema | None = None,
) -> list[pd.DataFrame]:
    """Cut transactions into consecutive windows in time order, e.g. days for monitoring.

    Give exactly one of ``n_windows`` (that many windows of near-equal size covering every
    row) or ``window_rows`` (windows of that many rows; the last one holds the remainder
    and may be shorter). :meth:`fraudkit.science.simulate.TransactionSimulator.sample_windows`
    draws such windows directly from the simulator.

    Parameters
    ----------
    df : pandas.DataFrame
        Transactions with a ``Time`` column, in any order.
    n_windows : int or None
        Number of windows, at least 1 and at most the number of rows.
    window_rows : int or None
        Rows per window, at least 1.
    schema : TransactionSchema, optional
        The frame's schema, when its time column is not Kaggle's ``Time``.

    Returns
    -------
    list of pandas.DataFrame
        The windows, oldest first, each sorted by ``Time`` (rows sharing a timestamp keep
        their order) with the original index kept.

    Raises
    ------
    ConfigurationError
        If both or neither of ``n_windows`` and ``window_rows`` are given, or one is not a
        positive integer.
    DataValidationError
        If ``Time`` is missing, ``df`` has no rows, or fewer rows than ``n_windows``.
    """
    if (n_windows is None) == (window_rows is None):
        raise ConfigurationError(
            "time_windows takes either n_windows (number of windows) or window_rows (rows per "
            f"window), not {'both' if n_windows is not None else 'neither'}"
        )
    size = n_windows if window_rows is None else window_rows
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        name = "n_windows" if window_rows is None else "window_rows"
        raise ConfigurationError(f"{name} = {size!r} must be a positive integer")
    time_column = schema.time if schema is not None else TIME_COLUMN
    if time_column not in df.columns:
        raise DataValidationError(f"time_windows needs a {time_column} column; it is missing")
    n = len(df)
    if n == 0:
        raise DataValidationError("time_windows: no rows to cut; pass at least one transaction")
    if window_rows is None:
        if size > n:
            raise DataValidationError(
                f"time_windows: {n} rows cannot fill n_windows={size} windows; pass at most "
                f"{n} windows or more transactions"
            )
        bounds = np.linspace(0, n, size + 1).astype(int)
    else:
        bounds = np.r_[np.arange(0, n, size), n]
    ordered = df.sort_values(time_column, kind="stable")
    return [ordered.iloc[start:end] for start, end in itertools.pairwise(bounds)]


def require_columns(data: Any, name: str, columns: Iterable[str]) -> pd.DataFrame:
    """Return ``data`` if it is a DataFrame holding ``columns``.

    Parameters
    ----------
    data : object
        The argument to check.
    name : str
        Name of the argument, used in error messages.
    columns : iterable of str
        Columns ``data`` must hold.

    Returns
    -------
    pandas.DataFrame
        ``data`` itself.

    Raises
    ------
    DataValidationError
        When ``data`` is not a DataFrame or lacks a column; the message names both.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataValidationError(f"{name} must be a DataFrame, got {type(data).__name__}")
    columns = list(columns)
    missing = [column for column in columns if column not in data.columns]
    if missing:
        raise DataValidationError(
            f"{name} lacks columns {missing}; it needs {columns} "
            "(labelled transactions in the Kaggle creditcard.csv schema)"
        )
    return data


def data_fingerprint(df: pd.DataFrame) -> str:
    """Return a stable 16-hex-digit fingerprint of a frame's content.

    Column names, dtypes, index and every value enter the hash: identical frames share a
    fingerprint across processes and machines, any change gives a different one.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame to identify.

    Returns
    -------
    str
        The first 16 hexadecimal digits of a SHA-256 digest.
    """
    digest = hashlib.sha256()
    for name, dtype in df.dtypes.items():
        digest.update(f"{name!s}\x1f{dtype!s}\x1e".encode())
    digest.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return digest.hexdigest()[:16]
