"""Evaluation metrics for fraud scores.

Fraud is rare (0.172 % of transactions in the Kaggle data), so accuracy and ROC AUC say
little; the headline metric is the area under the precision-recall curve (average
precision). Alongside it: recall at fixed precision (how much fraud an alert queue of a
given purity catches), the expected cost of an operating threshold (review cost per alert
plus the amount of every missed fraud) and, when card ids exist, Card Precision@k from the
Fraud-Detection-Handbook (investigators review cards, not transactions).

Every value equals scikit-learn's for the same inputs. When ``y_true`` holds a single
class, the ranking metrics (ROC AUC, average precision, recall at precision) are NaN
rather than an exception, so that a quiet monitoring window still yields a row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
)

from fraudkit.core.exceptions import ConfigurationError, DataValidationError

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_FRAUDS",
    "MIN_ROWS",
    "as_scores",
    "calibration_bands",
    "calibration_metrics",
    "card_precision_at_k",
    "check_base_rate",
    "check_fraction",
    "evaluate",
    "expected_cost",
    "few_frauds_message",
    "prefix_errors",
    "recall_at_precision",
    "validate_amounts",
    "validate_labels_and_scores",
]

# The fewest scores a two-sample test or an estimate is run on.
MIN_ROWS = 30

DEFAULT_THRESHOLD = 0.5
# Fewest frauds an evaluation should rest on. With n frauds, AUPRC and recall have a
# standard error of roughly sqrt(p (1 - p) / n): about 0.08 at 30 frauds for a recall of
# 0.75, and an operating threshold chosen on fewer frauds jumps from one fraud to the next.
MIN_FRAUDS = 30
# Fraud rate assumed when a sample holds no fraud to estimate it from (the Kaggle data's).
_REFERENCE_FRAUD_RATE = 0.00172


def _reject_rows(name: str, array: np.ndarray, bad: np.ndarray, requirement: str) -> None:
    """Raise naming the first row of ``array`` flagged in ``bad``, if any."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = array[row : row + 1].tolist()[0]  # plain Python value: `nan`, not np.float64
        raise DataValidationError(
            f"{name} must {requirement}; row {row} is {value!r} ({int(bad.sum())} bad rows)"
        )


def _as_float(name: str, values: ArrayLike) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise DataValidationError(f"{name} must be numeric: {error}") from None
    _reject_rows(name, array, ~np.isfinite(array), "be finite")
    return array


@contextmanager
def prefix_errors(name: str) -> Iterator[None]:
    """Prefix the message of a DataValidationError raised inside with ``name``.

    The validators name their inputs generically (``scores``, ``amount``); a caller that
    validates several arguments says which one failed.

    Parameters
    ----------
    name : str
        Name of the argument being validated, e.g. ``"scores_a"``.

    Examples
    --------
    >>> with prefix_errors("scores_a"):  # doctest: +SKIP
    ...     validate_labels_and_scores(y, scores_a)
    """
    try:
        yield
    except DataValidationError as error:
        raise DataValidationError(f"{name}: {error}") from None


