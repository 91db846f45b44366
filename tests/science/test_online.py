"""Tests for fraudkit.science.online: the traffic-split A/B test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import LABEL_COLUMN
from fraudkit.science.online import (
    ONLINE_COLUMNS,
    assign_traffic,
    compare_online,
    run_online_ab_test,
)
from fraudkit.science.sequential import SequentialABTest
from fraudkit.science.simulate import TransactionSimulator


def test_assign_traffic_splits_at_the_requested_share() -> None:
    to_b = assign_traffic(20_000, split=0.3, random_state=0)
    assert to_b.dtype == bool and to_b.shape == (20_000,)
    assert to_b.mean() == pytest.approx(0.3, abs=0.01)
    assert np.array_equal(to_b, assign_traffic(20_000, split=0.3, random_state=0))
    with pytest.raises(ConfigurationError, match="split"):
        assign_traffic(10, split=1.0)


def _outcomes(frauds: int, caught: int, legit: int, alerts: int, amount: float) -> pd.DataFrame:
    fraud = np.r_[np.ones(frauds, int), np.zeros(legit, int)]
    flagged = np.r_[np.arange(frauds) < caught, np.arange(legit) < alerts]
    return pd.DataFrame({"Class": fraud, "Amount": amount, "flagged": flagged})


def test_compare_online_tests_recall_and_amount() -> None:
    outcomes_a = _outcomes(frauds=40, caught=20, legit=960, alerts=30, amount=100.0)
    outcomes_b = _outcomes(frauds=50, caught=40, legit=950, alerts=60, amount=100.0)
    result = compare_online(outcomes_a, outcomes_b, sequential=False)
    assert (result.recall_a, result.recall_b) == (0.5, 0.8)
    assert result.p_value == pytest.approx(stats.fisher_exact([[20, 20], [40, 10]])[1])
    assert result.fisher_p_value == result.p_value and result.decided_by == "fisher"
    caught_a = np.where(outcomes_a["Class"] & outcomes_a["flagged"], 100.0, 0.0)
    caught_b = np.where(outcomes_b["Class"] & outcomes_b["flagged"], 100.0, 0.0)
    welch = stats.ttest_ind(caught_a, caught_b, equal_var=False).pvalue
    assert result.amount_p_value == pytest.approx(welch)
    assert result.amount_difference == pytest.approx(caught_b.mean() - caught_a.mean())
    assert (result.alert_rate_a, result.alert_rate_b) == (0.05, 0.1)
    assert result.winner == "B" and result.statistical_significance
    assert result.improvement == pytest.approx(0.8 / 0.5 - 1)
    assert result.to_dict()["n_fraud_b"] == 50
    assert result.summary()["relative_improvement"] == result.improvement


def test_compare_online_without_a_significant_difference_has_no_winner() -> None:
    outcomes = _outcomes(frauds=30, caught=15, legit=500, alerts=10, amount=50.0)
    result = compare_online(outcomes, outcomes.copy())
    assert result.winner is None and result.p_value == 1.0 and result.amount_p_value == 1.0


@pytest.mark.parametrize(
    ("outcomes", "match"),
    [
        (_outcomes(0, 0, 100, 5, 10.0), "no fraud"),
        (_outcomes(5, 2, 100, 5, 10.0).drop(columns=["flagged"]), "flagged"),
        (_outcomes(5, 2, 100, 5, 10.0).assign(flagged=0.5), "True/False"),
    ],
)
def test_compare_online_rejects_invalid_arms(outcomes: pd.DataFrame, match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        compare_online(_outcomes(5, 2, 100, 5, 10.0), outcomes)


class FixedScores:
    """A stand-in fitted model whose fraud score is a function of the rows it is given."""

    def __init__(self, score) -> None:
        self.score = score

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        scores = np.asarray(self.score(df), dtype=float)
        return np.column_stack([1 - scores, scores])


@pytest.fixture(scope="module")
def traffic_and_models() -> tuple[pd.DataFrame, FixedScores, FixedScores]:
    """Labelled traffic, a model that flags nothing at 0.1 and the Bayes-optimal one."""
    simulator = TransactionSimulator(seed=3, fraud_rate=0.02)
    traffic = simulator.sample(8000)
    weak = FixedScores(lambda df: np.full(len(df), 0.05))
    return traffic, weak, FixedScores(simulator.fraud_probability)


def test_run_online_ab_test_routes_traffic_and_finds_the_better_model(
    traffic_and_models,
) -> None:
    test, weak, strong = traffic_and_models
    result = run_online_ab_test(
        weak, strong, test, split=0.5, threshold_a=0.1, threshold_b=0.1, random_state=0
    )
    to_b = assign_traffic(len(test), 0.5, random_state=0)
    assert (result.n_a, result.n_b) == (int((~to_b).sum()), int(to_b.sum()))
    assert result.n_fraud_b == int(test[LABEL_COLUMN][to_b].sum())
    assert result.winner == "B" and result.decided_by == "sequential"
    assert result.recall_b > result.recall_a


def test_run_online_ab_test_refuses_a_model_uri(traffic_and_models) -> None:
    test, weak, _ = traffic_and_models
    with pytest.raises(ConfigurationError, match=r"fraudkit\.tracking\.registry\.load_model\("):
        run_online_ab_test(weak, "models:/credit_card_fraud_detector@staging", test)
    with pytest.raises(DataValidationError, match="Amount"):
        run_online_ab_test(weak, weak, test.drop(columns=["Amount"]))


def test_compare_online_lets_the_sequential_test_decide_by_default() -> None:
    # Fisher's test finds this difference at one look (p = 0.0035), but 40 and 50 frauds
    # are too few for a test that must stay valid however often it is looked at.
    outcomes_a = _outcomes(frauds=40, caught=20, legit=960, alerts=30, amount=100.0)
    outcomes_b = _outcomes(frauds=50, caught=40, legit=950, alerts=60, amount=100.0)
    result = compare_online(outcomes_a, outcomes_b)
    look = SequentialABTest().update_counts(40, 20, 50, 40)
    assert result.decided_by == "sequential" and result.winner is None
    assert result.p_value == result.sequential_p_value == look.p_value
    assert (result.recall_ci_low, result.recall_ci_high) == (look.ci_low, look.ci_high)
    assert result.recall_ci_low < 0 < result.recall_difference < result.recall_ci_high
    assert result.likelihood_ratio == look.likelihood_ratio
    assert result.fisher_p_value < 0.01 and result.mixing_sd == 0.1
    # With ten times the frauds the sequential test declares B too.
    big_a = _outcomes(frauds=400, caught=200, legit=9600, alerts=300, amount=100.0)
    big_b = _outcomes(frauds=500, caught=400, legit=9500, alerts=600, amount=100.0)
    assert compare_online(big_a, big_b).winner == "B"


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"mixing_sd": 0.0}, "mixing_sd must lie in"),
        ({"mixing_sd": 1.5}, "mixing_sd must lie in"),
        ({"mixing_sd": float("nan")}, "mixing_sd must lie in"),
        ({"mixing_sd": "0.1"}, "mixing_sd must lie in"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": True}, "alpha"),
    ],
)
def test_compare_online_validates_the_sequential_settings(settings: dict, match: str) -> None:
    outcomes = _outcomes(5, 2, 100, 5, 10.0)
    with pytest.raises(ConfigurationError, match=match):
        compare_online(outcomes, outcomes, **settings)


def test_compare_online_rejects_a_non_boolean_sequential_flag() -> None:
    outcomes = _outcomes(5, 2, 100, 5, 10.0)
    with pytest.raises(ConfigurationError, match="sequential must be True or False"):
        compare_online(outcomes, outcomes, sequential="no")


def test_online_columns_are_label_amount_and_decision() -> None:
    assert ONLINE_COLUMNS == ("Class", "Amount", "flagged")
