"""Tests for fraudkit.science.metrics: evaluation metrics and the input checks they share."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fraudkit.core.exceptions import DataValidationError
from fraudkit.science.metrics import (
    MIN_FRAUDS,
    calibration_metrics,
    card_precision_at_k,
    evaluate,
    expected_cost,
    few_frauds_message,
    prefix_errors,
    recall_at_precision,
    validate_labels_and_scores,
)


@pytest.fixture
def labelled() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2,000 transactions, ~5 % fraud, informative but imperfect scores, amounts."""
    rng = np.random.default_rng(7)
    y = (rng.random(2_000) < 0.05).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=y.size) + 2.5 * y - 2)))
    amount = rng.lognormal(3, 1, size=y.size)
    return y, scores, amount


def _brute_recall_at_precision(y: np.ndarray, s: np.ndarray, level: float) -> float:
    best = 0.0
    for t in np.unique(s):
        alerts = s >= t
        if y[alerts].mean() >= level:
            best = max(best, y[alerts].sum() / y.sum())
    return best


def test_evaluate_matches_scikit_learn(labelled) -> None:
    y, s, _ = labelled
    result = evaluate(y, s, threshold=0.3)
    predicted = (s >= 0.3).astype(int)
    assert result["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert result["average_precision"] == pytest.approx(average_precision_score(y, s))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert result["fraud_precision"] == pytest.approx(precision_score(y, predicted))
    assert result["fraud_recall"] == pytest.approx(recall_score(y, predicted))
    assert result["fraud_f1"] == pytest.approx(f1_score(y, predicted))
    assert result["threshold"] == 0.3
    assert result["n_transactions"] == y.size
    assert result["n_fraud"] == y.sum()
    assert result["fraud_rate"] == pytest.approx(y.mean())
    assert result["n_alerts"] == predicted.sum()


def test_evaluate_keys_and_default_threshold(labelled) -> None:
    y, s, _ = labelled
    result = evaluate(y, s)
    assert result["threshold"] == 0.5
    assert result["n_alerts"] == (s >= 0.5).sum()
    assert {"recall_at_precision_50", "recall_at_precision_80", "recall_at_precision_90"} <= set(
        result
    )
    assert not {"expected_cost", "card_precision_at_100"} & set(result)
    assert all(isinstance(v, int | float) for v in result.values())


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9])
def test_recall_at_precision_matches_brute_force(labelled, level: float) -> None:
    y, s, _ = labelled
    expected = _brute_recall_at_precision(y, s, level)
    assert recall_at_precision(y, s, level) == pytest.approx(expected)
    key = f"recall_at_precision_{round(level * 100)}"
    assert evaluate(y, s)[key] == pytest.approx(expected)


def test_recall_at_precision_is_zero_when_unreachable() -> None:
    assert recall_at_precision([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2], 0.9) == 0.0


def test_cost_metrics(labelled) -> None:
    y, s, amount = labelled
    result = evaluate(y, s, threshold=0.4, amount=amount, review_cost=2.0)
    alerts = s >= 0.4
    missed = amount[(y == 1) & ~alerts].sum()
    assert result["fraud_amount_missed"] == pytest.approx(missed)
    assert result["fraud_amount_caught"] == pytest.approx(amount[(y == 1) & alerts].sum())
    assert result["expected_cost"] == pytest.approx(2.0 * alerts.sum() + missed)
    per_transaction = result["expected_cost"] / y.size
    assert result["expected_cost_per_transaction"] == pytest.approx(per_transaction)
    assert expected_cost(y, s, 0.4, amount, 2.0) == pytest.approx(result["expected_cost"])