def validate_labels_and_scores(
    y_true: ArrayLike, scores: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Check labels and scores and return them as arrays.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud).
    scores : array-like of shape (n,)
        Fraud scores.

    Returns
    -------
    tuple of numpy.ndarray
        ``y_true`` as int 0/1 and ``scores`` as float, both 1-D.

    Raises
    ------
    DataValidationError
        When the inputs are empty or of different lengths, a score is not finite or a
        label is not 0/1.
    """
    y = np.asarray(y_true).ravel()
    s = _as_float("scores", scores)
    if y.shape != s.shape:
        raise DataValidationError(
            f"y_true has {y.size} values but scores has {s.size}; pass one score per label"
        )
    if y.size == 0:
        raise DataValidationError("y_true and scores are empty; pass at least one transaction")
    _reject_rows("y_true", y, ~np.isin(y, (0, 1)), "hold only 0 (legitimate) and 1 (fraud)")
    return y.astype(int), s


def _aligned(name: str, values: ArrayLike, n: int, *, numeric: bool = True) -> np.ndarray:
    """Return ``values`` as an array of length ``n`` (finite floats when ``numeric``)."""
    array = _as_float(name, values) if numeric else np.asarray(values).ravel()
    if array.size != n:
        raise DataValidationError(f"{name} has {array.size} values but y_true has {n}")
    return array


def validate_amounts(amount: ArrayLike, n: int) -> np.ndarray:
    """Check transaction amounts: ``n`` finite numbers, one per label.

    Parameters
    ----------
    amount : array-like of shape (n,)
        Transaction amounts.
    n : int
        Number of labels they must align with.

    Returns
    -------
    numpy.ndarray of float, shape (n,)
    """
    return _aligned("amount", amount, n)


def check_fraction(name: str, value: float, *, closed: bool = False) -> None:
    """Check that a rate or level lies in (0, 1), or in [0, 1] when ``closed``.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : float
        The value to check.
    closed : bool, default False
        Whether 0 and 1 are allowed.

    Raises
    ------
    ConfigurationError
        When ``value`` lies outside.
    """
    inside = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not inside:
        bounds = "[0, 1]" if closed else "(0, 1)"
        raise ConfigurationError(f"{name} must lie in {bounds}, got {value!r}")


def as_scores(name: str, values: ArrayLike, *, probabilities: bool = False) -> np.ndarray:
    """Return model scores as a 1-D float array, checked.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    values : array-like
        At least :data:`MIN_ROWS` finite scores.
    probabilities : bool, default False
        Whether the scores must also lie in [0, 1].

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    DataValidationError
        When the values are not numeric, too few, not finite or (``probabilities``)
        outside [0, 1].
    """
    try:
        scores = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise DataValidationError(f"{name} must be numeric scores: {error}") from None
    if scores.size < MIN_ROWS:
        raise DataValidationError(
            f"{name} has {scores.size} scores but at least {MIN_ROWS} are needed; "
            "use a longer window"
        )
    bad = ~np.isfinite(scores)
    if probabilities:
        bad |= (scores < 0) | (scores > 1)
    if bad.any():
        row = int(np.argmax(bad))
        requirement = "probabilities in [0, 1]" if probabilities else "finite"
        raise DataValidationError(
            f"{name} must be {requirement}; row {row} is {scores[row]!r} "
            f"({int(bad.sum())} bad rows)"
        )
    return scores


def check_base_rate(base_rate: tuple[int, int]) -> float:
    """Return the fraud rate of a labelled history given as ``(frauds, rows)``.

    Parameters
    ----------
    base_rate : tuple of (int, int)
        The fraud count and the number of rows of the history.

    Returns
    -------
    float

    Raises
    ------
    DataValidationError
        Unless ``0 <= frauds <= rows`` and ``rows > 0``.
    """
    try:
        frauds, rows = (int(v) for v in base_rate)
    except (TypeError, ValueError):
        frauds, rows = -1, 0
    if not 0 <= frauds <= rows or rows <= 0:
        raise DataValidationError(
            f"base_rate must be (frauds, rows) with 0 <= frauds <= rows and rows > 0, got "
            f"{base_rate!r}; pass the fraud count and size of the labelled history"
        )
    return frauds / rows


def _single_class(y: np.ndarray) -> bool:
    return np.unique(y).size < 2


def _recalls_at_precisions(y: np.ndarray, s: np.ndarray, levels: Sequence[float]) -> list[float]:
    for level in levels:
        if not 0.0 <= level <= 1.0:
            raise DataValidationError(f"precision levels must lie in [0, 1], got {level!r}")
    if _single_class(y):
        return [float("nan")] * len(levels)
    precisions, recalls, _ = precision_recall_curve(y, s)
    return [float(recalls[precisions >= level].max()) for level in levels]


def recall_at_precision(y_true: ArrayLike, scores: ArrayLike, precision: float) -> float:
    """Highest recall among the points of the precision-recall curve with enough precision.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud).
    scores : array-like of shape (n,)
        Fraud scores; higher means more likely fraud.
    precision : float
        Minimum precision, in [0, 1].

    Returns
    -------
    float
        Maximum recall over the thresholds whose precision is at least ``precision``
        (0.0 when no threshold reaches it); NaN when ``y_true`` holds a single class.
    """
    y, s = validate_labels_and_scores(y_true, scores)
    return _recalls_at_precisions(y, s, [precision])[0]


def _expected_cost(
    y: np.ndarray, alerts: np.ndarray, amount: np.ndarray, review_cost: float
) -> float:
    missed = (y == 1) & ~alerts
    return float(review_cost * alerts.sum() + amount[missed].sum())


def expected_cost(
    y_true: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    amount: ArrayLike,
    review_cost: float = 5.0,
) -> float:
    """Total cost of operating at ``threshold``.

    Each alert (``score >= threshold``) costs ``review_cost``; each fraud without an
    alert costs its transaction amount.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud).
    scores : array-like of shape (n,)
        Fraud scores.
    threshold : float
        Transactions scoring at or above it raise an alert.
    amount : array-like of shape (n,)
        Transaction amounts (the Kaggle ``Amount`` column).
    review_cost : float, default 5.0
        Cost of reviewing one alert, in the currency of ``amount``.

    Returns
    -------
    float
        ``review_cost * n_alerts + sum(amount of missed frauds)``.
    """
    y, s = validate_labels_and_scores(y_true, scores)
    return _expected_cost(y, s >= threshold, validate_amounts(amount, y.size), review_cost)


def _card_precision_at_k(y: np.ndarray, s: np.ndarray, cards: np.ndarray, k: int) -> float:
    per_card = pd.DataFrame({"score": s, "fraud": y, "card": cards}).groupby("card").max()
    top = per_card.sort_values("score", ascending=False, kind="stable").head(k)
    return float(top["fraud"].mean())


def card_precision_at_k(
    y_true: ArrayLike, scores: ArrayLike, card_ids: ArrayLike, k: int = 100
) -> float:
    """Card Precision@k: share of compromised cards among the ``k`` most suspicious cards.

    As in the Fraud-Detection-Handbook, each card is scored by the maximum score of its
    transactions and counts as fraudulent when any of its transactions is fraud.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud).
    scores : array-like of shape (n,)
        Fraud scores.
    card_ids : array-like of shape (n,)
        Card (customer) identifier of each transaction.
    k : int, default 100
        Number of cards investigators can review. When fewer cards exist, all count.

    Returns
    -------
    float
        Fraudulent cards among the top ``k`` divided by ``min(k, n_cards)``.
    """
    if k < 1:
        raise DataValidationError(f"k must be a positive number of cards, got {k!r}")
    y, s = validate_labels_and_scores(y_true, scores)
    cards = _aligned("card_ids", card_ids, y.size, numeric=False)
    return _card_precision_at_k(y, s, cards, k)


def few_frauds_message(
    n_fraud: int, n_rows: int, what: str, minimum: int = MIN_FRAUDS
) -> str | None:
    """Say that ``what`` rests on too few frauds, and how much data would do; else None.

    Parameters
    ----------
    n_fraud : int
        Frauds in the sample.
    n_rows : int
        Transactions in the sample.
    what : str
        What the sample is, for the message (e.g. ``"the validation period"``).
    minimum : int, default :data:`MIN_FRAUDS`
        Fewest frauds for a usable estimate.

    Returns
    -------
    str or None
        A sentence naming the count and the number of rows that would hold ``minimum``
        frauds at the sample's fraud rate (0.172 % when it holds none), or None when the
        sample holds at least ``minimum`` frauds.
    """
    if n_fraud >= minimum:
        return None
    rate = n_fraud / n_rows if n_fraud and n_rows else _REFERENCE_FRAUD_RATE
    needed = int(np.ceil(minimum / rate))
    return (
        f"{what} holds only {n_fraud} fraud{'s' if n_fraud != 1 else ''} in {n_rows:,} rows; "
        f"numbers resting on fewer than {minimum} frauds are mostly noise. About "
        f"{needed:,} rows at its fraud rate ({rate:.3%}) would hold {minimum}"
    )


def _bands(
    y_true: ArrayLike, probabilities: ArrayLike, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked labels and probabilities, and each equal-width band's rows, expected frauds
    (the sum of its probabilities) and actual frauds."""
    y, p = validate_labels_and_scores(y_true, probabilities)
    _reject_rows("probabilities", p, (p < 0) | (p > 1), "lie in [0, 1]")
    if n_bins < 1:
        raise DataValidationError(f"n_bins must be a positive integer, got {n_bins!r}")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = np.bincount(bins, minlength=n_bins)
    return y, p, rows, np.bincount(bins, p, n_bins), np.bincount(bins, y, n_bins)


