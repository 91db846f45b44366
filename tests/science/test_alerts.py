"""Tests for fraudkit.science.alerts: Card Precision@k by day, alert load and its estimate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, FraudkitError
from fraudkit.science.alerts import (
    alert_budget_metrics,
    alert_load,
    card_precision_by_day,
    estimate_card_precision,
)
from fraudkit.science.metrics import card_precision_at_k

DAY_NS = 86_400 * 10**9


@pytest.fixture
def two_days() -> pd.DataFrame:
    """Eight transactions of three cards over two days, small enough to count by hand."""
    return pd.DataFrame(
        [
            (0, "A", 0.90, 0),
            (0, "A", 0.10, 1),  # A is a fraud card on day 0, ranked by its 0.90
            (0, "B", 0.80, 0),
            (0, "B", 0.70, 0),
            (0, "C", 0.50, 1),
            (1, "A", 0.20, 0),
            (1, "B", 0.95, 1),
            (1, "C", 0.30, 1),
        ],
        columns=["day", "card", "score", "fraud"],
    )


def _simulated(n_days: int, seed: int, *, cards_a_day: int = 400, k_rows: int = 3) -> tuple:
    """Labels, informative scores, days and card ids: ``k_rows`` rows per card and day."""
    rng = np.random.default_rng(seed)
    n = n_days * cards_a_day * k_rows
    days = np.repeat(np.arange(n_days), cards_a_day * k_rows)
    cards = rng.integers(0, 5 * cards_a_day, n)
    fraud = (rng.random(n) < 0.03).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.0 * fraud - 3)))
    return fraud, scores, days, cards


# ----------------------------------------------------------------------------- days


def test_card_counts_once_a_day_ranked_by_its_highest_score(two_days) -> None:
    f = two_days
    result = card_precision_by_day(f.fraud, f.score, f.day, f.card, k=2, n_resamples=50)
    # Day 0: A (0.90, fraud) and B (0.80) reviewed, C (0.50, fraud) not: 1 / 2.
    # Day 1: B (0.95, fraud) and C (0.30, fraud) reviewed: 2 / 2.
    assert result.per_day["card_precision"].tolist() == [0.5, 1.0]
    assert result.per_day["n_cards"].tolist() == [3, 3]
    assert result.per_day["n_reviewed"].tolist() == [2, 2]
    assert result.per_day["n_fraud_cards"].tolist() == [1, 2]
    assert result.per_day["day"].tolist() == [0, 1]
    assert result.mean == pytest.approx(0.75)
    assert result.by_card and result.n_days == 2 and result.k == 2


def test_budget_larger_than_the_day_reviews_every_card(two_days) -> None:
    f = two_days
    result = card_precision_by_day(f.fraud, f.score, f.day, f.card, k=10, n_resamples=50)
    # A's two rows of day 0 make one fraud card, not two: 2 of 3 cards each day.
    assert result.per_day["n_reviewed"].tolist() == [3, 3]
    assert result.per_day["n_fraud_cards"].tolist() == [2, 2]
    assert result.mean == pytest.approx(2 / 3)


def test_rows_stand_in_for_cards_without_card_ids(two_days) -> None:
    f = two_days
    result = card_precision_by_day(f.fraud, f.score, f.day, k=2, n_resamples=50)
    # Day 0 rows by score: 0.90, 0.80 (both legitimate); day 1: 0.95, 0.30 (both fraud).
    assert result.per_day["card_precision"].tolist() == [0.0, 1.0]
    assert result.per_day["n_cards"].tolist() == [5, 3]
    assert not result.by_card
    assert result.note is not None and "rows stand in for cards" in result.note


def test_each_day_matches_the_pooled_card_precision_on_that_day() -> None:
    fraud, scores, days, cards = _simulated(4, seed=3, cards_a_day=150)
    scores = np.round(scores, 1)  # many ties: both break them by card id
    result = card_precision_by_day(fraud, scores, days, cards, k=30, n_resamples=10)
    for day, value in zip(result.per_day["day"], result.per_day["card_precision"], strict=True):
        rows = days == day
        assert value == pytest.approx(
            card_precision_at_k(fraud[rows], scores[rows], cards[rows], 30)
        )


def test_single_class_labels_give_zero_or_one() -> None:
    _, scores, days, cards = _simulated(6, seed=1, cards_a_day=50)
    none = card_precision_by_day(np.zeros(scores.size, int), scores, days, cards, k=10)
    assert (none.mean, none.low, none.high) == (0.0, 0.0, 0.0)
    every = card_precision_by_day(np.ones(scores.size, int), scores, days, cards, k=10)
    assert (every.mean, every.low, every.high) == (1.0, 1.0, 1.0)


def test_day_bootstrap_holds_the_mean_and_narrows_with_more_days() -> None:
    widths = {}
    for n_days in (10, 60):
        result = card_precision_by_day(*_simulated(n_days, seed=n_days), k=50)
        assert result.interval_method == "days" and result.note is None
        assert result.low < result.mean < result.high
        # The resampled means spread about the daily values' standard error.
        daily = result.per_day["card_precision"]
        se = daily.std() / np.sqrt(n_days)
        assert result.high - result.low == pytest.approx(2 * 1.645 * se, rel=0.25)
        widths[n_days] = result.high - result.low
    assert widths[60] < 0.6 * widths[10]


def test_few_days_resample_cards_within_days() -> None:
    result = card_precision_by_day(*_simulated(3, seed=2), k=50, min_days=5)
    assert result.interval_method == "cards within days"
    assert result.note is not None and "only 3 days" in result.note
    assert result.low < result.mean < result.high
    assert json.loads(json.dumps(result.to_dict()))["note"] == result.note


def test_within_day_bootstrap_matches_resampling_cards_by_brute_force() -> None:
    rng = np.random.default_rng(11)
    n_cards, k, n_resamples = 1_000, 200, 2_000
    scores = rng.random(n_cards)
    fraud = (rng.random(n_cards) < 0.4 * scores).astype(int)  # frauds lean to the top
    result = card_precision_by_day(
        fraud, scores, np.zeros(n_cards, int), np.arange(n_cards), k=k, n_resamples=n_resamples
    )
    draws = rng.integers(0, n_cards, (n_resamples, n_cards))
    top = np.take_along_axis(draws, np.argsort(-scores[draws], axis=1)[:, :k], axis=1)
    brute = fraud[top].mean(axis=1)
    low, high = np.quantile(brute, [0.05, 0.95])
    assert result.low == pytest.approx(low, abs=0.012)
    assert result.high == pytest.approx(high, abs=0.012)


def test_metrics_and_to_dict_name_the_numbers(two_days) -> None:
    f = two_days
    result = card_precision_by_day(f.fraud, f.score, f.day, f.card, k=2, n_resamples=50)
    assert result.metrics() == {
        "card_precision_at_k": result.mean,
        "card_precision_at_k_low": result.low,
        "card_precision_at_k_high": result.high,
        "alert_budget_k": 2.0,
    }
    as_dict = json.loads(json.dumps(result.to_dict()))
    assert as_dict["k"] == 2 and as_dict["interval_method"] == "cards within days"


# ----------------------------------------------------------------------- alert load


def test_alert_load_counts_alerted_cards_once_a_day() -> None:
    days = [0, 0, 0, 0, 1, 2, 2]
    cards = ["A", "A", "B", "C", "A", "B", "C"]
    scores = [0.9, 0.8, 0.6, 0.1, 0.2, 0.7, 0.3]
    load = alert_load(scores, days, 0.5, cards, k=2)
    assert load.per_day.tolist() == [2, 0, 1]  # A's two alerts on day 0 are one card
    assert load.per_day.index.tolist() == [0, 1, 2]
    assert (load.mean_per_day, load.max_per_day, load.n_days) == (1.0, 2, 3)
    assert not load.flooded and load.message is None
    assert load.metrics() == {
        "alerts_per_day": 1.0,
        "alerts_per_day_max": 2.0,
        "alert_budget_exceeded": 0.0,
    }
    rows = alert_load(scores, days, 0.5)
    assert rows.per_day.tolist() == [3, 0, 1] and not rows.by_card


def test_alert_load_says_when_the_threshold_floods_the_budget() -> None:
    alerted = [400, 412, 424]  # cards over the threshold each day; 300 more below it
    days = np.repeat([0, 1, 2], [a + 300 for a in alerted])
    scores = np.concatenate([np.r_[np.full(a, 0.9), np.full(300, 0.1)] for a in alerted])
    load = alert_load(scores, days, 0.31, np.arange(scores.size), k=100)
    assert load.flooded
    assert load.mean_per_day == pytest.approx(412) and load.max_per_day == 424
    message = load.message
    assert message is not None
    for number in ("0.310", "412", "424", "100 cards", "24%", "Raise the threshold"):
        assert number in message


# ------------------------------------------------------------------------ estimate


def _hand_estimate_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two days; fillers (distinct cards, tiny probabilities) reach the 30 rows estimates need."""
    rows = [
        (0, "A", 0.5),
        (0, "A", 0.5),  # A is fraud on day 0 with probability 1 - 0.5 * 0.5 = 0.75
        (0, "B", 0.6),
        (1, "A", 0.2),
        (1, "C", 0.9),
        (1, "C", 0.1),  # C: 1 - 0.1 * 0.9 = 0.91, ranked by its 0.9
    ]
    rows += [(i % 2, f"F{i}", 0.01) for i in range(30)]
    days, cards, p = zip(*rows, strict=True)
    return np.array(p), np.array(days), np.array(cards)


