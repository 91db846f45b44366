"""Batch scoring on Dask: one task per block of the input, each writing its own part.

The input's partitions are planned on the driver without parsing anything: a plain CSV
is cut at line breaks every ``chunk_rows`` data rows (one scan counting ``\\n``, so every
block knows the number of its first row), a Parquet file by its row groups (from its
footer). Each task reads its block as the local path reads a chunk (pandas' C parser, so
the numbers are the same bits), checks it (a malformed row is named by its row in the
file), scores it with the served model, which each worker process loads once, and
writes its part atomically (:func:`fraudkit.scoring.parts.write_part`).

Why not ``dask.dataframe.read_csv``: it infers the column types from a sample of the first
block and fails a later block that disagrees with a message that names no row, where
the scoring contract is to name the malformed row. The blocks here are the same
partitions, parsed as the file's own chunks.

Faults: a worker lost mid-task (killed, out of memory) has its task run again on another
worker by the scheduler; the part is written whole or not at all, so every row ends up in
the output exactly once, and each attempt leaves a marker, so the run can name the parts
scored twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import ScoringError
from fraudkit.runner.cluster import dask_client
from fraudkit.science.checks import COMPRESSIONS
from fraudkit.scoring import parts
from fraudkit.scoring.inputs import input_kind
from fraudkit.scoring.model import ScoredModel, ScoringJob, Totals, load_scored_model

__all__ = ["Block", "plan_blocks", "score_block", "score_partitions"]

_SCAN = 1 << 22  # bytes scanned at a time for line breaks


@dataclass(frozen=True)
class Block:
    """A partition of the input: its rows from ``first_row`` on, and where they are.

    For a CSV, the byte range ``[start, end)`` of the file (the header is read apart);
    for a Parquet file, the row group ``group``.
    """

    index: int
    first_row: int
    rows: int
    start: int = 0
    end: int = 0
    group: int = -1


def plan_blocks(path: Path, chunk_rows: int) -> list[Block]:
    """The input's partitions, planned from its bytes (CSV) or its footer (Parquet).

    Raises
    ------
    ScoringError
        A compressed CSV (it cannot be cut without reading it all: decompress it first,
        or score it locally).
    """
    if input_kind(path) == "parquet":
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(path).metadata
        blocks, first = [], 0
        for group in range(metadata.num_row_groups):
            rows = int(metadata.row_group(group).num_rows)
            blocks.append(Block(group, first, rows, group=group))
            first += rows
        return blocks
    if path.suffix.lower() in COMPRESSIONS:
        raise ScoringError(
            f"{path}: a compressed CSV cannot be split among workers; decompress it (or "
            "convert it to Parquet) first, or score it without --workers/--scheduler"
        )
    return _csv_blocks(path, chunk_rows)


def _csv_blocks(path: Path, chunk_rows: int) -> list[Block]:
    """Cut a CSV after every ``chunk_rows``-th data row (the header is line 0).

    Only the cut points are kept, not every line's end: planning takes memory flat in the
    file's size.
    """
    cuts: list[int] = []  # the byte just after lines 0 (the header), R, 2R, ...
    lines = offset = 0
    last = b""
    with path.open("rb") as stream:
        while piece := stream.read(_SCAN):
            breaks = np.flatnonzero(np.frombuffer(piece, dtype=np.uint8) == 0x0A)
            ended = np.arange(lines, lines + len(breaks))  # the lines these breaks end
            cuts.extend((breaks[ended % chunk_rows == 0] + offset + 1).tolist())
            lines += len(breaks)
            offset += len(piece)
            last = piece[-1:]
    if offset and last != b"\n":
        lines += 1  # a last line without its line break
    rows = max(lines - 1, 0)
    blocks = []
    for index, first in enumerate(range(0, rows, chunk_rows)):
        count = min(chunk_rows, rows - first)
        end = cuts[index + 1] if first + chunk_rows < rows else offset
        blocks.append(Block(index, first, count, start=cuts[index], end=end))
    return blocks


def read_block(path: Path, block: Block) -> pd.DataFrame:
    """A block's rows, indexed by their positions in the file."""
    if block.group >= 0:
        import pyarrow.parquet as pq

        frame = pq.ParquetFile(path).read_row_group(block.group).to_pandas()
    else:
        import io

        with path.open("rb") as stream:
            header = stream.readline()
            stream.seek(block.start)
            body = stream.read(block.end - block.start)
        frame = pd.read_csv(io.BytesIO(header + body), engine="c")
    if len(frame) != block.rows:
        raise ScoringError(
            f"{path}: rows {block.first_row + 1}-{block.first_row + block.rows} parse as "
            f"{len(frame)} rows (a quoted field holding a line break?); score it without "
            "--workers/--scheduler"
        )
    return frame.set_axis(pd.RangeIndex(block.first_row, block.first_row + len(frame)))


# The scored model of each worker process, loaded on its first task: (uri, store) -> model.
_MODELS: dict[tuple[str, str], ScoredModel] = {}


def score_block(
    block: Block,
    path: Path,
    output: Path,
    uri: str,
    tracking_uri: str,
    params: dict[str, Any],
) -> Totals:
    """Score one block on a worker and write its part; return its totals (a Dask task)."""
    parts.record_attempt(output, block.index)
    key = (uri, tracking_uri)
    if key not in _MODELS:
        _MODELS[key] = load_scored_model(uri, tracking_uri)
    scored = _MODELS[key]
    chunk = read_block(path, block)
    decided = scored.decide(chunk, scored.frame(chunk, str(path), None), params)
    parts.write_part(output, block.index, decided)
    totals = Totals()
    totals.add(decided)
    return totals


def score_partitions(
    job: ScoringJob, *, workers: int | None, scheduler: str | None, tracking_uri: str
) -> tuple[Totals, int, list[int]]:
    """Score the blocks of ``job`` not yet done on a Dask cluster.

    Returns
    -------
    tuple of (Totals, int, list of int)
        The totals (reused parts included), the number of parts, and the parts whose
        first worker was lost.
    """
    from distributed import as_completed

    blocks = plan_blocks(job.source, job.chunk_rows)
    total_rows = sum(b.rows for b in blocks)
    if total_rows == 0:
        raise ScoringError(f"{job.source}: no data rows; nothing to score")
    totals = job.reused()
    pending = [b for b in blocks if b.index not in job.done]
    size = min(workers or os.cpu_count() or 1, max(len(pending), 1))
    with dask_client(scheduler, size) as client:
        task = (job.source.resolve(), job.output.resolve(), job.scored.uri, tracking_uri)
        futures = [
            client.submit(score_block, block, *task, job.params, pure=False) for block in pending
        ]
        try:
            for future in as_completed(futures, loop=client.loop):
                totals.merge(future.result())
                job.progress(totals.rows, total_rows)
        except BaseException:
            client.cancel(futures, force=True)
            raise
    return totals, len(blocks), parts.retried_parts(job.output)
