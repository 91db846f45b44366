"""The version a scoring job runs: loaded once, pinned, and what its rows add up to.

:class:`ScoredModel` turns a chunk of raw rows into the frame the model reads (checked,
with behavioural features where the model has them) and into output rows; :class:`Totals`
sums the alerts and probabilities the run logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import ScoringError
from fraudkit.science.features import FeatureState
from fraudkit.science.models import PROBABILITY_COLUMN
from fraudkit.scoring import parts
from fraudkit.scoring.inputs import ROW_COLUMN, check_chunk
from fraudkit.tracking.model_packaging import read_definitions
from fraudkit.tracking.store import quiet_downloads

if TYPE_CHECKING:
    from fraudkit.science.features import FeatureSpec
    from fraudkit.science.schema import TransactionSchema

__all__ = ["ScoredModel", "ScoringJob", "Totals", "load_scored_model", "part_totals"]


@dataclass(frozen=True)
class ScoredModel:
    """The version being scored: its pinned URI, what it reads, and the model itself.

    The model is loaded on first use (:meth:`decide`): a Dask driver, which only plans
    and collects, never pays for it; each worker loads it once.

    Parameters
    ----------
    uri : str
        ``models:/NAME/VERSION``: an alias is resolved once, so a job never mixes versions.
    name, version : str
        The registered model and version.
    tracking_uri : str
        The store the model is loaded from.
    columns : list of str
        Its input columns.
    schema : TransactionSchema or None
        The schema it was trained on (None for a Kaggle-schema model).
    spec : FeatureSpec or None
        Its behavioural features' definitions, as the model was logged with them.
    """

    uri: str
    name: str
    version: str
    tracking_uri: str
    columns: list[str]
    schema: TransactionSchema | None
    spec: FeatureSpec | None = None

    @property
    def needs_features(self) -> bool:
        """Whether behavioural features are computed from the file's history."""
        if self.schema is None or self.spec is None:
            return False
        return any(c not in self.schema.feature_columns for c in self.columns)

    @cached_property
    def model(self) -> Any:
        """The served model (``mlflow.pyfunc.PyFuncModel``), loaded once, skops-checked."""
        from mlflow import MlflowClient

        from fraudkit.tracking.registry import load_model

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        with quiet_downloads():  # MLflow's bar would cut through the job's own
            return load_model(self.uri, client=client)

    def frame(self, chunk: pd.DataFrame, source: str, state: FeatureState | None) -> pd.DataFrame:
        """The checked frame the model reads for ``chunk`` (features from ``state``)."""
        checked = check_chunk(chunk, self.columns, self.schema, source)
        if state is None or self.schema is None:
            return checked
        features = state.update(checked.reset_index(drop=True)).set_axis(checked.index)
        return pd.concat([checked[self.schema.feature_columns], features], axis=1)

    def decide(
        self, chunk: pd.DataFrame, frame: pd.DataFrame, params: dict[str, Any]
    ) -> pd.DataFrame:
        """The output rows of ``chunk``: ``row``, the schema's id, the served columns."""
        # Only the model's columns: MLflow warns of every other one, on every call.
        decided = self.model.predict(frame[self.columns], params=params or None)
        ids = {ROW_COLUMN: np.asarray(chunk.index, dtype=np.int64)}
        if self.schema is not None and self.schema.id:
            ids[self.schema.id] = chunk[self.schema.id].to_numpy()
        return pd.concat([pd.DataFrame(ids), decided.reset_index(drop=True)], axis=1)


def load_scored_model(uri: str, tracking_uri: str) -> ScoredModel:
    """Resolve ``uri`` to its version and read what the version reads (not the model).

    Raises
    ------
    ScoringError
        ``uri`` names no registered version (``runs:/`` and paths cannot be scored).
    RegistryError, ModelError
        The version does not exist or cannot be read.
    """
    from mlflow import MlflowClient

    from fraudkit.tracking.registry import model_spec, resolve_model_uri

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = resolve_model_uri(client, uri)
    if version is None:
        raise ScoringError(
            f"{uri!r} names no registered version; score models:/NAME@ALIAS or "
            "models:/NAME/VERSION (`fraudkit dashboard registry` lists them)"
        )
    pinned = f"models:/{version.name}/{version.version}"
    spec = model_spec(pinned, client=client)
    inputs = spec.get_input_schema()
    columns = [str(c) for c in inputs.input_names()] if inputs is not None else []
    schema, features = read_definitions(spec)
    return ScoredModel(pinned, version.name, str(version.version), tracking_uri, columns,
                       schema, features)  # fmt: skip


@dataclass
class Totals:
    """What the scored rows add up to (reused parts included)."""

    rows: int = 0
    alerts: int = 0
    probability_sum: float = 0.0
    alert_probability_sum: float = 0.0

    def add(self, decided: pd.DataFrame) -> None:
        """Count ``decided`` (output rows) in."""
        probability = decided[PROBABILITY_COLUMN].to_numpy(dtype=float)
        alert = decided["alert"].to_numpy(dtype=bool)
        self.rows += len(decided)
        self.alerts += int(alert.sum())
        self.probability_sum += float(probability.sum())
        self.alert_probability_sum += float(probability[alert].sum())

    def merge(self, other: Totals) -> None:
        """Add another chunk's totals."""
        self.rows += other.rows
        self.alerts += other.alerts
        self.probability_sum += other.probability_sum
        self.alert_probability_sum += other.alert_probability_sum

    def metrics(self) -> dict[str, float]:
        """The run's metrics: rows, alerts, alert rate, the calibration's expectations."""
        rows = max(self.rows, 1)
        return {
            "rows": float(self.rows),
            "alerts": float(self.alerts),
            "alert_rate": self.alerts / rows,
            # A calibrated probability is the fraud rate it predicts: their mean is the
            # share of frauds expected in the file, their mean over alerts the precision.
            "expected_fraud_rate": self.probability_sum / rows,
            "expected_alert_precision": (
                self.alert_probability_sum / self.alerts if self.alerts else float("nan")
            ),
        }


def part_totals(folder: Path, index: int) -> Totals:
    """The totals of a part written by an earlier, interrupted run of the same job."""
    import pyarrow.parquet as pq

    totals = Totals()
    columns = [PROBABILITY_COLUMN, "alert"]
    totals.add(pq.read_table(parts.part_path(folder, index), columns=columns).to_pandas())
    return totals


@dataclass(frozen=True)
class ScoringJob:
    """One file's scoring, as the local and the Dask paths run it.

    Parameters
    ----------
    scored : ScoredModel
        The version.
    source : Path
        The input file.
    output : Path
        The folder of parts.
    done : frozenset of int
        Parts an interrupted run of the same job already wrote.
    params : dict
        The served model's inference params (``reasons``).
    chunk_rows : int
        Rows a chunk or block.
    total_rows : int or None
        The input's data rows (None when unknown: a compressed CSV).
    on_progress : callable, optional
        Called with (rows scored, total rows or None).
    """

    scored: ScoredModel
    source: Path
    output: Path
    done: frozenset[int]
    params: dict[str, Any]
    chunk_rows: int
    total_rows: int | None = None
    on_progress: Callable[[int, int | None], None] | None = None

    def progress(self, rows: int, total: int | None) -> None:
        """Report ``rows`` of ``total`` scored."""
        if self.on_progress is not None:
            self.on_progress(rows, total)

    def reused(self) -> Totals:
        """What the parts already written add up to."""
        totals = Totals()
        for index in sorted(self.done):
            totals.merge(part_totals(self.output, index))
        return totals
