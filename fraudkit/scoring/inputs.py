"""The file being scored: its fingerprint, its rows in chunks, and the check of each chunk.

Rows are numbered as the file holds them, from 0 (``row`` in the output); a malformed row
is named by its line in the data (``row + 1``, the header aside), as the schema checks
name rows. Nothing here writes to the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import DataValidationError
from fraudkit.science.checks import COMPRESSIONS, check_transactions
from fraudkit.science.schema import TransactionSchema

__all__ = [
    "ROW_COLUMN",
    "check_chunk",
    "input_kind",
    "iter_chunks",
    "scan_input",
]

# The output column holding each row's position in the input file (0-based).
ROW_COLUMN = "row"
_BLOCK = 1 << 20  # bytes read at a time: hashing and counting stay flat in memory


def input_kind(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file's suffix.

    Raises
    ------
    DataValidationError
        The file is missing or of another type.
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if ".csv" in suffixes and suffixes[-1] in {".csv", *COMPRESSIONS}:
        kind = "csv"
    elif suffixes[-1:] == [".parquet"]:
        kind = "parquet"
    else:
        raise DataValidationError(
            f"{path}: unknown file type {''.join(path.suffixes) or '(no suffix)'!r}; score a "
            ".csv (optionally compressed) or a .parquet file"
        )
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file; check the path")
    return kind


def scan_input(path: str | Path) -> tuple[str, int | None]:
    """The file's SHA-256 and its data rows, in one read of its bytes.

    The rows come from a Parquet file's footer, or by counting a plain CSV's lines (the
    header aside) as it is hashed; None for a compressed CSV (the progress bar then counts
    up).
    """
    path = Path(path)
    digest, lines, last = hashlib.sha256(), 0, b"\n"
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    if input_kind(path) == "parquet":
        import pyarrow.parquet as pq

        return digest.hexdigest(), int(pq.ParquetFile(path).metadata.num_rows)
    if path.suffix.lower() in COMPRESSIONS:
        return digest.hexdigest(), None
    return digest.hexdigest(), max(lines + (last != b"\n") - 1, 0)


def iter_chunks(path: str | Path, rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, ``rows`` at a time, each chunk indexed by its rows' positions.

    Raises
    ------
    DataValidationError
        The file cannot be parsed (named with the parser's reason).
    """
    path = Path(path)
    start = 0
    try:
        if input_kind(path) == "csv":
            for chunk in pd.read_csv(path, chunksize=rows, engine="c"):
                yield chunk.set_axis(pd.RangeIndex(start, start + len(chunk)))
                start += len(chunk)
            return
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            chunk = batch.to_pandas()
            yield chunk.set_axis(pd.RangeIndex(start, start + len(chunk)))
            start += len(chunk)
    except (ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataValidationError(
            f"{path}: cannot read the file after row {start} ({reason})"
        ) from error


def check_chunk(
    chunk: pd.DataFrame,
    columns: Sequence[str],
    schema: TransactionSchema | None,
    source: str,
) -> pd.DataFrame:
    """Check a chunk's rows before any is scored; return the frame the model reads.

    With the model's ``schema``, the rows pass :func:`fraudkit.science.checks.check_transactions`
    (labels not required) and come back checked, in the file's order (features need time
    order, so a chunk out of order is refused). Without one (a Kaggle-schema model), every
    model input column must be there and hold numbers: an empty cell stays missing, as the
    model was trained to take it, but text is never turned into a missing value.

    Raises
    ------
    DataValidationError
        Naming the column, the row (its line in the data, from 1) and the fix.
    """
    first = int(chunk.index[0]) + 1 if len(chunk) else 1
    if schema is not None:
        checked = check_transactions(
            schema, chunk, source=source, require_labels=False, first_row=first
        )
        if checked.notes:
            raise DataValidationError(
                f"{source}: rows from row {first} on are not in time order by {schema.time}; "
                "behavioural features need the file sorted by time (sort it, then score it)"
            )
        return checked.frame.set_axis(chunk.index)
    missing = [c for c in columns if c not in chunk.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing column(s) {', '.join(missing)}; the model reads "
            f"{', '.join(columns)}"
        )
    converted = {}
    for column in columns:
        values = chunk[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((numbers.isna() & values.notna()).to_numpy())
        if len(bad):
            raise DataValidationError(
                f"{source}: column {column}, row {first + int(bad[0])}: "
                f"{values.iloc[bad[0]]!r} is not a number ({len(bad)} such rows in rows "
                f"{first}-{first + len(chunk) - 1}); fix or drop those rows"
            )
        converted[column] = numbers  # numbers written as text ("1.5") read as numbers
    return chunk.assign(**converted) if converted else chunk