def test_estimate_is_the_exact_expectation_on_a_hand_case() -> None:
    p, days, cards = _hand_estimate_rows()
    result = estimate_card_precision(p, days, cards, k=2)
    # Day 0 reviews B (0.6) and A (0.75); day 1 reviews C (0.91) and A (0.2).
    assert result.per_day["n_fraud_cards"].tolist() == pytest.approx([1.35, 1.11])
    assert result.per_day["card_precision"].tolist() == pytest.approx([0.675, 0.555])
    assert result.mean == pytest.approx(0.615)
    assert result.estimated and result.interval_method == "label draws"
    assert result.low <= result.mean <= result.high
    assert set(result.metrics()) == {
        "estimated_card_precision_at_k",
        "estimated_card_precision_at_k_lower",
        "estimated_card_precision_at_k_upper",
        "alert_budget_k",
    }


def test_estimate_ranks_by_scores_when_given() -> None:
    p, days, cards = _hand_estimate_rows()
    by_probability = estimate_card_precision(p, days, cards, k=1)
    assert by_probability.per_day["card_precision"].tolist() == pytest.approx([0.6, 0.91])
    scores = np.where(cards == "A", 0.99, p)  # the model puts card A first
    by_score = estimate_card_precision(p, days, cards, k=1, scores=scores)
    assert by_score.per_day["card_precision"].tolist() == pytest.approx([0.75, 0.2])


