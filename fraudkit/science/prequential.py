"""Prequential validation: rolling, delay-gapped folds for choosing a model.

One time split ranks models on one test period, partly by chance. Prequential validation
(the Fraud-Detection-Handbook's chapter 5) rolls a block design forward through the data::

    fold 0   | train  | gap  | test |
    fold 1            | train  | gap  | test |          (test_days later)
    fold 2                     | train  | gap  | test | (its test ends with the data)

Each fold trains on its train block, skips the gap and scores its test block; the next
fold is the same design ``test_days`` later, and the last fold's test block ends with the
data. The gap is the label delay: labels of the latest transactions arrive weeks late, so
a model put live on the first test day was trained on data that old. Every model type
is scored on the same folds, so the models are compared fold by fold (a paired test).

Each model is reported with the mean and spread of its AUPRC and daily Card
Precision@k over the folds, and with a prediction interval for the **next** period's
value: ``mean +- t(n - 1, (1 + c) / 2) * sd * sqrt(1 + 1 / n)`` over ``n`` folds, the
interval a new draw from the folds' distribution falls in with probability ``c`` (normal
values, exchangeable folds). ``benchmarks/bench_evaluation.py`` measures how often it
holds the realised value of the period after the data on the entity simulator.

The folds are independent, picklable tasks (:class:`FoldTask`, :func:`evaluate_fold`):
:func:`run_prequential` runs them one after another, or through a ``map_fn``
(:func:`fraudkit.sweeps.folds.cluster_map`: on a Dask cluster), with identical results.

Point in time: the behavioural features of :class:`~fraudkit.science.transactions.Transactions`
are computed over the whole frame, each from history only (labels as they were known),
so a test block's features are what they would have been on its days.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.science.alerts import card_precision_by_day
from fraudkit.science.card_days import CardDays
from fraudkit.science.features import DEFAULT_LABEL_DELAY, FeatureSpec, duration_ns
from fraudkit.science.fold_summary import DEFAULT_CONFIDENCE, METRICS, PrequentialResult
from fraudkit.science.metrics import check_fraction, evaluate
from fraudkit.science.models import MODEL_TYPES, predict_scores, train_model
from fraudkit.science.schema import NS_PER_DAY
from fraudkit.science.transactions import Transactions

__all__ = [
    "Fold",
    "FoldTask",
    "MapFn",
    "evaluate_fold",
    "fold_plan",
    "fold_tasks",
    "label_delay_days",
    "prequential_folds",
    "run_prequential",
    "sequential_map",
]

# A function that applies its first argument to every item of a list, in order.
MapFn = Callable[[Callable[[Any], Any], list[Any]], list[Any]]
# CP@k's interval over days is not used here (only the fold mean is): one resample is the
# least card_precision_by_day computes.
_CP_RESAMPLES = 1


@dataclass(frozen=True, eq=False)
class Fold:
    """One fold: its train, gap and test blocks as half-open day ranges and row positions.

    Attributes
    ----------
    index : int
        Position of the fold, oldest first (0).
    train, gap, test : tuple of int
        ``(first day, day after the last)`` of each block, in the day index passed to
        :func:`prequential_folds`.
    train_rows, test_rows : numpy.ndarray
        Positions (``iloc``) of the rows of the train and test blocks; the gap's rows
        belong to neither.
    """

    index: int
    train: tuple[int, int]
    gap: tuple[int, int]
    test: tuple[int, int]
    train_rows: np.ndarray
    test_rows: np.ndarray

    def to_dict(self) -> dict[str, int]:
        """The fold's day ranges and row counts as plain values."""
        return {
            "fold": self.index,
            "train_first_day": self.train[0],
            "train_end_day": self.train[1],
            "test_first_day": self.test[0],
            "test_end_day": self.test[1],
            "n_train": int(self.train_rows.size),
            "n_test": int(self.test_rows.size),
        }


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


def _check_blocks(train_days: int, test_days: int, gap_days: int, n_folds: int | None) -> None:
    sizes = {"train_days": (train_days, 1), "test_days": (test_days, 1), "gap_days": (gap_days, 0)}
    if n_folds is not None:
        sizes["n_folds"] = (n_folds, 1)
    for name, (value, least) in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ConfigurationError(f"{name} = {value!r} must be a whole number >= {least}")


