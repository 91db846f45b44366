"""The scores' folder: one Parquet part per chunk or partition, each written atomically.

``OUTPUT/part-00000.parquet``, ``part-00001.parquet``, ... hold the scored rows of the
input's chunks (local) or partitions (Dask), in the input's order; ``pandas.read_parquet``
(or any Parquet reader) reads the folder as one table. A part is written to a temporary
file and renamed into place, so a part is there whole or not at all, and a rerun of the
same job skips the parts already there. ``_scoring.json`` says which job the folder
belongs to: a rerun with another model, input or layout is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import ScoringError
from fraudkit.scoring.inputs import ROW_COLUMN

__all__ = [
    "MANIFEST",
    "clear_attempts",
    "done_parts",
    "open_output",
    "part_path",
    "record_attempt",
    "retried_parts",
    "verify_rows",
    "write_part",
]

MANIFEST = "_scoring.json"
_ATTEMPTS = "_attempts"  # one empty file per attempt at a part: a lost worker shows as two


def part_path(folder: str | Path, index: int) -> Path:
    """Where part ``index`` goes."""
    return Path(folder) / f"part-{index:05d}.parquet"


def open_output(folder: str | Path, job: Mapping[str, Any]) -> set[int]:
    """Make ``folder`` the output of ``job`` and return the parts it already holds.

    A new or empty folder gets the manifest; a folder of the same job (an interrupted
    run) keeps its parts.

    Raises
    ------
    ScoringError
        ``folder`` is a file, holds other files, or holds the scores of another job.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ScoringError(f"{folder} is a file; the scores are a folder of Parquet parts")
    manifest = folder / MANIFEST
    if manifest.is_file():
        stored = json.loads(manifest.read_text())
        if stored != dict(job):
            changed = sorted(k for k in {*stored, *job} if stored.get(k) != job.get(k))
            raise ScoringError(
                f"{folder} holds scores of another job (its {', '.join(changed)} differ); "
                "remove the folder or write to another one"
            )
        return done_parts(folder)
    if folder.is_dir() and any(folder.iterdir()):
        raise ScoringError(
            f"{folder} is not empty and holds no {MANIFEST}; write the scores to a new folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(manifest, json.dumps(dict(job), indent=2, sort_keys=True).encode())
    return set()


def done_parts(folder: str | Path) -> set[int]:
    """Indices of the parts already written."""
    return {int(p.stem.split("-")[1]) for p in Path(folder).glob("part-*.parquet")}


def write_part(folder: str | Path, index: int, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as part ``index``: all of it, or nothing if the writer dies."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = part_path(folder, index)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def record_attempt(folder: str | Path, index: int) -> None:
    """Note an attempt at part ``index`` (a task starting, on whichever worker)."""
    attempts = Path(folder) / _ATTEMPTS
    attempts.mkdir(exist_ok=True)
    # The worker's process id in the name: a test, or a person, can tell who tried.
    (attempts / f"{index:05d}.{os.getpid()}.{uuid.uuid4().hex}").touch()


def retried_parts(folder: str | Path) -> list[int]:
    """Parts attempted more than once in this run (their first worker was lost)."""
    attempts = Path(folder) / _ATTEMPTS
    if not attempts.is_dir():
        return []
    counts: dict[int, int] = {}
    for marker in attempts.iterdir():
        index = int(marker.name.split(".")[0])
        counts[index] = counts.get(index, 0) + 1
    return sorted(i for i, n in counts.items() if n > 1)


def clear_attempts(folder: str | Path) -> None:
    """Forget the attempts (once the run has recorded them)."""
    attempts = Path(folder) / _ATTEMPTS
    if attempts.is_dir():
        for marker in attempts.iterdir():
            marker.unlink(missing_ok=True)
        attempts.rmdir()


def verify_rows(folder: str | Path, rows: int) -> None:
    """Check that the parts hold input rows ``0 .. rows - 1``, each exactly once.

    Raises
    ------
    ScoringError
        Naming the first row missing or repeated.
    """
    import pyarrow.parquet as pq

    found = [
        pq.read_table(path, columns=[ROW_COLUMN]).column(0).to_numpy()
        for path in sorted(Path(folder).glob("part-*.parquet"))
    ]
    seen = np.sort(np.concatenate(found)) if found else np.array([], dtype=np.int64)
    expected = np.arange(rows)
    if len(seen) == rows and np.array_equal(seen, expected):
        return
    counts = np.bincount(seen[(seen >= 0) & (seen < rows)], minlength=rows)
    repeated, missing = np.flatnonzero(counts > 1), np.flatnonzero(counts == 0)
    what = (
        f"row {repeated[0]} is there {counts[repeated[0]]} times"
        if len(repeated)
        else f"row {missing[0]} is missing"
        if len(missing)
        else "rows beyond the input's are there"
    )
    raise ScoringError(f"{folder}: the parts do not hold each input row once ({what})")


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
