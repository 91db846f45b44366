"""Registered versions as plain records, and the two answers built from them.

The registry overview and the side-by-side comparison of versions are each built by one
function, :func:`registry_rows` and :func:`comparison_rows`, from
:class:`VersionRecord` values. Two readers produce those records: the MLflow client
(:func:`fraudkit.tracking.history.read_versions` and
:func:`~fraudkit.tracking.history.read_compared`) and the dashboard's SQL fast path
(:mod:`fraudkit.dashboard.records`). Whichever path read them, the answer is built by
the same code; :func:`registry_frame` and :func:`comparison_frame` only type the rows
as DataFrames, and the dashboard turns the same rows into JSON records.

This module imports neither MLflow nor pandas at import time (pandas is imported by the
two frame functions alone), so the dashboard's fast path can build its answers from it
in a fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from fraudkit.core.tags import MODEL_CLASS_TAG, MODEL_TYPE_TAG

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COMPARE_FIXED",
    "DEFAULT_STAGES",
    "DIFFERENCE_LABEL",
    "KEY_METRICS",
    "REGISTRY_COLUMNS",
    "Comparison",
    "SourceRun",
    "VersionRecord",
    "comparison_frame",
    "comparison_rows",
    "model_type",
    "registry_frame",
    "registry_rows",
]

KEY_METRICS = ("average_precision", "roc_auc", "fraud_precision", "fraud_recall", "fraud_f1")
REGISTRY_COLUMNS = [
    "model",
    "version",
    "aliases",
    "created",
    "status",
    "run_id",
    "model_type",
    *KEY_METRICS,
]
COMPARE_FIXED = ["alias", "version", "run_id", "created", "model_type"]
DEFAULT_STAGES = ("Production", "Staging")
DIFFERENCE_LABEL = "difference"


class SourceRun(NamedTuple):
    """What a version's source run holds for the two answers.

    Attributes
    ----------
    metrics : dict
        The latest value of every metric (NaN kept as NaN).
    params : dict
        Every param, as text.
    """

    metrics: dict[str, float]
    params: dict[str, str]


class VersionRecord(NamedTuple):
    """One registered model version with its source run, as either reader found it.

    Attributes
    ----------
    model : str
    version : int
    created : int or None
        Creation time, epoch milliseconds.
    status : str or None
    run_id : str or None
    aliases : tuple of str
        The aliases the version holds.
    tags : dict
        Version tags.
    run : SourceRun or None
        The source run; None when the version has none, it no longer exists, or the
        reader was asked not to read it.
    """

    model: str
    version: int
    created: int | None
    status: str | None
    run_id: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run: SourceRun | None


class Comparison(NamedTuple):
    """The rows of a comparison and the names of its varying columns.

    Attributes
    ----------
    rows : list of dict
        One row per version (``label``, :data:`COMPARE_FIXED` with ``created`` in epoch
        milliseconds, the metrics and ``param.<name>`` values its source run has) and,
        with exactly two versions, a ``difference`` row of second minus first per metric.
        A row leaves out what it lacks, so a frame shows NaN there.
    metrics : list of str
        Every metric of the compared runs, sorted.
    params : list of str
        Every param of the compared runs as ``param.<name>``, sorted.
    """

    rows: list[dict[str, Any]]
    metrics: list[str]
    params: list[str]

    @property
    def columns(self) -> list[str]:
        """``label``, :data:`COMPARE_FIXED`, the metrics, then the params."""
        return ["label", *COMPARE_FIXED, *self.metrics, *self.params]


def model_type(tags: dict[str, str], params: dict[str, str]) -> str | None:
    """Return a version's model type: its tag, its run's ``model_type`` param, its class tag."""
    return tags.get(MODEL_TYPE_TAG) or params.get("model_type") or tags.get(MODEL_CLASS_TAG)


def _run_data(version: VersionRecord) -> SourceRun:
    return version.run if version.run is not None else SourceRun({}, {})


def registry_rows(versions: Iterable[VersionRecord]) -> list[dict[str, Any]]:
    """Build the registry overview: one row per version, sorted by model and version.

    Parameters
    ----------
    versions : iterable of VersionRecord
        With their source runs read.

    Returns
    -------
    list of dict
        Keys :data:`REGISTRY_COLUMNS`: model, version, aliases (sorted, comma-joined),
        created (epoch ms or None), status, run_id, model_type and the
        :data:`KEY_METRICS` as logged on the source run (None when not logged).
    """
    rows = []
    for version in sorted(versions, key=lambda v: (v.model, v.version)):
        run = _run_data(version)
        rows.append(
            {
                "model": version.model,
                "version": version.version,
                "aliases": ",".join(sorted(version.aliases)),
                "created": version.created,
                "status": version.status,
                "run_id": version.run_id,
                "model_type": model_type(version.tags, run.params),
                **{name: run.metrics.get(name) for name in KEY_METRICS},
            }
        )
    return rows


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def comparison_rows(chosen: Sequence[tuple[str, VersionRecord]]) -> Comparison:
    """Build the comparison of versions: one row per version plus a ``difference`` row.

    Parameters
    ----------
    chosen : sequence of (str, VersionRecord)
        The versions in order, each with its label (an alias, or ``v<N>``).

    Returns
    -------
    Comparison
        With exactly two versions the last row is ``difference``: second minus first for
        every metric (NaN where either lacks it); with the default stages that is staging
        minus production.
    """
    metrics = sorted({name for _, v in chosen for name in _run_data(v).metrics})
    params = sorted({name for _, v in chosen for name in _run_data(v).params})
    rows = []
    for label, version in chosen:
        run = _run_data(version)
        rows.append(
            {
                "label": label,
                "alias": ",".join(sorted(version.aliases)),
                "version": version.version,
                "run_id": version.run_id,
                "created": version.created,
                "model_type": model_type(version.tags, run.params),
                **run.metrics,
                **{f"param.{name}": value for name, value in run.params.items()},
            }
        )
    if len(rows) == 2:
        first, second = rows
        diff = {m: _number(second.get(m)) - _number(first.get(m)) for m in metrics}
        rows.append({"label": DIFFERENCE_LABEL, **diff})
    return Comparison(rows, metrics, [f"param.{name}" for name in params])


def _with_timestamp(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with ``created`` (epoch ms) as a UTC Timestamp, when it has one."""
    import pandas as pd

    if "created" not in row:
        return row
    created = row["created"]
    stamp = pd.NaT if created is None else pd.Timestamp(created, unit="ms", tz="UTC")
    return {**row, "created": stamp}


def registry_frame(versions: Iterable[VersionRecord]) -> pd.DataFrame:
    """Return :func:`registry_rows` as a DataFrame (``created`` as UTC timestamps).

    Returns
    -------
    DataFrame
        Columns :data:`REGISTRY_COLUMNS`; version as int, the metrics as floats.
    """
    import pandas as pd

    rows = [_with_timestamp(row) for row in registry_rows(versions)]
    return pd.DataFrame(rows, columns=REGISTRY_COLUMNS)


def comparison_frame(chosen: Sequence[tuple[str, VersionRecord]]) -> pd.DataFrame:
    """Return :func:`comparison_rows` as a DataFrame indexed by ``label``.

    Returns
    -------
    DataFrame
        Columns :data:`COMPARE_FIXED` (``created`` as UTC timestamps, ``version`` as
        nullable Int64), the metrics, then ``param.<name>`` per param.
    """
    import pandas as pd

    found = comparison_rows(chosen)
    frame = pd.DataFrame([_with_timestamp(row) for row in found.rows]).set_index("label")
    frame = frame[found.columns[1:]]
    frame["version"] = frame["version"].astype("Int64")
    return frame
