"""The alert budget: what investigators who review ``k`` cards a day get to see.

A fraud team does not read a precision-recall curve; it reviews a fixed number of alerts a
day. The Fraud-Detection-Handbook (chapter 4) measures a model the way that team lives with
it, by Card Precision@k: each day, the cards are ranked by their highest score of that day
and the ``k`` most suspicious are reviewed; a card counts once a day, and it is a fraud card
that day when any of its transactions that day is fraud. The day's Card Precision@k is the
share of fraud cards among the ``min(k, n_cards)`` reviewed, and the model's is the mean
over days. :func:`fraudkit.science.metrics.card_precision_at_k` pools a whole period into
one ranking instead; that mixes days whose queues never compete for the same investigators.

Days differ (a fraud wave on one, a quiet weekend on another), so the interval of
:func:`card_precision_by_day` is a percentile bootstrap over days. With fewer than
``min_days`` days that bootstrap has too little to resample; the interval then resamples
each day's cards instead and says so (:attr:`CardPrecision.note`), because it leaves out how
days differ. Without card ids (the Kaggle schema) each transaction stands in for a card.

Labels arrive weeks late, so the newest windows get :func:`estimate_card_precision`: with
calibrated probabilities and transactions independent (as
:func:`fraudkit.science.estimation.estimate_performance` assumes), a card is fraud on a day
with probability ``1 - prod(1 - p)`` over its transactions of that day, the expected Card
Precision@k follows exactly, and simulated label draws give its interval.

:func:`alert_load` answers the other side of the budget: how many cards an operating
threshold alerts on a day, and whether investigators could review them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.science.card_days import CardDays
from fraudkit.science.metrics import as_scores, check_fraction, validate_labels_and_scores

__all__ = [
    "AlertLoad",
    "CardPrecision",
    "alert_budget_metrics",
    "alert_load",
    "card_precision_by_day",
    "estimate_card_precision",
]

# Uniform draws held in memory at once by the label simulation (8 bytes each).
_MAX_DRAW_CELLS = 4_000_000

_DAYS = "days"
_CARDS_WITHIN_DAYS = "cards within days"
_LABEL_DRAWS = "label draws"


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class CardPrecision:
    """Card Precision@k per day and its mean over days, with an interval.

    Attributes
    ----------
    k : int
        The alert budget: cards reviewed a day.
    mean : float
        Mean over days of the daily Card Precision@k.
    low, high : float
        The interval of ``mean``, at ``confidence``.
    confidence : float
        Coverage of the interval.
    n_days : int
        Days in the data.
    by_card : bool
        False when rows stand in for cards (no card ids, as in the Kaggle schema).
    interval_method : str
        ``"days"`` (bootstrap over days), ``"cards within days"`` (bootstrap of each day's
        cards, with fewer days than ``min_days``) or ``"label draws"`` (an estimate).
    per_day : pandas.DataFrame
        ``day``, ``n_cards``, ``n_reviewed`` (``min(k, n_cards)``), ``n_fraud_cards``
        (expected, a float, for an estimate) and ``card_precision``.
    estimated : bool, default False
        Whether this is a label-free estimate (:func:`estimate_card_precision`).
    """

    k: int
    mean: float
    low: float
    high: float
    confidence: float
    n_days: int
    by_card: bool
    interval_method: str
    per_day: pd.DataFrame = field(repr=False, compare=False)
    estimated: bool = False

    def metrics(self) -> dict[str, float]:
        """The numbers to log: the mean, its interval and the budget ``k``.

        Returns
        -------
        dict of str to float
            ``card_precision_at_k`` with ``_low`` and ``_high``; for an estimate
            ``estimated_card_precision_at_k`` with ``_lower`` and ``_upper`` (the suffixes
            of :func:`fraudkit.science.estimation.estimate_performance`); and
            ``alert_budget_k``.
        """
        if self.estimated:
            name, suffixes = "estimated_card_precision_at_k", ("_lower", "_upper")
        else:
            name, suffixes = "card_precision_at_k", ("_low", "_high")
        return {
            name: self.mean,
            name + suffixes[0]: self.low,
            name + suffixes[1]: self.high,
            "alert_budget_k": float(self.k),
        }

    @property
    def note(self) -> str | None:
        """What to keep in mind when reading the numbers, in words; None when nothing."""
        notes = []
        if not self.by_card:
            notes.append(
                "rows stand in for cards: the data have no card ids (the Kaggle schema has "
                "none), so a card with several transactions a day counts once for each"
            )
        if self.interval_method == _CARDS_WITHIN_DAYS:
            notes.append(
                f"only {self.n_days} day{'s' if self.n_days != 1 else ''}: the interval "
                "resamples cards within days, not days, so it leaves out how days differ"
            )
        return "; ".join(notes) or None

    def to_dict(self) -> dict[str, Any]:
        """The scalars (not ``per_day``), JSON-friendly.

        Returns
        -------
        dict of str to Any
        """
        scalars = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "per_day"}
        return scalars | {"note": self.note}


@dataclass(frozen=True)
class AlertLoad:
    """Alerts a day at an operating threshold, against the budget of ``k`` cards a day.

    Attributes
    ----------
    k : int
        The alert budget: cards investigators review a day.
    threshold : float
        The operating threshold: a card alerts on a day when one of its scores that day
        is at or above it.
    mean_per_day, max_per_day : float, int
        Alerted cards a day, on average and on the busiest day.
    n_days : int
        Days in the data.
    by_card : bool
        False when rows stand in for cards.
    per_day : pandas.Series
        Alerted cards on each day, indexed by day.
    """

    k: int
    threshold: float
    mean_per_day: float
    max_per_day: int
    n_days: int
    by_card: bool
    per_day: pd.Series = field(repr=False, compare=False)

    @property
    def flooded(self) -> bool:
        """Whether the threshold raises more alerts a day, on average, than the budget."""
        return self.mean_per_day > self.k

    @property
    def message(self) -> str | None:
        """A sentence for people when the threshold floods the budget; else None."""
        if not self.flooded:
            return None
        unit = "cards" if self.by_card else "transactions"
        return (
            f"The threshold {self.threshold:.3f} raises about {self.mean_per_day:,.0f} alerts "
            f"a day (at most {self.max_per_day:,}) against a budget of {self.k:,} {unit}: "
            f"investigators could review about {self.k / self.mean_per_day:.0%} of them. "
            "Raise the threshold, or the budget."
        )

    def metrics(self) -> dict[str, float]:
        """``alerts_per_day``, ``alerts_per_day_max`` and ``alert_budget_exceeded`` (1 when
        the threshold floods the budget), to log.

        Returns
        -------
        dict of str to float
        """
        return {
            "alerts_per_day": self.mean_per_day,
            "alerts_per_day_max": float(self.max_per_day),
            "alert_budget_exceeded": float(self.flooded),
        }


# --------------------------------------------------------------------------- checks


def _check_budget(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigurationError(
            f"k must be a positive whole number of cards reviewed a day, got {k!r}"
        )


def _check_count(name: str, value: int, minimum: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum} ({what}), got {value!r}")


def _interval(values: np.ndarray, mean: float, confidence: float) -> tuple[float, float]:
    """Central ``confidence`` range of ``values``, stretched to hold ``mean``.

    Lumpy resamples (a handful of cards) can leave the mean outside the central range.
    """
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(min(low, mean)), float(max(high, mean))


# ------------------------------------------------------------------- realised CP@k


def _day_resamples(daily: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Mean daily Card Precision@k of ``n_resamples`` resamples of the days."""
    picks = rng.integers(0, daily.size, size=(n_resamples, daily.size))
    return daily[picks].mean(axis=1)


