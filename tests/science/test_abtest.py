"""Tests for fraudkit.science.abtest: the paired (offline) comparison of two models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, recall_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.contingency_tables import mcnemar

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraudkit.science import abtest
from fraudkit.science.abtest import METRICS, compare_scores, declare_winner, run_ab_test
from fraudkit.science.simulate import TransactionSimulator

SKLEARN_METRICS = {"average_precision": average_precision_score, "roc_auc": roc_auc_score}


def paired_scores(
    seed: int, n: int = 2000, fraud_rate: float = 0.05, noise_b: float = 1.0, decimals=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' probabilities sharing a latent signal; B's noise varies."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < fraud_rate).astype(int)
    signal = 2.5 * y + rng.normal(size=n)
    a = 1 / (1 + np.exp(-(signal + rng.normal(size=n) - 2)))
    b = 1 / (1 + np.exp(-(signal + rng.normal(0, noise_b, n) - 2)))
    if decimals is not None:  # coarse scores: many ties within and across classes
        a, b = np.round(a, decimals), np.round(b, decimals)
    return y, a, b


# ------------------------------------------------------------------ metric values


@pytest.mark.parametrize("metric", list(SKLEARN_METRICS))
@pytest.mark.parametrize("decimals", [None, 1])
def test_observed_metrics_equal_sklearn_ties_included(metric: str, decimals) -> None:
    y, a, b = paired_scores(0, decimals=decimals)
    result = compare_scores(y, a, b, metric=metric, n_resamples=50, random_state=0)
    assert result.metric_a == pytest.approx(SKLEARN_METRICS[metric](y, a), abs=1e-12)
    assert result.metric_b == pytest.approx(SKLEARN_METRICS[metric](y, b), abs=1e-12)
    assert result.difference == pytest.approx(result.metric_b - result.metric_a, abs=1e-12)


@pytest.mark.parametrize("metric", list(SKLEARN_METRICS))
def test_resampled_and_swapped_metrics_equal_sklearn(metric: str) -> None:
    y, a, b = paired_scores(1, n=600, decimals=1)
    paired = abtest._PairedScores(y, np.column_stack([a, b]), metric, np.array([0.5, 0.5]))
    fraud, legit = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(2)
    fraud_draws = rng.integers(0, fraud.size, (3, fraud.size))
    legit_draws = rng.integers(0, legit.size, (3, legit.size))
    swap = rng.integers(0, 2, (3, y.size), dtype=bool)
    resampled = paired.resampled(fraud_draws, legit_draws)
    swapped = paired.swapped(swap[:, y == 1], swap[:, y == 0])
    score = SKLEARN_METRICS[metric]
    for row in range(3):
        rows = np.concatenate([fraud[fraud_draws[row]], legit[legit_draws[row]]])
        assert resampled[row, 0] == pytest.approx(score(y[rows], a[rows]), abs=1e-12)
        assert resampled[row, 1] == pytest.approx(score(y[rows], b[rows]), abs=1e-12)
        assert swapped[row, 0] == pytest.approx(score(y, np.where(swap[row], b, a)), abs=1e-12)
        assert swapped[row, 1] == pytest.approx(score(y, np.where(swap[row], a, b)), abs=1e-12)


def test_recall_metric_uses_each_models_threshold() -> None:
    y, a, b = paired_scores(3)
    result = compare_scores(
        y, a, b, metric="recall", threshold_a=0.3, threshold_b=0.6, n_resamples=50, random_state=0
    )
    assert result.metric_a == pytest.approx(recall_score(y, a >= 0.3))
    assert result.metric_b == pytest.approx(recall_score(y, b >= 0.6))


# ------------------------------------------------------------------ McNemar


@pytest.mark.parametrize(
    ("seed", "threshold_a", "threshold_b"), [(4, 0.5, 0.5), (5, 0.2, 0.7), (6, 0.9, 0.9)]
)
def test_mcnemar_p_value_equals_statsmodels_exact(seed, threshold_a, threshold_b) -> None:
    y, a, b = paired_scores(seed, n=500, noise_b=0.5)
    result = compare_scores(
        y, a, b, threshold_a=threshold_a, threshold_b=threshold_b, n_resamples=50, random_state=0
    )
    table = result.mcnemar_table
    correct_a, correct_b = (a >= threshold_a) == y, (b >= threshold_b) == y
    assert table[0, 1] == np.sum(correct_a & ~correct_b)
    assert table[1, 0] == np.sum(~correct_a & correct_b)
    assert table.sum() == y.size
    expected = mcnemar(table, exact=True).pvalue
    assert result.mcnemar_p_value == pytest.approx(expected, rel=1e-12)


# Two-sided exact p-values of the hand-written binomial test that statsmodels replaced, for
# (only A correct, only B correct) discordant counts: the switch changed no result.
HAND_WRITTEN_MCNEMAR = [
    (0, 0, 1.0),
    (3, 0, 0.25),
    (1, 1, 1.0),
    (7, 12, 0.359283447265625),
    (40, 25, 0.08168153394154003),
    (150, 170, 0.28816003219473174),
]


@pytest.mark.parametrize(("only_a", "only_b", "expected"), HAND_WRITTEN_MCNEMAR)
def test_mcnemar_p_value_is_unchanged_from_the_hand_written_test(only_a, only_b, expected) -> None:
    # Legitimate transactions are decided correctly below 0.5; four frauds both catch.
    correct = [(True, False)] * only_a + [(False, True)] * only_b + [(True, True)] * 5
    correct += [(False, False)] * 2
    correct_a, correct_b = np.array(correct).T
    y = np.r_[np.zeros(len(correct), int), np.ones(4, int)]
    a = np.r_[np.where(correct_a, 0.1, 0.9), np.full(4, 0.9)]
    b = np.r_[np.where(correct_b, 0.2, 0.8), np.full(4, 0.8)]
    result = compare_scores(y, a, b, n_resamples=20, random_state=0)
    assert (result.only_a_correct, result.only_b_correct) == (only_a, only_b)
    assert (result.both_correct, result.both_wrong) == (9, 2)
    assert result.mcnemar_p_value == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------ inference


def test_identical_models_have_p_value_one_no_winner_and_zero_interval() -> None:
    y, a, _ = paired_scores(7)
    result = compare_scores(y, a, a.copy(), n_resamples=100, random_state=0)
    assert result.p_value == 1.0
    assert result.mcnemar_p_value == 1.0
    assert (result.ci_low, result.ci_high, result.difference) == (0.0, 0.0, 0.0)
    assert result.winner is None
    assert result.statistical_significance is False
    assert result.improvement == 0.0


@pytest.mark.parametrize(("order", "winner"), [("ab", "B"), ("ba", "A")])
def test_clearly_better_model_wins_with_smallest_p_value(order: str, winner: str) -> None:
    # 20,000 transactions make a chunk of 25 resamples, so 100 resamples take 4 chunks.
    y, weak, strong = paired_scores(8, n=20_000, fraud_rate=0.01, noise_b=0.1)
    scores = (weak, strong) if order == "ab" else (strong, weak)
    result = compare_scores(y, *scores, n_resamples=100, random_state=0)
    assert result.winner == winner
    assert result.statistical_significance is True
    assert result.p_value == pytest.approx(1 / 101)
    lower, higher = sorted([result.metric_a, result.metric_b])
    assert result.improvement == pytest.approx((higher - lower) / lower)
    ci = (result.ci_low, result.ci_high)
    interval = ci if order == "ab" else (-ci[1], -ci[0])
    assert 0 < interval[0] < abs(result.difference) < interval[1]


def test_permutation_p_value_is_calibrated_under_the_null() -> None:
    # Both models see the signal through noise of the same size: exchangeable scores.
    rng = np.random.default_rng(9)
    p_values = np.array(
        [
            compare_scores(
                *paired_scores(seed, n=300, fraud_rate=0.1), n_resamples=99, random_state=rng
            ).p_value
            for seed in range(400)
        ]
    )
    # With 99 permutations p < 0.05 means p <= 0.04: the exact rate is 0.04 (s.e. 0.01).
    assert 0.015 <= np.mean(p_values < 0.05) <= 0.08


def test_bootstrap_interval_covers_true_difference_at_nominal_rate() -> None:
    design = {"n": 1000, "fraud_rate": 0.1, "noise_b": 0.6}  # about 100 frauds per sample
    # The population difference of AUPRC, from half a million transactions.
    y, a, b = paired_scores(10, **(design | {"n": 500_000}))
    truth = average_precision_score(y, b) - average_precision_score(y, a)
    rng = np.random.default_rng(11)
    covered = []
    for seed in range(100, 300):
        result = compare_scores(
            *paired_scores(seed, **design), alpha=0.1, n_resamples=200, random_state=rng
        )
        covered.append(result.ci_low <= truth <= result.ci_high)
    assert truth > 0.05
    # Nominal 0.90: percentile intervals run 0.01-0.03 short with ~100 frauds, and 200
    # repetitions add a standard error of 0.02.
    assert 0.83 <= np.mean(covered) <= 0.96


def test_same_seed_same_result_and_plain_dict() -> None:
    y, a, b = paired_scores(12)
    first = compare_scores(y, a, b, n_resamples=100, random_state=3)
    second = compare_scores(pd.Series(y), list(a), pd.Series(b), n_resamples=100, random_state=3)
    assert first == second
    data = first.to_dict()
    assert list(data)[:4] == ["winner", "improvement", "p_value", "statistical_significance"]
    assert {"metric_a", "metric_b", "ci_low", "ci_high", "mcnemar_p_value", "n_fraud"} <= set(data)
    assert data["only_a_correct"] + data["only_b_correct"] <= data["n"]
    assert json.loads(json.dumps(data)) == data
    assert first["winner"] == first.winner


def test_summary_names_the_improvement_relative() -> None:
    y, a, b = paired_scores(12)
    result = compare_scores(y, a, b, n_resamples=100, random_state=3)
    summary = result.summary()
    assert list(summary)[:4] == [
        "winner", "relative_improvement", "p_value", "statistical_significance"
    ]  # fmt: skip
    assert "improvement" not in summary
    assert summary["relative_improvement"] == result.improvement
    assert {k: v for k, v in summary.items() if k != "relative_improvement"} == {
        k: v for k, v in result.to_dict().items() if k != "improvement"
    }


def test_declare_winner_needs_significance_and_measures_against_the_loser() -> None:
    assert declare_winner(0.5, 0.6, significant=True) == ("B", pytest.approx(0.2))
    assert declare_winner(0.6, 0.5, significant=True) == ("A", pytest.approx(0.2))
    assert declare_winner(0.5, 0.6, significant=False) == (None, pytest.approx(0.2))
    winner, improvement = declare_winner(0.0, 0.0, significant=False)
    assert winner is None and np.isnan(improvement)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("y", "a", "b", "match"),
    [
        ([0, 1, 0], [0.1, 0.9, 0.2], [0.1, 0.9], "scores_b"),
        ([0, 1, 0], [0.1, np.nan, 0.2], [0.1, 0.9, 0.2], r"scores_a.*row 1"),
        ([0, 2, 0], [0.1, 0.9, 0.2], [0.1, 0.9, 0.2], "0 .*and 1"),
        ([0, 0, 0], [0.1, 0.9, 0.2], [0.1, 0.9, 0.2], "only legitimate"),
        ([1, 1, 1], [0.1, 0.9, 0.2], [0.1, 0.9, 0.2], "only frauds"),
    ],
)
def test_invalid_data_raises_data_validation_error(y, a, b, match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        compare_scores(y, a, b, n_resamples=50)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"metric": "f1"}, "average_precision, roc_auc, recall"),
        ({"alpha": 1.5}, "alpha"),
        ({"n_resamples": 10}, "at least 20"),
        ({"threshold_b": float("nan")}, "threshold_b=nan"),
    ],
)
def test_invalid_settings_raise_configuration_error(settings: dict, match: str) -> None:
    y, a, b = paired_scores(13, n=200)
    with pytest.raises(ConfigurationError, match=match):
        compare_scores(y, a, b, **settings)
    assert "recall" in METRICS


# ------------------------------------------------------------------ models


@pytest.fixture(scope="module")
def transactions() -> tuple[pd.DataFrame, pd.DataFrame]:
    simulator = TransactionSimulator(seed=3, fraud_rate=0.02)
    return simulator.sample(6000), simulator.sample(8000)


def _fitted(train: pd.DataFrame, columns: list[str]):
    features = make_column_transformer((StandardScaler(), columns))
    model = make_pipeline(features, LogisticRegression(max_iter=500))
    return model.fit(train, train[LABEL_COLUMN])


@pytest.fixture(scope="module")
def weak_and_strong(transactions):
    train, _ = transactions
    return _fitted(train, ["V1", "V2"]), _fitted(train, FEATURE_COLUMNS)


def test_run_ab_test_declares_the_better_fitted_model(transactions, weak_and_strong) -> None:
    _, test = transactions
    weak, strong = weak_and_strong
    result = run_ab_test(weak, strong, test, n_resamples=200, random_state=0)
    assert result["winner"] == "B"
    assert result.n == len(test)
    assert result.n_fraud == int(test[LABEL_COLUMN].sum())
    assert result.metric_b == pytest.approx(
        average_precision_score(test[LABEL_COLUMN], strong.predict_proba(test)[:, 1])
    )


def test_run_ab_test_refuses_a_model_uri_and_says_how_to_load_it(
    transactions, weak_and_strong
) -> None:
    _, test = transactions
    weak, _ = weak_and_strong
    uri = "models:/credit_card_fraud_detector@production"
    with pytest.raises(ConfigurationError) as caught:
        run_ab_test(weak, uri, test, n_resamples=50)
    message = str(caught.value)
    assert f"model {uri!r} is a string" in message
    assert f"fraudkit.tracking.registry.load_model({uri!r})" in message
    with pytest.raises(ConfigurationError, match=r"'model\.pkl' is a string"):
        run_ab_test("model.pkl", weak, test)


def test_run_ab_test_requires_labels(transactions, weak_and_strong) -> None:
    _, test = transactions
    with pytest.raises(DataValidationError, match="Class"):
        run_ab_test(*weak_and_strong, test.drop(columns=[LABEL_COLUMN]))


def test_importing_the_science_modules_does_not_import_mlflow() -> None:
    modules = ", ".join(
        f"fraudkit.science.{name}" for name in ("abtest", "online", "sequential", "simulate")
    )
    code = f"import sys, {modules}; print('mlflow' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.stdout.strip() == "False", output.stderr