def test_card_precision_at_k_uses_max_score_per_card() -> None:
    # card a: one fraud with a low score, but its max score is the highest of all cards.
    y = [0, 1, 0, 0, 1, 0]
    s = [0.95, 0.1, 0.9, 0.2, 0.85, 0.3]
    cards = ["a", "a", "b", "b", "c", "d"]
    assert card_precision_at_k(y, s, cards, k=1) == 1.0  # a
    assert card_precision_at_k(y, s, cards, k=2) == 0.5  # a, b
    assert card_precision_at_k(y, s, cards, k=3) == pytest.approx(2 / 3)  # a, b, c
    assert card_precision_at_k(y, s, cards, k=10) == 0.5  # all four cards
    assert evaluate(y, s, card_ids=cards, k=3)["card_precision_at_3"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_nan_ranking_metrics(label: int) -> None:
    result = evaluate([label] * 5, [0.1, 0.2, 0.6, 0.7, 0.9])
    assert math.isnan(result["average_precision"])
    assert math.isnan(result["roc_auc"])
    assert math.isnan(result["recall_at_precision_90"])
    assert result["n_alerts"] == 3
    assert result["accuracy"] == pytest.approx(0.6 if label else 0.4)


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([0, 1, 0], [0.1, 0.2], "3 values but scores has 2"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "row 2 is 2"),
        ([0, 1, 0], [0.1, float("nan"), 0.3], "row 1 is nan"),
        ([], [], "empty"),
    ],
)
def test_invalid_inputs_raise(y, s, match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        evaluate(y, s)


def test_invalid_amount_and_levels_raise() -> None:
    with pytest.raises(DataValidationError, match="amount has 2 values"):
        evaluate([0, 1, 0], [0.1, 0.2, 0.3], amount=[1.0, 2.0])
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        evaluate([0, 1, 0], [0.1, 0.2, 0.3], precision_levels=(1.5,))
    with pytest.raises(DataValidationError, match="card_ids has 1 values"):
        card_precision_at_k([0, 1], [0.1, 0.2], ["a"], k=1)


def test_calibration_metrics_of_true_probabilities() -> None:
    rng = np.random.default_rng(11)
    p = rng.beta(0.3, 30, size=200_000)  # rare events, like fraud
    y = (rng.random(p.size) < p).astype(int)
    result = calibration_metrics(y, p)
    assert result["brier_score"] == pytest.approx(brier_score_loss(y, p))
    assert result["n_fraud"] == y.sum() and result["expected_n_fraud"] == pytest.approx(p.sum())
    # Drawn from the probabilities themselves: the count ratio is 1 up to Poisson noise
    # (about 2,000 events, sd 2 %), and the bins agree up to sampling noise.
    assert result["expected_to_actual_fraud"] == pytest.approx(1, abs=0.06)
    assert result["expected_calibration_error"] < 0.002
    inflated = calibration_metrics(y, np.minimum(p * 5, 1))
    assert inflated["expected_to_actual_fraud"] > 4
    assert inflated["expected_calibration_error"] > 10 * result["expected_calibration_error"]


def test_calibration_metrics_by_hand() -> None:
    # Bins of width 0.5: {0.1, 0.2, 0.3} with 1 fraud, {0.9} with 1 fraud.
    result = calibration_metrics([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.9], n_bins=2)
    assert result["expected_calibration_error"] == pytest.approx((abs(0.6 - 1) + abs(0.9 - 1)) / 4)
    assert result["expected_n_fraud"] == pytest.approx(1.5) and result["n_fraud"] == 2
    assert math.isnan(calibration_metrics([0, 0], [0.1, 0.2])["expected_to_actual_fraud"])
    with pytest.raises(DataValidationError, match=r"probabilities must lie in \[0, 1\]; row 1"):
        calibration_metrics([0, 1], [0.5, 1.5])
    with pytest.raises(DataValidationError, match="n_bins must be a positive integer"):
        calibration_metrics([0, 1], [0.5, 0.5], n_bins=0)


def test_few_frauds_message_names_the_count_and_the_size_needed() -> None:
    assert MIN_FRAUDS == 30
    assert few_frauds_message(30, 20_000, "the test period") is None
    message = few_frauds_message(3, 2_000, "the validation period")
    assert message.startswith("the validation period holds only 3 frauds in 2,000 rows")
    assert "fewer than 30 frauds" in message and "About 20,000 rows" in message
    assert "(0.150%)" in message
    # No fraud at all: the size is given at the Kaggle data's fraud rate.
    none = few_frauds_message(0, 5_000, "window 3", minimum=10)
    assert "holds only 0 frauds" in none and "About 5,814 rows" in none
    assert "1 fraud in" in few_frauds_message(1, 100, "x")


def test_prefix_errors_names_the_argument_of_a_validation_error() -> None:
    with pytest.raises(DataValidationError, match=r"^scores_b: scores must be finite; row 1"):
        with prefix_errors("scores_b"):
            validate_labels_and_scores([0, 1], [0.2, np.nan])
    # Other errors pass through unchanged, and a clean block raises nothing.
    with pytest.raises(ValueError, match=r"^boom$"), prefix_errors("scores_b"):
        raise ValueError("boom")
    with prefix_errors("scores_b"):
        y, scores = validate_labels_and_scores([0, 1], [0.2, 0.9])
    assert y.tolist() == [0, 1] and scores.tolist() == [0.2, 0.9]