def test_probability_samples_widen_the_interval() -> None:
    rng = np.random.default_rng(5)
    n = 4_000
    p = rng.beta(0.5, 8, n)
    days, cards = np.repeat(np.arange(8), n // 8), rng.integers(0, 1_500, n)
    plain = estimate_card_precision(p, days, cards, k=50)
    samples = np.clip(p * rng.uniform(0.6, 1.4, (20, 1)), 0, 1)  # an uncertain calibration
    wide = estimate_card_precision(p, days, cards, k=50, probability_samples=samples)
    assert wide.mean == plain.mean  # the estimate rests on the probabilities
    assert wide.high - wide.low > 2 * (plain.high - plain.low)


def test_realised_precision_falls_in_the_estimate_interval_nine_times_in_ten() -> None:
    covered = []
    for repetition in range(200):
        rng = np.random.default_rng(1_000 + repetition)
        n = 2_400
        p = rng.beta(0.4, 6, n)
        days, cards = np.repeat(np.arange(6), n // 6), rng.integers(0, 800, n)
        fraud = (rng.random(n) < p).astype(int)
        realised = card_precision_by_day(fraud, p, days, cards, k=20, n_resamples=1).mean
        estimate = estimate_card_precision(p, days, cards, k=20, random_state=repetition)
        covered.append(estimate.low <= realised <= estimate.high)
    assert 0.83 <= np.mean(covered) <= 0.96


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: card_precision_by_day([0, 1], [0.1, 0.2], [0, 0], k=0),
            ConfigurationError,
            "k must",
        ),
        (lambda: card_precision_by_day([0, 1], [0.1, 0.2], [0]), DataValidationError, "days has 1"),
        (lambda: card_precision_by_day([], [], []), DataValidationError, "empty"),
        (lambda: card_precision_by_day([0, 2], [0.1, 0.2], [0, 0]), DataValidationError, "y_true"),
        (
            lambda: card_precision_by_day([0, 1], [0.1, 0.2], [0, 0], ["a", None]),
            DataValidationError,
            "card_ids row 1 is missing",
        ),
        (
            lambda: card_precision_by_day([0, 1], [0.1, 0.2], [0, 0], confidence=1.5),
            ConfigurationError,
            "confidence",
        ),
        (
            lambda: card_precision_by_day([0, 1], [0.1, 0.2], [0, 0], n_resamples=0),
            ConfigurationError,
            "n_resamples",
        ),
        (
            lambda: card_precision_by_day([0, 1], [0.1, 0.2], [0, 0], min_days=1),
            ConfigurationError,
            "min_days",
        ),
        (lambda: alert_load([0.1, 0.2], [0, 0], float("nan")), ConfigurationError, "threshold"),
        (lambda: alert_load([], [], 0.5), DataValidationError, "empty"),
        (lambda: alert_load([0.1, np.inf], [0, 0], 0.5), DataValidationError, "row 1"),
        (
            lambda: estimate_card_precision(np.full(40, 1.5), np.zeros(40)),
            DataValidationError,
            r"probabilities in \[0, 1\]",
        ),
        (
            lambda: estimate_card_precision(np.full(40, 0.1), np.zeros(40), scores=np.zeros(39)),
            DataValidationError,
            "scores has 39",
        ),
        (
            lambda: estimate_card_precision(
                np.full(40, 0.1), np.zeros(40), probability_samples=np.zeros((3, 39))
            ),
            DataValidationError,
            "probability_samples has shape",
        ),
        (
            lambda: estimate_card_precision(np.full(40, 0.1), np.zeros(40), n_samples=0),
            ConfigurationError,
            "n_samples",
        ),
    ],
)
def test_bad_input_raises_a_fraudkit_error_saying_what_to_fix(call, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        call()
    assert isinstance(raised.value, FraudkitError)


def test_alert_budget_metrics_join_card_precision_and_the_alert_load() -> None:
    rng = np.random.default_rng(4)
    days = np.repeat(np.arange(8), 50)
    cards = rng.integers(0, 30, days.size)
    y = (rng.random(days.size) < 0.1).astype(int)
    scores = np.clip(y * 0.4 + rng.random(days.size) * 0.6, 0, 1)
    metrics, notes = alert_budget_metrics(y, scores, days, cards, 0.5, k=5)
    precision = card_precision_by_day(y, scores, days, cards, k=5)
    load = alert_load(scores, days, 0.5, cards, k=5)
    assert metrics == precision.metrics() | load.metrics()
    assert load.flooded and notes == [load.message]  # ~15 cards a day alerted, 5 reviewed
    _, without_cards = alert_budget_metrics(y, scores, days, None, 0.99, k=5)
    assert any("rows stand in for cards" in note for note in without_cards)