def _resampled_top_frauds(
    fraud: np.ndarray, k: int, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Fraud cards among the top ``k`` of ``n_resamples`` bootstrap resamples of one day.

    ``fraud`` holds the day's ``n`` cards in rank order. A resample draws ``n`` cards with
    replacement and reviews the first ``k`` copies in rank order: the cards at the ``k``
    smallest of ``n`` uniform positions. Those order statistics come straight from
    exponential spacings (the i-th smallest of ``n`` uniforms is ``S_i / S_{n+1}``, with
    ``S`` the cumulative sums of ``n + 1`` standard exponentials, and ``S_{n+1} - S_k`` is
    a gamma variable), so a resample costs ``k`` draws however many cards the day has.
    """
    n = fraud.size
    reviewed = min(k, n)
    spacings = np.cumsum(rng.standard_exponential((n_resamples, reviewed)), axis=1)
    total = spacings[:, -1:] + rng.standard_gamma(n + 1 - reviewed, (n_resamples, 1))
    positions = np.minimum((n * spacings / total).astype(np.int64), n - 1)
    return fraud[positions].sum(axis=1)


def _within_day_resamples(
    fraud_ranked: np.ndarray,
    n_cards: np.ndarray,
    k: int,
    n_resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean daily Card Precision@k when each day's cards are resampled, days kept."""
    total = np.zeros(n_resamples)
    for end, n in zip(np.cumsum(n_cards), n_cards, strict=True):
        day = fraud_ranked[end - n : end]
        total += _resampled_top_frauds(day, k, n_resamples, rng) / min(k, int(n))
    return total / n_cards.size


def _card_precision(
    card_days: CardDays,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    resampled: np.ndarray,
    *,
    k: int,
    confidence: float,
    method: str,
    estimated: bool = False,
) -> CardPrecision:
    """A :class:`CardPrecision` from each day's cards, reviewed cards and fraud cards
    (expected ones for an estimate) and the resampled means its interval comes from."""
    n_cards, n_reviewed, n_fraud = counts
    daily = n_fraud / n_reviewed
    mean = float(daily.mean())
    low, high = _interval(resampled, mean, confidence)
    per_day = pd.DataFrame(
        {
            "day": card_days.days,
            "n_cards": n_cards,
            "n_reviewed": n_reviewed,
            "n_fraud_cards": n_fraud,
            "card_precision": daily,
        }
    )
    return CardPrecision(
        k=int(k),
        mean=mean,
        low=low,
        high=high,
        confidence=confidence,
        n_days=int(card_days.days.size),
        by_card=card_days.by_card,
        interval_method=method,
        per_day=per_day,
        estimated=estimated,
    )


def card_precision_by_day(
    y_true: ArrayLike,
    scores: ArrayLike,
    days: ArrayLike,
    card_ids: ArrayLike | None = None,
    *,
    k: int = 100,
    confidence: float = 0.9,
    n_resamples: int = 1000,
    random_state: int = 0,
    min_days: int = 5,
) -> CardPrecision:
    """Card Precision@k of each day, its mean over days and a bootstrap interval.

    Each day, a card's score is its highest score of the day and it is a fraud card when
    any of its transactions that day is fraud; the ``min(k, n_cards)`` highest-scoring
    cards are reviewed (ties broken by card id), and the day's Card Precision@k is the
    share of fraud cards among them. A day without fraud scores 0.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 (legitimate) or 1 (fraud).
    scores : array-like of shape (n,)
        Fraud scores; higher means more suspicious.
    days : array-like of shape (n,)
        The day of each transaction (the first of
        :meth:`~fraudkit.science.schema.TransactionSchema.review_keys`, or dates).
    card_ids : array-like of shape (n,), optional
        The card of each transaction. Without it each row stands in for a card.
    k : int, default 100
        The alert budget: cards investigators review a day.
    confidence : float, default 0.9
        Coverage of the interval, in (0, 1).
    n_resamples : int, default 1000
        Bootstrap resamples.
    random_state : int, default 0
        Seed of the bootstrap.
    min_days : int, default 5
        Fewest days for a bootstrap over days; with fewer, the interval resamples the
        cards of each day instead (``interval_method`` and ``note`` say so).

    Returns
    -------
    CardPrecision

    Raises
    ------
    DataValidationError
        When there are no rows, lengths differ, labels are not 0/1, a score is not finite
        or a day or card id is missing.
    ConfigurationError
        When ``k``, ``confidence``, ``n_resamples`` or ``min_days`` is invalid.
    """
    _check_budget(k)
    check_fraction("confidence", confidence)
    _check_count("n_resamples", n_resamples, 1, "bootstrap resamples")
    _check_count("min_days", min_days, 2, "fewest days to resample")
    y, s = validate_labels_and_scores(y_true, scores)
    card_days = CardDays.of(days, card_ids, y.size)
    ranked, reviewed, n_cards = card_days.rank(card_days.reduce(np.maximum, s), k)
    fraud_ranked = card_days.reduce(np.maximum, y)[ranked]
    n_days = card_days.days.size
    n_reviewed = np.minimum(k, n_cards)
    day_ranked = card_days.pair_day[ranked]
    n_fraud = np.bincount(day_ranked[reviewed], fraud_ranked[reviewed], n_days).astype(np.int64)
    daily = n_fraud / n_reviewed
    rng = np.random.default_rng(random_state)
    if n_days >= min_days:
        method, resampled = _DAYS, _day_resamples(daily, n_resamples, rng)
    else:
        method = _CARDS_WITHIN_DAYS
        resampled = _within_day_resamples(fraud_ranked, n_cards, k, n_resamples, rng)
    counts = (n_cards, n_reviewed, n_fraud)
    return _card_precision(card_days, counts, resampled, k=k, confidence=confidence, method=method)


# ---------------------------------------------------------------------------- alert load


def alert_load(
    scores: ArrayLike,
    days: ArrayLike,
    threshold: float,
    card_ids: ArrayLike | None = None,
    *,
    k: int = 100,
) -> AlertLoad:
    """Cards alerted a day at ``threshold``, against a budget of ``k`` cards a day.

    A card alerts on a day when any of its transactions that day scores at or above the
    threshold; it counts once however many of them do. A threshold chosen on a precision
    target can raise far more alerts than a team reviews; :attr:`AlertLoad.message` says
    so in a sentence.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Fraud scores.
    days : array-like of shape (n,)
        The day of each transaction (the first of
        :meth:`~fraudkit.science.schema.TransactionSchema.review_keys`, or dates).
    threshold : float
        The operating threshold.
    card_ids : array-like of shape (n,), optional
        The card of each transaction. Without it each row stands in for a card.
    k : int, default 100
        The alert budget: cards investigators review a day.

    Returns
    -------
    AlertLoad

    Raises
    ------
    DataValidationError
        When there are no scores, a score is not finite, or ``days`` or ``card_ids`` do
        not align with the scores or hold a missing value.
    ConfigurationError
        When ``k`` is invalid or ``threshold`` is not a finite number.
    """
    _check_budget(k)
    if not isinstance(threshold, int | float | np.number) or not np.isfinite(threshold):
        raise ConfigurationError(f"threshold must be a finite number, got {threshold!r}")
    try:
        s = np.asarray(scores, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise DataValidationError(f"scores must be numeric: {error}") from None
    if s.size == 0:
        raise DataValidationError("scores is empty; pass at least one transaction")
    if not np.isfinite(s).all():
        raise DataValidationError(
            f"scores must be finite; row {int(np.argmax(~np.isfinite(s)))} is not"
        )
    card_days = CardDays.of(days, card_ids, s.size)
    alerted = card_days.reduce(np.maximum, s) >= threshold
    per_day = np.bincount(card_days.pair_day[alerted], minlength=card_days.days.size)
    return AlertLoad(
        k=int(k),
        threshold=float(threshold),
        mean_per_day=float(per_day.mean()),
        max_per_day=int(per_day.max()),
        n_days=int(card_days.days.size),
        by_card=card_days.by_card,
        per_day=pd.Series(per_day, index=pd.Index(card_days.days, name="day"), name="alerts"),
    )


def alert_budget_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    days: ArrayLike,
    card_ids: ArrayLike | None,
    threshold: float,
    *,
    k: int = 100,
    random_state: int = 0,
) -> tuple[dict[str, float], list[str]]:
    """What investigators with ``k`` calls a day would see of a model, as one dict to log.

    :func:`card_precision_by_day` (with its 90 % interval) and :func:`alert_load` at the
    model's threshold, for a notebook that reports both for several models.

    Parameters
    ----------
    y_true, scores, days, card_ids
        As :func:`card_precision_by_day`.
    threshold : float
        The model's operating threshold.
    k : int, default 100
        The alert budget: cards investigators review a day.
    random_state : int, default 0
        Seed of the bootstrap.

    Returns
    -------
    tuple of (dict, list of str)
        ``card_precision_at_k`` with ``_low`` and ``_high``, ``alert_budget_k``,
        ``alerts_per_day``, ``alerts_per_day_max`` and ``alert_budget_exceeded``; and the
        notes a reader needs (rows standing in for cards, too few days, a threshold flooding
        the budget).
    """
    precision = card_precision_by_day(
        y_true, scores, days, card_ids, k=k, random_state=random_state
    )
    load = alert_load(scores, days, threshold, card_ids, k=k)
    return precision.metrics() | load.metrics(), [n for n in (precision.note, load.message) if n]


# ------------------------------------------------------------------------ estimated CP@k


def _probability_samples(samples: ArrayLike | None, probabilities: np.ndarray) -> np.ndarray:
    """``probability_samples`` checked as (m, n) probabilities; the probabilities without."""
    if samples is None:
        return probabilities[None, :]
    array = np.atleast_2d(np.asarray(samples, dtype=float))
    if array.ndim != 2 or array.shape[1] != probabilities.size:
        raise DataValidationError(
            f"probability_samples has shape {array.shape}; pass (m, {probabilities.size}): "
            "m probability vectors of one value per transaction"
        )
    if not np.all((array >= 0) & (array <= 1)):
        raise DataValidationError(
            "probability_samples must be probabilities in [0, 1]; pass calibrated maps' output"
        )
    return array


def _drawn_precisions(
    card_probabilities: np.ndarray,
    weights: np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean daily Card Precision@k of ``n_samples`` label draws of the reviewed cards.

    ``card_probabilities`` (m, t) holds m plausible probabilities of the t reviewed cards:
    draw ``j`` uses row ``j % m``. ``weights`` turns a draw's fraud cards into its mean
    daily precision (``1 / (n_reviewed of the card's day * n_days)``).
    """
    m, t = card_probabilities.shape
    block = max(1, _MAX_DRAW_CELLS // max(t, 1))
    precisions = np.empty(n_samples)
    for start in range(0, n_samples, block):
        rows = np.arange(start, min(start + block, n_samples))
        drawn = rng.random((rows.size, t)) < card_probabilities[rows % m]
        precisions[rows] = drawn @ weights
    return precisions


def estimate_card_precision(
    probabilities: ArrayLike,
    days: ArrayLike,
    card_ids: ArrayLike | None = None,
    *,
    k: int = 100,
    scores: ArrayLike | None = None,
    probability_samples: ArrayLike | None = None,
    n_samples: int = 200,
    confidence: float = 0.9,
    random_state: int = 0,
) -> CardPrecision:
    """Expected Card Precision@k a day without labels, from calibrated probabilities.

    Each transaction is fraud with its probability, independently (as
    :func:`fraudkit.science.estimation.estimate_performance` assumes), so a card is a
    fraud card on a day with probability ``1 - prod(1 - p)`` over its transactions that
    day. The cards are ranked by their highest score of the day, so the reviewed cards are
    known without labels, and the estimate is the exact expectation: the mean over days
    of the mean probability of the day's reviewed cards. The interval is the central
    ``confidence`` range of the precision over ``n_samples`` label draws: where the
    realised value will fall once labels arrive, *if the probabilities are calibrated*.

    Parameters
    ----------
    probabilities : array-like of shape (n,)
        Fraud probability of each transaction (at least ``MIN_ROWS``).
    days : array-like of shape (n,)
        The day of each transaction (the first of
        :meth:`~fraudkit.science.schema.TransactionSchema.review_keys`, or dates).
    card_ids : array-like of shape (n,), optional
        The card of each transaction. Without it each row stands in for a card.
    k : int, default 100
        The alert budget: cards investigators review a day.
    scores : array-like of shape (n,), optional
        The model's scores, which rank the cards, when they are not the probabilities
        themselves (e.g. probabilities read through
        :func:`fraudkit.science.estimation.reference_calibration`).
    probability_samples : array-like of shape (m, n), optional
        ``m`` plausible probability vectors (e.g. through
        :func:`fraudkit.science.estimation.bootstrap_calibrations`): draw ``j`` uses row
        ``j % m``, so the interval holds the uncertainty of the calibration too.
    n_samples : int, default 200
        Label draws.
    confidence : float, default 0.9
        Coverage of the interval, in (0, 1).
    random_state : int, default 0
        Seed of the label draws.

    Returns
    -------
    CardPrecision
        With ``estimated=True``, ``interval_method="label draws"`` and the expected fraud
        cards (floats) in ``per_day["n_fraud_cards"]``.

    Raises
    ------
    DataValidationError
        When the probabilities are too few or outside [0, 1], or an input does not align.
    ConfigurationError
        When ``k``, ``n_samples`` or ``confidence`` is invalid.
    """
    _check_budget(k)
    _check_count("n_samples", n_samples, 1, "label draws")
    check_fraction("confidence", confidence)
    p = as_scores("probabilities", probabilities, probabilities=True)
    ranking = p if scores is None else as_scores("scores", scores)
    if ranking.size != p.size:
        raise DataValidationError(
            f"scores has {ranking.size:,} values for {p.size:,} probabilities; pass one "
            "score per transaction"
        )
    samples = _probability_samples(probability_samples, p)
    card_days = CardDays.of(days, card_ids, p.size)
    ranked, reviewed, n_cards = card_days.rank(card_days.reduce(np.maximum, ranking), k)
    top = ranked[reviewed]
    with np.errstate(divide="ignore"):  # a certain fraud (p = 1) gives log(0) = -inf
        # P(card is fraud) = 1 - prod(1 - p) = -expm1(sum log1p(-p)), stable for tiny p.
        card_p = -np.expm1(card_days.reduce(np.add, np.log1p(-np.vstack([p, samples]))))
    n_days, n_reviewed = card_days.days.size, np.minimum(k, n_cards)
    day_top = card_days.pair_day[top]
    expected = np.bincount(day_top, card_p[0, top], n_days)
    weights = 1.0 / (n_reviewed[day_top] * n_days)
    rng = np.random.default_rng(random_state)
    drawn = _drawn_precisions(card_p[1:, top], weights, n_samples, rng)
    counts = (n_cards, n_reviewed, expected)
    return _card_precision(
        card_days, counts, drawn, k=k, confidence=confidence, method=_LABEL_DRAWS, estimated=True
    )