def calibration_bands(
    y_true: ArrayLike, probabilities: ArrayLike, *, n_bins: int = 10
) -> list[dict[str, float]]:
    """Expected against actual frauds in each equal-width probability band holding rows.

    The bands of :func:`calibration_metrics`' expected calibration error, as a table.

    Returns
    -------
    list of dict
        One per non-empty band, lowest first: ``low``, ``high`` (its probability range),
        ``rows``, ``expected`` (the sum of its probabilities) and ``actual`` (its frauds).

    Raises
    ------
    DataValidationError
        As :func:`calibration_metrics`.
    """
    _, _, rows, expected, actual = _bands(y_true, probabilities, n_bins)
    return [
        {
            "low": b / n_bins,
            "high": (b + 1) / n_bins,
            "rows": int(rows[b]),
            "expected": float(expected[b]),
            "actual": int(actual[b]),
        }
        for b in range(n_bins)
        if rows[b]
    ]


def calibration_metrics(
    y_true: ArrayLike, probabilities: ArrayLike, *, n_bins: int = 10
) -> dict[str, float]:
    """How well fraud probabilities match the frauds that happened.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1.
    probabilities : array-like of shape (n,)
        Predicted fraud probabilities in [0, 1].
    n_bins : int, default 10
        Equal-width probability bins of the expected calibration error (the bins of a
        reliability diagram drawn with ``strategy="uniform"``).

    Returns
    -------
    dict of str to float
        ``brier_score`` (mean squared error of the probabilities),
        ``expected_calibration_error`` (mean gap between predicted and observed fraud
        rate over the bins, weighted by rows), ``expected_n_fraud`` (sum of the
        probabilities), ``n_fraud`` and ``expected_to_actual_fraud`` (their ratio; NaN
        without fraud). With 0.17 % fraud nearly all rows sit in the lowest bin, so the
        error is small for any model that gets the base rate right; the count ratio and
        the reliability diagram show the rest.

    Raises
    ------
    DataValidationError
        For invalid labels, probabilities outside [0, 1] or ``n_bins`` < 1.
    """
    y, p, rows, expected_by_bin, actual_by_bin = _bands(y_true, probabilities, n_bins)
    gaps = np.abs(expected_by_bin - actual_by_bin)
    n_fraud = int(y.sum())
    expected = float(p.sum())
    return {
        "brier_score": float(brier_score_loss(y, p, labels=[0, 1])),
        # Sum over bins of |sum p - sum y| / n equals sum of (n_b / n) |mean p - mean y|.
        "expected_calibration_error": float(gaps[rows > 0].sum() / y.size),
        "expected_n_fraud": expected,
        "n_fraud": n_fraud,
        "expected_to_actual_fraud": expected / n_fraud if n_fraud else float("nan"),
    }


