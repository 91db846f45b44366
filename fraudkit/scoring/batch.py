"""Batch scoring: a registered version's decisions on every row of a file, as a logged run.

:func:`score_file` reads the input (CSV or Parquet) a chunk at a time, checks each chunk
(a malformed row is named by its row and nothing of it is scored), computes the
behavioural features the model needs from the file's own history, runs the served model
(:mod:`fraudkit.tracking.served`) on it and writes the rows' ``row`` (position in the
input), the schema's id column and the served model's columns as Parquet parts
(:mod:`fraudkit.scoring.parts`). Memory stays flat in the file's size. With ``workers`` or
``scheduler`` the partitions of a ``dask.dataframe`` over the input are scored as Dask tasks
(:mod:`fraudkit.scoring.cluster`). The rows equal the served model's bit for bit: each
chunk goes through the same ``pyfunc`` predict.

The scoring run (in the monitoring experiment, tagged ``fraudkit.scoring``) records the
model version, the input's fingerprint, the alert count and the alert rate beside the
rates the calibration predicts; it ends FINISHED only once the parts hold every input row
exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fraudkit.core.config import ExperimentType
from fraudkit.core.exceptions import DataValidationError, FraudkitError, ScoringError
from fraudkit.core.tags import (
    DATA_FINGERPRINT_TAG,
    ERROR_TAG,
    MODEL_NAME_TAG,
    MODEL_VERSION_TAG,
    SCORING_OUTPUT_TAG,
    SCORING_RETRIED_TAG,
    SCORING_ROWS_TAG,
    SCORING_TAG,
)
from fraudkit.science.features import FeatureState
from fraudkit.scoring import parts
from fraudkit.scoring.cluster import score_partitions
from fraudkit.scoring.inputs import input_kind, iter_chunks, scan_input
from fraudkit.scoring.model import (
    ScoredModel,
    ScoringJob,
    Totals,
    load_scored_model,
    part_totals,
)
from fraudkit.tracking import run_naming

if TYPE_CHECKING:
    from fraudkit.tracking.manager import MlflowManager

__all__ = ["DEFAULT_CHUNK_ROWS", "ScoringResult", "score_file"]

DEFAULT_CHUNK_ROWS = 100_000  # rows a chunk: some 25 MB of a Kaggle-shaped file


@dataclass(frozen=True)
class ScoringResult:
    """A finished scoring job.

    Attributes
    ----------
    run_id : str
        The scoring run.
    output : Path
        The folder of Parquet parts.
    model_uri : str
        The pinned version scored (``models:/NAME/VERSION``).
    totals : Totals
        Rows, alerts and probability sums.
    parts : int
        Parts in the output.
    reused : int
        Parts an earlier, interrupted run had written (skipped).
    retried : list of int
        Parts whose first worker was lost (Dask): scored again, each row kept once.
    seconds : float
        Wall time.
    """

    run_id: str
    output: Path
    model_uri: str
    totals: Totals
    parts: int
    reused: int
    retried: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def metrics(self) -> dict[str, float]:
        """What the run logged as metrics."""
        return {
            **self.totals.metrics(),
            "parts": float(self.parts),
            "parts_reused": float(self.reused),
            "parts_retried": float(len(self.retried)),
            "seconds": self.seconds,
            "rows_per_second": self.totals.rows / self.seconds if self.seconds else 0.0,
        }


def score_file(
    model_uri: str,
    input_path: str | Path,
    output: str | Path,
    *,
    reasons: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    manager: MlflowManager | str | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ScoringResult:
    """Score every row of ``input_path`` with a registered version; log the scoring run.

    Parameters
    ----------
    model_uri : str
        ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
    input_path : str or Path
        A ``.csv`` (optionally compressed) or ``.parquet`` file of raw transactions: the
        model's input columns, or, for a model with behavioural features, its schema's
        columns in time order (the features are computed from the file's history).
    output : str or Path
        The folder the Parquet parts go to; a folder an interrupted run of the same job
        left is completed, its parts kept.
    reasons : int, optional
        Reasons a row (0 to 10; 0 is the fast path); default the version's own (3).
    workers : int, optional
        Score on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Score on the Dask cluster at this address (its workers must reach the store).
    chunk_rows : int, default 100,000
        Rows a chunk (local) or a partition holds at most.
    manager : MlflowManager or str, optional
        The tracking store; default the shared manager.
    on_progress : callable, optional
        Called with (rows scored, total rows or None) as the chunks finish.

    Returns
    -------
    ScoringResult

    Raises
    ------
    DataValidationError
        A malformed row (named by its row) or an unreadable input; nothing of its chunk
        is written and the input is never changed.
    ScoringError
        The output folder holds another job's scores, or a model that is not registered.
    """
    from fraudkit.tracking.manager import resolve_manager

    store = resolve_manager(manager)
    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be at least 1, got {chunk_rows}")
    source = Path(input_path)
    input_kind(source)
    distributed = bool(workers or scheduler)
    # The file is hashed on a thread (hashlib releases the interpreter lock) while the
    # version is resolved and, to score here, its model loaded: neither waits for the other.
    with ThreadPoolExecutor(1, thread_name_prefix="fraudkit-scan") as pool:
        scanning = pool.submit(scan_input, source)
        scored = load_scored_model(model_uri, store.tracking_uri)
        if distributed and scored.needs_features:
            raise ScoringError(
                f"{scored.uri} computes behavioural features from each row's history, which "
                "a partition alone does not hold; score it without --workers/--scheduler"
            )
        if not distributed:
            scored.model  # noqa: B018 (loaded now, beside the hashing, not on the first chunk)
        fingerprint, total_rows = scanning.result()
    params = {} if reasons is None else {"reasons": int(reasons)}
    manifest = {
        "model_uri": scored.uri,
        "input": str(source.resolve()),
        "input_fingerprint": fingerprint,
        "layout": f"{'partitions' if distributed else 'chunks'} of {chunk_rows} rows",
        "reasons": "the version's default" if reasons is None else int(reasons),
    }
    done = parts.open_output(output, manifest)
    parts.clear_attempts(output)  # an earlier, failed run's attempts are not this run's
    run_id = _open_run(store, scored, manifest)
    status, started = "FAILED", time.monotonic()
    try:
        job = ScoringJob(scored, source, Path(output), frozenset(done), params, chunk_rows,
                         total_rows, on_progress)  # fmt: skip
        if distributed:
            totals, count, retried = score_partitions(
                job, workers=workers, scheduler=scheduler, tracking_uri=store.tracking_uri
            )
        else:
            (totals, count), retried = _score_locally(job), []
        parts.verify_rows(output, totals.rows)
        parts.clear_attempts(output)
        result = ScoringResult(run_id, Path(output), scored.uri, totals, count,
                               len(done), retried, time.monotonic() - started)  # fmt: skip
        _log_result(store, run_id, result)
        status = "FINISHED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except FraudkitError as error:
        store.client.set_tag(run_id, ERROR_TAG, str(error)[:5000])
        raise
    finally:
        store.client.set_terminated(run_id, status)


def _score_locally(job: ScoringJob) -> tuple[Totals, int]:
    """Score the chunks in order on this process; return the totals and the part count."""
    scored = job.scored
    state = None
    if scored.needs_features and scored.schema is not None:
        state = FeatureState(scored.schema, scored.spec)
    totals, count = Totals(), 0
    for index, chunk in enumerate(_chunks(job.source, job.chunk_rows)):
        count += 1
        if index in job.done:
            if state is not None:  # later chunks need its rows' history
                scored.frame(chunk, str(job.source), state)
            totals.merge(part_totals(job.output, index))
        else:
            decided = scored.decide(chunk, scored.frame(chunk, str(job.source), state), job.params)
            parts.write_part(job.output, index, decided)
            totals.add(decided)
        job.progress(totals.rows, job.total_rows)
    return totals, count


def _chunks(source: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The input's chunks, each read on a thread while the one before it is scored."""
    chunks = iter_chunks(source, rows)
    # pandas' CSV parser and pyarrow release the interpreter lock as they read, so the
    # next chunk is read while this one is scored; memory holds one chunk more.
    with ThreadPoolExecutor(1, thread_name_prefix="fraudkit-read") as pool:
        pending = pool.submit(next, chunks, None)
        chunk = pending.result()
        if chunk is None:
            raise DataValidationError(f"{source}: no data rows; nothing to score")
        while chunk is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk
            chunk = pending.result()


def _open_run(store: MlflowManager, scored: ScoredModel, manifest: dict[str, Any]) -> str:
    """Create the scoring run (RUNNING) in the monitoring experiment, with the job's params."""
    experiment = ExperimentType.MONITORING
    run = store.client.create_run(
        store.experiment_id(experiment),
        run_name=run_naming.run_name(experiment, "scoring"),
        tags={
            **run_naming.run_tags(experiment, "scoring"),
            SCORING_TAG: "true",
            MODEL_NAME_TAG: scored.name,
            MODEL_VERSION_TAG: scored.version,
            DATA_FINGERPRINT_TAG: manifest["input_fingerprint"],
        },
    )
    store.log_params({k: str(v) for k, v in manifest.items()}, run_id=run.info.run_id)
    return run.info.run_id


def _log_result(store: MlflowManager, run_id: str, result: ScoringResult) -> None:
    """The run's metrics and, where a worker was lost, which parts were scored again."""
    store.log_metrics(result.metrics, run_id=run_id)
    store.set_tags(
        {
            SCORING_OUTPUT_TAG: str(result.output.resolve()),
            SCORING_ROWS_TAG: "every input row is in the output exactly once",
            SCORING_RETRIED_TAG: ",".join(map(str, result.retried)) or "none",
        },
        run_id=run_id,
    )