def _fits(span: int, train_days: int, test_days: int, gap_days: int) -> int:
    """Folds of the design that fit in ``span`` days (0 when not one does)."""
    return max((span - train_days - gap_days) // test_days, 0)


def _day_numbers(days: ArrayLike) -> np.ndarray:
    day = np.asarray(days)
    if day.ndim != 1 or day.size == 0 or not np.issubdtype(day.dtype, np.integer):
        raise DataValidationError(
            "days must be a non-empty 1-D array of whole day numbers, one per row; "
            "take them from TransactionSchema.review_keys"
        )
    return day


def fold_plan(
    days: ArrayLike, n_folds: int, *, train_days: int, test_days: int, gap_days: int
) -> tuple[int, str | None]:
    """How many of the ``n_folds`` asked fit in the data, and a note when fewer do.

    For a notebook that runs prequential validation when it can: data spanning too few
    days (the Kaggle schema covers two) give 0 folds and a note saying what the blocks
    need, instead of the error :func:`prequential_folds` raises.

    Parameters
    ----------
    days : array-like of int
        Each row's day.
    n_folds : int
        Folds wanted; 0 asks for none.
    train_days, test_days, gap_days : int
        The blocks, as :func:`prequential_folds`.

    Returns
    -------
    tuple of (int, str or None)
        The folds to run, ``min(n_folds, folds that fit)``, and the note, None when all
        the folds asked fit (or none were asked).

    Raises
    ------
    ConfigurationError
        A block size or ``n_folds`` is not a whole number in range.
    DataValidationError
        ``days`` is not a non-empty 1-D array of whole day numbers.
    """
    if n_folds == 0:
        return 0, None
    _check_blocks(train_days, test_days, gap_days, n_folds)
    day = _day_numbers(days)
    span = int(day.max()) - int(day.min()) + 1
    fits = _fits(span, train_days, test_days, gap_days)
    if fits >= n_folds:
        return n_folds, None
    needs = train_days + gap_days + n_folds * test_days
    reason = (
        f"prequential validation asked for {n_folds} folds, {needs} days (train {train_days} "
        f"+ gap {gap_days} + {n_folds} x test {test_days}), but the data span {_days(span)}"
    )
    if fits == 0:
        return 0, f"{reason}: skipped; pass shorter blocks or data spanning more days"
    return fits, f"{reason}: the latest {fits} fold{'s' if fits > 1 else ''} run"


def prequential_folds(
    days: ArrayLike,
    *,
    train_days: int,
    test_days: int,
    gap_days: int,
    n_folds: int | None = None,
) -> list[Fold]:
    """Cut rows into rolling train / gap / test folds by their day.

    The last fold's test block ends with the data's last day; each earlier fold is the
    same design ``test_days`` earlier, so the test blocks tile the end of the data.

    Parameters
    ----------
    days : array-like of int
        Each row's day (e.g. the first of
        :meth:`~fraudkit.science.schema.TransactionSchema.review_keys`).
    train_days, test_days : int
        Length of the train and test blocks in days, at least 1.
    gap_days : int
        Days dropped between train and test (the label delay), at least 0.
    n_folds : int, optional
        How many folds, the latest ones; by default every fold that fits.

    Returns
    -------
    list of Fold
        Oldest first.

    Raises
    ------
    ConfigurationError
        A block size is not a whole number in range, or more folds are asked than fit.
    DataValidationError
        The data span too few days for one fold, or a block holds no row.
    """
    _check_blocks(train_days, test_days, gap_days, n_folds)
    day = _day_numbers(days)
    first, last = int(day.min()), int(day.max())
    span, design = last - first + 1, train_days + gap_days
    fits = _fits(span, train_days, test_days, gap_days)
    if fits < 1:
        raise DataValidationError(
            f"the data span {_days(span)} (day {first} to {last}), but one fold needs "
            f"train_days + gap_days + test_days = {train_days} + {gap_days} + {test_days} = "
            f"{design + test_days} days; pass smaller blocks or more days of data"
        )
    if n_folds is not None and n_folds > fits:
        raise ConfigurationError(
            f"n_folds = {n_folds} needs {design + n_folds * test_days} days (train_days + "
            f"gap_days + n_folds * test_days) but the data span {_days(span)}; pass "
            f"n_folds <= {fits}"
        )
    count = fits if n_folds is None else n_folds
    folds = []
    for index in range(count):
        test_end = last + 1 - (count - 1 - index) * test_days
        test_first = test_end - test_days
        gap_first = test_first - gap_days
        train_first = gap_first - train_days
        blocks = {"train": (train_first, gap_first), "test": (test_first, test_end)}
        rows = {n: np.flatnonzero((day >= a) & (day < b)) for n, (a, b) in blocks.items()}
        for name, found in rows.items():
            if found.size == 0:
                raise DataValidationError(
                    f"fold {index}: the {name} block (days {blocks[name][0]} to "
                    f"{blocks[name][1] - 1}) holds no transactions; the data have a hole "
                    "there: pass longer blocks or fewer folds (n_folds)"
                )
        gap = (gap_first, test_first)
        folds.append(Fold(index, blocks["train"], gap, blocks["test"], rows["train"], rows["test"]))
    return folds


@dataclass(frozen=True, eq=False)
class FoldTask:
    """Everything one model on one fold needs, picklable, so that a worker can run it.

    ``train`` and ``test`` are the fold's blocks (the model's inputs, label, time and card
    columns); ``test_days`` each test row's day; ``card_column`` None counts each row as
    its own card; ``k`` the cards reviewed a day; ``options`` the keyword arguments of
    :func:`~fraudkit.science.models.train_model` (the data's ``model_options`` and the
    model's parameters); ``period`` what :meth:`Fold.to_dict` says of the fold, and the
    first and last test transaction times, copied into the result.
    """

    model_type: str
    train: pd.DataFrame
    test: pd.DataFrame
    test_days: np.ndarray
    label: str
    card_column: str | None
    k: int
    options: dict[str, Any] = field(default_factory=dict)
    period: dict[str, Any] = field(default_factory=dict)


def evaluate_fold(task: FoldTask) -> dict[str, Any]:
    """Train ``task``'s model on its train block and score its test block.

    The model is trained with the model-comparison notebook's recipe
    (:func:`~fraudkit.science.models.train_model`) and calibrated on the latest slice of
    the train block, before the gap (the notebook calibrates on its validation period),
    so its scores are fraud probabilities.

    Parameters
    ----------
    task : FoldTask

    Returns
    -------
    dict
        ``model``, the fold's ``period`` entries, ``n_fraud`` and ``n_fraud_cards`` (card
        days with a fraud) of the test block, ``average_precision`` (NaN without fraud),
        ``card_precision_at_k`` (the mean over the test days of the daily CP@k) and
        ``fit_seconds``.
    """
    started = time.perf_counter()
    model = train_model(task.train, task.model_type, **task.options)
    fit_seconds = time.perf_counter() - started
    scores = predict_scores(model, task.test)
    y = task.test[task.label].to_numpy()
    cards = task.test[task.card_column].to_numpy() if task.card_column else None
    daily = card_precision_by_day(
        y, scores, task.test_days, cards, k=task.k, n_resamples=_CP_RESAMPLES, min_days=2
    )
    return {
        "model": task.model_type,
        **task.period,
        "n_fraud": int(y.sum()),
        "n_fraud_cards": int(
            CardDays.of(task.test_days, cards, y.size).reduce(np.maximum, y).sum()
        ),
        "average_precision": evaluate(y, scores)["average_precision"],
        "card_precision_at_k": float(daily.mean),
        "fit_seconds": fit_seconds,
    }


def label_delay_days(spec: FeatureSpec | None) -> int:
    """The gap of the folds: the label delay of a feature spec in whole days (rounded up).

    Parameters
    ----------
    spec : FeatureSpec or None
        The data's feature definitions (:attr:`Transactions.spec`); None (the Kaggle
        schema) takes :data:`~fraudkit.science.features.DEFAULT_LABEL_DELAY`.

    Returns
    -------
    int
    """
    delay = spec.label_delay if spec is not None else DEFAULT_LABEL_DELAY
    return math.ceil(duration_ns(delay) / NS_PER_DAY)


def _model_types(model_types: str | Sequence[str]) -> list[str]:
    names = model_types.split(",") if isinstance(model_types, str) else list(model_types)
    candidates = [name.strip() for name in names if name.strip()]
    unknown = [name for name in candidates if name not in MODEL_TYPES]
    if unknown or not candidates:
        raise ConfigurationError(
            f"model types {', '.join(unknown) or '(none)'}: choose one or more of "
            f"{', '.join(MODEL_TYPES)}"
        )
    return list(dict.fromkeys(candidates))


def fold_tasks(
    data: Transactions,
    folds: Sequence[Fold],
    model_types: Sequence[str],
    *,
    days: np.ndarray,
    k: int = 100,
    card_column: str | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[FoldTask]:
    """One :class:`FoldTask` per fold and model type, fold by fold.

    Parameters
    ----------
    data : Transactions
        The rows the folds index (by position).
    folds : sequence of Fold
        From :func:`prequential_folds` on ``days``.
    model_types : sequence of str
        Model types of :func:`~fraudkit.science.models.train_model`.
    days : numpy.ndarray
        Each row's day.
    k : int, default 100
        Cards reviewed a day.
    card_column : str, optional
        The card column; None counts each transaction as its own card.
    model_params : mapping, optional
        Model type -> keyword arguments of ``train_model`` (classifier parameters,
        ``calibration``).

    Returns
    -------
    list of FoldTask
        For each fold, oldest first, one task per model type.
    """
    frame, schema = data.frame, data.schema
    wanted = [schema.time, schema.label, *data.input_columns, card_column]
    columns = [c for c in dict.fromkeys(wanted) if c is not None and c in frame.columns]
    times = schema.timestamps(frame)
    shared = {"label": schema.label, "card_column": card_column, "k": k}
    tasks = []
    for fold in folds:
        period = fold.to_dict() | {
            "test_start": pd.Timestamp(int(times[fold.test_rows].min())),
            "test_end": pd.Timestamp(int(times[fold.test_rows].max())),
        }
        train = frame.iloc[fold.train_rows][columns]
        test = frame.iloc[fold.test_rows][columns]
        test_days = days[fold.test_rows]
        for model_type in model_types:
            options = data.model_options | dict((model_params or {}).get(model_type, {}))
            tasks.append(
                FoldTask(
                    model_type, train, test, test_days, options=options, period=period, **shared
                )
            )
    return tasks


def sequential_map(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """Apply ``function`` to each item in turn, in this process: the default ``map_fn``."""
    return [function(item) for item in items]


def run_prequential(
    data: Transactions,
    model_types: str | Sequence[str],
    *,
    train_days: int,
    test_days: int,
    gap_days: int | None = None,
    n_folds: int | None = None,
    k: int = 100,
    confidence: float = DEFAULT_CONFIDENCE,
    rank_by: str = "average_precision",
    card_column: str | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    map_fn: MapFn | None = None,
) -> PrequentialResult:
    """Prequential validation of model types on rolling, delay-gapped folds.

    Parameters
    ----------
    data : Transactions
        Labelled transactions (:func:`~fraudkit.science.transactions.load_or_simulate`).
    model_types : str or sequence of str
        Model types as the notebooks name them, a list or comma-separated.
    train_days, test_days : int
        Block lengths in days; the folds roll forward by ``test_days``.
    gap_days : int, optional
        Days between train and test; default the label delay (:func:`label_delay_days`).
    n_folds : int, optional
        The latest ``n_folds`` folds; default every fold that fits.
    k : int, default 100
        Cards reviewed a day for Card Precision@k.
    confidence : float, default 0.9
        Of the prediction interval for the next period.
    rank_by : {"average_precision", "card_precision_at_k"}
        The fold mean the models are ranked by.
    card_column : str, optional
        The card column; default the schema's (:attr:`TransactionSchema.card`:
        ``CUSTOMER_ID`` for the handbook; each transaction its own card on Kaggle's).
    model_params : mapping, optional
        Model type -> keyword arguments of :func:`~fraudkit.science.models.train_model`.
    map_fn : callable, optional
        ``map_fn(evaluate_fold, tasks)`` runs the fold tasks and returns their results in
        order; default :func:`sequential_map`. :func:`fraudkit.sweeps.folds.cluster_map`
        gives one that runs them on a Dask cluster.

    Returns
    -------
    PrequentialResult

    Raises
    ------
    ConfigurationError
        An unknown model type or ranking metric, a confidence outside (0, 1), ``k`` not a
        whole number >= 1, or block sizes that do not fit (:func:`prequential_folds`).
    DataValidationError
        The data span too few days for one fold, or a fold's block holds no rows.
    """
    candidates = _model_types(model_types)
    if rank_by not in METRICS:
        raise ConfigurationError(f"rank_by = {rank_by!r}; choose one of {', '.join(METRICS)}")
    check_fraction("confidence", confidence)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigurationError(f"k = {k!r} must be a whole, positive number of cards a day")
    gap = label_delay_days(data.spec) if gap_days is None else gap_days
    card_column = card_column or data.schema.card
    days, _ = data.schema.review_keys(data.frame)
    folds = prequential_folds(
        days, train_days=train_days, test_days=test_days, gap_days=gap, n_folds=n_folds
    )
    options = {"k": k, "card_column": card_column, "model_params": model_params}
    tasks = fold_tasks(data, folds, candidates, days=days, **options)
    rows = (map_fn or sequential_map)(evaluate_fold, tasks)
    design = {"train_days": train_days, "test_days": test_days, "gap_days": gap, "k": k}
    return PrequentialResult(pd.DataFrame(rows), **design, confidence=confidence, rank_by=rank_by)
