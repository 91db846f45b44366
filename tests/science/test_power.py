"""Power and required traffic of the A/B tests (fraudkit.science.power)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import average_precision_score

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.science.abtest import compare_scores
from fraudkit.science.online import online_power, round_traffic
from fraudkit.science.power import analyse_power, implied_truth, simulated_power


def _traffic(n: int = 8_000, seed: int = 0, noise: tuple[float, float] = (1.2, 0.5)):
    """Calibrated-looking scores of a weaker model A and a stronger model B, and labels."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    truth = expit(signal * 1.6 - 4.5)
    y = (rng.random(n) < truth).astype(int)
    scores_a = expit(signal * 1.6 - 4.5 + rng.normal(0, noise[0], n))
    scores_b = expit(signal * 1.6 - 4.5 + rng.normal(0, noise[1], n))
    return y, scores_a, scores_b


TRAFFIC = _traffic()


def _power(difference: float, n: int, seed: int = 1, n_simulations: int = 200) -> float:
    return simulated_power(*TRAFFIC, difference, n, n_simulations=n_simulations, random_state=seed)


def _expected_ap(y_prob: np.ndarray, scores: np.ndarray, draws: int = 100) -> float:
    """Mean average precision over label draws from ``y_prob`` (scikit-learn's)."""
    rng = np.random.default_rng(0)
    return float(
        np.mean(
            [
                average_precision_score(rng.random(y_prob.size) < y_prob, scores)
                for _ in range(draws)
            ]
        )
    )


def test_the_truth_has_the_difference_tested_and_the_observed_fraud_rate():
    y, a, b = TRAFFIC
    for difference in (-0.02, 0.0, 0.05):
        q = implied_truth(y, a, b, difference)
        assert q is not None and q.mean() == pytest.approx(y.mean())
        # Label draws from it show the difference (100 draws of ~8,000 rows: se ~0.004).
        assert _expected_ap(q, b) - _expected_ap(q, a) == pytest.approx(difference, abs=0.015)
    assert implied_truth(y, a, b, 0.99) is None  # no truth from these scores has it
    assert math.isnan(_power(0.99, 1_000))


def test_power_at_no_difference_is_about_alpha():
    # 400 simulations: Monte Carlo standard error 0.011 around 0.05.
    assert 0.02 <= _power(0.0, 8_000, seed=3, n_simulations=400) <= 0.09


@pytest.mark.slow
def test_power_rises_with_traffic_and_with_the_difference():
    assert _power(0.04, 4_000) + 0.15 < _power(0.04, 16_000)
    assert _power(0.02, 8_000) + 0.15 < _power(0.06, 8_000)


@pytest.mark.slow
def test_required_traffic_gives_the_target_power_when_simulated_again():
    y, a, b = _traffic()
    result = compare_scores(y, a, b, n_resamples=200, random_state=0)
    analysis = analyse_power(y, a, b, result, min_detectable_difference=0.04, random_state=0)
    assert analysis.required_transactions is not None
    # A fresh seed and 400 simulations (standard error 0.02): within 0.8 +- 0.07.
    again = _power(0.04, analysis.required_transactions, seed=99, n_simulations=400)
    assert 0.73 <= again <= 0.87
    assert set(analysis.metrics()) >= {"power_observed", "required_transactions", "online_power"}


def test_no_winner_with_low_power_says_inconclusive_and_how_much_traffic():
    y, a, b = _traffic(3_000, seed=5, noise=(0.9, 0.8))
    result = compare_scores(y, a, b, n_resamples=200, random_state=0)
    assert result.winner is None
    analysis = analyse_power(y, a, b, result, min_detectable_difference=0.03)
    assert analysis.power_at_min_difference < 0.8
    assert analysis.verdict_note.startswith("inconclusive: needs about ")
    assert f"{analysis.required_transactions:,} transactions" in analysis.verdict_note
    assert all(math.isfinite(value) for value in analysis.metrics().values())  # no NaN logged


@pytest.mark.slow
def test_online_power_rises_with_traffic_and_required_traffic_reaches_the_target():
    low, required = online_power(0.6, 0.7, 0.01, 20_000, random_state=0)
    assert required is not None and required > 20_000
    high, _ = online_power(0.6, 0.7, 0.01, required, n_simulations=1_000, random_state=7)
    assert low < 0.5 and 0.74 <= high <= 0.88
    fisher, fisher_required = online_power(0.6, 0.7, 0.01, 20_000, sequential=False)
    assert fisher > low and fisher_required is not None and fisher_required < required
    assert online_power(0.6, 0.6, 0.01, 20_000)[1] is None


def test_bad_inputs_name_the_fix():
    y, a, b = _traffic(2_000)
    result = compare_scores(y, a, b, n_resamples=100, random_state=0)
    with pytest.raises(ConfigurationError, match="min_detectable_difference must be a positive"):
        analyse_power(y, a, b, result, min_detectable_difference=0)
    with pytest.raises(ConfigurationError, match="target_power must lie between"):
        analyse_power(y, a, b, result, target_power=1.5)
    with pytest.raises(ConfigurationError, match="run compare_scores first"):
        analyse_power(y, a, b, {"winner": None})  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="pass the labels and scores that"):
        analyse_power(y[:1_000], a[:1_000], b[:1_000], result)
    with pytest.raises(ConfigurationError, match="n_simulations must be an integer"):
        analyse_power(y, a, b, result, n_simulations=5)
    with pytest.raises(ConfigurationError, match="recall_b must be a caught-fraud rate"):
        online_power(0.5, 1.5, 0.01, 1_000)
    with pytest.raises(ConfigurationError, match="fraud_rate must lie strictly"):
        online_power(0.5, 0.6, 0.0, 1_000)
    with pytest.raises(ConfigurationError, match="n_simulations must be a whole number"):
        online_power(0.5, 0.6, 0.01, 1_000, n_simulations=0)
    with pytest.raises(ConfigurationError, match="0 < alpha < target_power < 1"):
        online_power(0.5, 0.6, 0.01, 1_000, alpha=-1, sequential=False)
    with pytest.raises(ConfigurationError, match="n_transactions must be a whole number"):
        online_power(0.5, 0.6, 0.01, -5)


def test_traffic_plans_round_up_to_two_significant_digits():
    assert [round_traffic(n) for n in (1, 99.2, 4_417, 4_417.0, 125_001)] == [
        1,
        100,
        4_500,
        4_500,
        130_000,
    ]
    with pytest.raises(ConfigurationError, match="positive number of transactions"):
        round_traffic(0)