def _level_key(level: float) -> str:
    return f"recall_at_precision_{round(level * 100):d}"


def evaluate(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    threshold: float | None = None,
    amount: ArrayLike | None = None,
    card_ids: ArrayLike | None = None,
    review_cost: float = 5.0,
    precision_levels: Sequence[float] = (0.5, 0.8, 0.9),
    k: int = 100,
) -> dict[str, float]:
    """Evaluate fraud scores against true labels.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud).
    scores : array-like of shape (n,)
        Fraud scores (probabilities or any monotone score); higher means more suspicious.
    threshold : float, optional
        Operating threshold: ``score >= threshold`` raises an alert. Defaults to 0.5.
    amount : array-like of shape (n,), optional
        Transaction amounts; adds the cost metrics.
    card_ids : array-like of shape (n,), optional
        Card identifiers; adds ``card_precision_at_{k}``.
    review_cost : float, default 5.0
        Cost of reviewing one alert (with ``amount``).
    precision_levels : sequence of float, default (0.5, 0.8, 0.9)
        Adds ``recall_at_precision_{100 * level}`` for each level.
    k : int, default 100
        Number of cards for Card Precision@k.

    Returns
    -------
    dict of str to float
        A flat dict: ``accuracy``, ``average_precision``, ``roc_auc``,
        ``fraud_precision``, ``fraud_recall``, ``fraud_f1``, one
        ``recall_at_precision_*`` per level, ``threshold``, ``n_transactions``,
        ``n_fraud``, ``fraud_rate``, ``n_alerts``; with ``amount`` also
        ``fraud_amount_caught``, ``fraud_amount_missed``, ``expected_cost`` and
        ``expected_cost_per_transaction``; with ``card_ids`` also
        ``card_precision_at_{k}``. Ranking metrics are NaN when ``y_true`` holds a single
        class; precision/recall/F1 are 0 when undefined (scikit-learn's
        ``zero_division=0``).

    Raises
    ------
    DataValidationError
        When lengths differ, scores are not finite or labels are not 0/1.
    """
    y, s = validate_labels_and_scores(y_true, scores)
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    alerts = s >= threshold
    single = _single_class(y)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y,
        alerts.astype(int),
        average="binary",
        pos_label=1,
        # scikit-learn annotates zero_division as str, yet documents and accepts 0.
        zero_division=0,  # pyright: ignore[reportArgumentType]
    )
    result: dict[str, float] = {
        "accuracy": float(accuracy_score(y, alerts.astype(int))),
        "average_precision": float("nan") if single else float(average_precision_score(y, s)),
        "roc_auc": float("nan") if single else float(roc_auc_score(y, s)),
        "fraud_precision": float(precision),
        "fraud_recall": float(recall),
        "fraud_f1": float(f1),
    }
    recalls = _recalls_at_precisions(y, s, precision_levels)
    result |= {_level_key(level): r for level, r in zip(precision_levels, recalls, strict=True)}
    result |= {
        "threshold": threshold,
        "n_transactions": int(y.size),
        "n_fraud": int(y.sum()),
        "fraud_rate": float(y.mean()),
        "n_alerts": int(alerts.sum()),
    }
    if amount is not None:
        amounts = validate_amounts(amount, y.size)
        fraud = y == 1
        cost = _expected_cost(y, alerts, amounts, review_cost)
        result |= {
            "fraud_amount_caught": float(amounts[fraud & alerts].sum()),
            "fraud_amount_missed": float(amounts[fraud & ~alerts].sum()),
            "expected_cost": cost,
            "expected_cost_per_transaction": cost / y.size,
        }
    if card_ids is not None:
        result[f"card_precision_at_{k}"] = card_precision_at_k(y, s, card_ids, k)
    return result
