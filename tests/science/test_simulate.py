"""Tests for fraudkit.science.simulate: simulator, drift, exact posterior, Bayes ceiling."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import (
    AMOUNT_COLUMN,
    DEFAULT_FRAUD_RATE,
    FEATURE_COLUMNS,
    KAGGLE_COLUMNS,
    LABEL_COLUMN,
    TIME_COLUMN,
    V_COLUMNS,
)
from fraudkit.science.simulate import DRIFT_SCENARIOS, Drift, TransactionSimulator, bayes_ceiling

INFORMATIVE = {"V14", "V17", "V12", "V10", "V4", "V11", "V3"}


def binomial_tolerance(n: int, p: float, sigmas: float = 4.0) -> float:
    return sigmas * math.sqrt(n * p * (1 - p))


def max_ks_p_value_violations(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> list[str]:
    """Columns whose two samples differ at a Bonferroni-corrected 0.1 % level."""
    alpha = 1e-3 / len(columns)
    return [c for c in columns if stats.ks_2samp(a[c], b[c]).pvalue < alpha]


@pytest.fixture(scope="module")
def default_sample() -> tuple[TransactionSimulator, pd.DataFrame]:
    simulator = TransactionSimulator(seed=11)
    return simulator, simulator.sample(200_000)


@pytest.fixture(scope="module")
def rich_sample() -> tuple[TransactionSimulator, pd.DataFrame]:
    simulator = TransactionSimulator(seed=12, fraud_rate=0.05)
    return simulator, simulator.sample(100_000)


# --- schema and basic properties -------------------------------------------------------


def test_sample_schema_and_value_ranges() -> None:
    df = TransactionSimulator(seed=1).sample(5_000)
    assert list(df.columns) == KAGGLE_COLUMNS
    assert all(df[c].dtype == np.float64 for c in KAGGLE_COLUMNS[:-1])
    assert df[LABEL_COLUMN].dtype == np.int64
    assert set(df[LABEL_COLUMN].unique()) <= {0, 1}
    assert df[TIME_COLUMN].iloc[0] == 0.0
    assert (np.diff(df[TIME_COLUMN]) > 0).all()
    assert (df[AMOUNT_COLUMN] >= 0).all()
    cents = df[AMOUNT_COLUMN] * 100
    assert np.allclose(cents, cents.round(), atol=1e-6)
    assert isinstance(df.index, pd.RangeIndex)


def test_features_are_pca_like(default_sample) -> None:
    _, df = default_sample
    legit = df[df[LABEL_COLUMN] == 0]
    scales = legit[V_COLUMNS].std()
    assert (legit[V_COLUMNS].mean().abs() < 0.05 * scales).all()
    # variances fall from V1 to V28 like PCA output
    assert stats.spearmanr(np.arange(28), scales).statistic < -0.95
    assert scales["V1"] > 1.5 > 0.5 > scales["V28"]
    assert (legit[V_COLUMNS].kurt() > 1.0).all()  # heavier tails than Gaussian


def test_fraud_rate_is_realistic_and_adjustable(default_sample) -> None:
    _, df = default_sample
    expected = len(df) * DEFAULT_FRAUD_RATE
    assert abs(df[LABEL_COLUMN].sum() - expected) < binomial_tolerance(len(df), DEFAULT_FRAUD_RATE)
    df = TransactionSimulator(seed=2, fraud_rate=0.05).sample(20_000)
    assert abs(df[LABEL_COLUMN].sum() - 1_000) < binomial_tolerance(20_000, 0.05)


def test_amount_differs_between_classes_like_real_data(rich_sample) -> None:
    _, df = rich_sample
    legit = df.loc[df[LABEL_COLUMN] == 0, AMOUNT_COLUMN]
    fraud = df.loc[df[LABEL_COLUMN] == 1, AMOUNT_COLUMN]
    assert 18 < legit.median() < 27
    assert 60 < legit.mean() < 120
    assert fraud.median() < legit.median()
    assert (fraud <= 2.0).mean() > 0.3  # many small test transactions
    assert fraud.quantile(0.9) > legit.quantile(0.9)  # plus some large ones


def test_informative_features_carry_the_signal(rich_sample) -> None:
    _, df = rich_sample
    separation = pd.Series(
        {c: abs(roc_auc_score(df[LABEL_COLUMN], df[c]) - 0.5) for c in V_COLUMNS}
    ).sort_values(ascending=False)
    assert set(separation.index[:7]) == INFORMATIVE
    assert (separation.iloc[13:] < 0.02).all()  # the rest look alike in both classes


def test_arrival_rate_and_daily_cycle() -> None:
    simulator = TransactionSimulator(seed=3, rate_per_second=0.1)
    df = simulator.sample(17_280)  # two days' worth at 0.1 per second
    assert abs(df[TIME_COLUMN].iloc[-1] / 172_800 - 1) < 0.03
    hours = (df[TIME_COLUMN] // 3600 % 24).astype(int)
    assert (hours.between(2, 5)).sum() * 4 < (hours.between(12, 15)).sum()
    flat = TransactionSimulator(seed=3, rate_per_second=0.1, daily_cycle=False).sample(17_280)
    flat_hours = (flat[TIME_COLUMN] // 3600 % 24).astype(int)
    assert abs(flat_hours.between(2, 5).sum() / flat_hours.between(12, 15).sum() - 1) < 0.15


def test_default_arrival_rate_matches_ulb() -> None:
    df = TransactionSimulator(seed=4, daily_cycle=False).sample(50_000)
    assert abs(len(df) / df[TIME_COLUMN].iloc[-1] / (284_807 / 172_792) - 1) < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [{"seed": -1}, {"seed": 1.5}, {"fraud_rate": 0.0}, {"fraud_rate": 1.0}, {"rate_per_second": 0}],
)
def test_simulator_rejects_bad_settings(kwargs) -> None:
    with pytest.raises(ConfigurationError):
        TransactionSimulator(**kwargs)


@pytest.mark.parametrize("call", [{"n": 0}, {"n": 2.5}, {"n": 10, "start_time": -1.0}])
def test_sample_rejects_bad_arguments(call) -> None:
    with pytest.raises(ConfigurationError):
        TransactionSimulator().sample(**call)


@pytest.mark.parametrize(
    ("n_windows", "window_size", "drift_start", "name"),
    [(0, 10, None, "n_windows"), (2, 0, None, "window_size"), (2, 10, -1, "drift_start")],
)
def test_sample_windows_rejects_bad_arguments(n_windows, window_size, drift_start, name) -> None:
    with pytest.raises(ConfigurationError, match=name):
        TransactionSimulator().sample_windows(n_windows, window_size, drift_start=drift_start)


# --- determinism and clock -------------------------------------------------------------


def test_same_seed_and_calls_give_identical_frames() -> None:
    a, b = TransactionSimulator(seed=7), TransactionSimulator(seed=7)
    drift = Drift.scenario("new_fraud_pattern")
    for sim_a_call, sim_b_call in [
        (a.sample(1_000), b.sample(1_000)),
        (a.sample(500, drift=drift), b.sample(500, drift=drift)),
        (a.sample(300, start_time=5.0), b.sample(300, start_time=5.0)),
    ]:
        pd.testing.assert_frame_equal(sim_a_call, sim_b_call)
    windows_a = a.sample_windows(3, 200, drift=drift, drift_start=1)
    windows_b = b.sample_windows(3, 200, drift=drift, drift_start=1)
    for window_a, window_b in zip(windows_a, windows_b, strict=True):
        pd.testing.assert_frame_equal(window_a, window_b)


def test_different_seeds_or_calls_differ() -> None:
    simulator = TransactionSimulator(seed=7)
    first, second = simulator.sample(1_000), simulator.sample(1_000)
    other = TransactionSimulator(seed=8).sample(1_000)
    assert not np.allclose(first[V_COLUMNS], second[V_COLUMNS])
    assert not np.allclose(first[V_COLUMNS], other[V_COLUMNS])


def test_clock_continues_across_calls_and_start_time_overrides() -> None:
    simulator = TransactionSimulator(seed=5)
    assert simulator.last_time is None
    first = simulator.sample(1_000)
    assert simulator.last_time == first[TIME_COLUMN].iloc[-1]
    second = simulator.sample(1_000)
    gap = second[TIME_COLUMN].iloc[0] - first[TIME_COLUMN].iloc[-1]
    assert 0 < gap < 60
    restarted = simulator.sample(100, start_time=1_000_000.0)
    assert restarted[TIME_COLUMN].iloc[0] == 1_000_000.0
    assert (np.diff(restarted[TIME_COLUMN]) > 0).all()
    assert simulator.sample(10)[TIME_COLUMN].iloc[0] > restarted[TIME_COLUMN].iloc[-1]


def test_sample_windows_are_consecutive_and_drift_from_start() -> None:
    simulator = TransactionSimulator(seed=6, fraud_rate=0.05)
    drift = Drift(covariate_shift={"V20": 3.0})
    windows = simulator.sample_windows(4, 2_000, drift=drift, drift_start=2)
    assert [len(w) for w in windows] == [2_000] * 4
    for earlier, later in itertools.pairwise(windows):
        assert later[TIME_COLUMN].iloc[0] > earlier[TIME_COLUMN].iloc[-1]
    means = [w["V20"].mean() / 0.771 for w in windows]
    assert max(abs(means[0]), abs(means[1])) < 0.1
    assert min(means[2], means[3]) > 2.8
    assert all(w["V20"].mean() > 2 for w in simulator.sample_windows(2, 500, drift=drift))


# --- drift -----------------------------------------------------------------------------


def test_unknown_scenario_lists_valid_names() -> None:
    with pytest.raises(ConfigurationError) as error:
        Drift.scenario("earthquake")
    assert all(name in str(error.value) for name in DRIFT_SCENARIOS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"covariate_shift": {"Amount": 1.0}},
        {"covariate_shift": {"V1": math.inf}},
        {"amount_inflation": 0.0},
        {"fraud_rate": 1.5},
        {"new_fraud_pattern": 1.2},
    ],
)
def test_drift_rejects_bad_values(kwargs) -> None:
    with pytest.raises(ConfigurationError):
        Drift(**kwargs)


def test_drift_is_frozen_and_serialisable() -> None:
    shifts = {"V3": 1.0}
    drift = Drift(covariate_shift=shifts)
    shifts["V3"] = 5.0
    assert drift.covariate_shift["V3"] == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        drift.amount_inflation = 2.0  # type: ignore[misc]
    assert Drift.scenario("covariate_shift", severity=2.0).to_dict()["covariate_shift"]["V1"] == 2
    assert hash(drift) == hash(Drift(covariate_shift={"V3": 1.0})) != hash(Drift())
    assert drift == Drift(covariate_shift={"V3": 1.0}) != Drift()
    with pytest.raises(ConfigurationError):
        Drift.scenario("covariate_shift", severity=-1.0)


@pytest.mark.parametrize("name", DRIFT_SCENARIOS)
def test_zero_severity_changes_nothing(name) -> None:
    plain = TransactionSimulator(seed=9).sample(3_000)
    drifted = TransactionSimulator(seed=9).sample(3_000, drift=Drift.scenario(name, 0.0))
    pd.testing.assert_frame_equal(plain, drifted)


def test_covariate_shift_moves_only_the_chosen_features() -> None:
    drift = Drift.scenario("covariate_shift")
    plain = TransactionSimulator(seed=21).sample(20_000)
    shifted = TransactionSimulator(seed=21).sample(20_000, drift=drift)
    # Coupled draws: every row moves by exactly the shift, everything else is untouched.
    legit_sd = plain.loc[plain[LABEL_COLUMN] == 0, V_COLUMNS].std()
    for name in V_COLUMNS:
        delta = shifted[name] - plain[name]
        expected = drift.covariate_shift.get(name, 0.0)
        assert np.allclose(delta / legit_sd[name], expected, atol=0.05), name
        assert delta.std() < 1e-9
    # Class included: the same labels, so the fraud rate did not move.
    others = [c for c in KAGGLE_COLUMNS if c not in drift.covariate_shift]
    pd.testing.assert_frame_equal(plain[others], shifted[others])


def test_amount_inflation_scales_only_amount() -> None:
    plain = TransactionSimulator(seed=23).sample(20_000)
    inflated = TransactionSimulator(seed=23).sample(
        20_000, drift=Drift.scenario("amount_inflation")
    )
    ratio = inflated[AMOUNT_COLUMN].median() / plain[AMOUNT_COLUMN].median()
    assert abs(ratio - 1.5) < 0.02
    big = plain[AMOUNT_COLUMN] > 10
    assert np.allclose(inflated.loc[big, AMOUNT_COLUMN] / plain.loc[big, AMOUNT_COLUMN], 1.5, 0.01)
    unchanged = [c for c in KAGGLE_COLUMNS if c != AMOUNT_COLUMN]
    pd.testing.assert_frame_equal(plain[unchanged], inflated[unchanged])


def test_fraud_rate_change_moves_only_the_prior() -> None:
    drift = Drift.scenario("fraud_rate_change")
    assert drift.fraud_rate == pytest.approx(3 * DEFAULT_FRAUD_RATE)
    df = TransactionSimulator(seed=24).sample(100_000, drift=drift)
    assert abs(df[LABEL_COLUMN].sum() - 100_000 * drift.fraud_rate) < binomial_tolerance(
        100_000, drift.fraud_rate
    )
    # Class-conditional distributions stay put when only the prior changes.
    base = TransactionSimulator(seed=25, fraud_rate=0.05).sample(20_000)
    moved = TransactionSimulator(seed=26, fraud_rate=0.05).sample(
        20_000, drift=Drift(fraud_rate=0.2)
    )
    assert abs(moved[LABEL_COLUMN].mean() - 0.2) < 0.015
    for label in (0, 1):
        a, b = base[base[LABEL_COLUMN] == label], moved[moved[LABEL_COLUMN] == label]
        assert max_ks_p_value_violations(a, b, FEATURE_COLUMNS) == [], label


def test_new_fraud_pattern_changes_only_fraud_features() -> None:
    drift = Drift.scenario("new_fraud_pattern")
    assert drift.new_fraud_pattern == 0.5
    simulator = TransactionSimulator(seed=27, fraud_rate=0.05)
    plain = simulator.sample(20_000)
    drifted = TransactionSimulator(seed=27, fraud_rate=0.05).sample(20_000, drift=drift)
    # Same labels and identical legit rows: neither the prior nor legit traffic moved.
    pd.testing.assert_series_equal(plain[LABEL_COLUMN], drifted[LABEL_COLUMN])
    legit = plain[LABEL_COLUMN] == 0
    pd.testing.assert_frame_equal(plain[legit], drifted[legit])

    def share_in_new_region(df: pd.DataFrame) -> float:
        fraud = df[df[LABEL_COLUMN] == 1]
        return float(((fraud["V5"] / 1.38 > 1.5) & (fraud["V8"] / 1.194 > 1.5)).mean())

    assert share_in_new_region(plain) < 0.03
    assert 0.35 < share_in_new_region(drifted) < 0.52
    # The old posterior misses the new fraud; the drift-aware one does not.
    stale = average_precision_score(drifted[LABEL_COLUMN], simulator.fraud_probability(drifted))
    aware = average_precision_score(
        drifted[LABEL_COLUMN], simulator.fraud_probability(drifted, drift=drift)
    )
    assert stale < aware - 0.3


# --- exact posterior -------------------------------------------------------------------


def assert_calibrated(probability: np.ndarray, labels: np.ndarray, bins: int = 10) -> None:
    """Observed fraud rate per probability-decile bin matches the mean prediction."""
    edges = np.quantile(probability, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, bins - 1)
    for b in range(bins):
        in_bin = which == b
        predicted, observed = probability[in_bin].mean(), labels[in_bin].mean()
        tolerance = 4 * math.sqrt(max(predicted * (1 - predicted), 1e-4) / in_bin.sum()) + 2e-3
        assert abs(observed - predicted) < tolerance, (b, predicted, observed)


def test_fraud_probability_is_calibrated(rich_sample) -> None:
    simulator, df = rich_sample
    probability = simulator.fraud_probability(df)
    assert probability.dtype == np.float64 and probability.shape == (len(df),)
    assert_calibrated(probability, df[LABEL_COLUMN].to_numpy())
    assert abs(probability.mean() - df[LABEL_COLUMN].mean()) < 0.003


def test_fraud_probability_is_calibrated_under_combined_drift() -> None:
    drift = Drift(
        covariate_shift={"V14": -1.0, "V28": 2.0},
        amount_inflation=1.7,
        fraud_rate=0.05,
        new_fraud_pattern=0.4,
    )
    simulator = TransactionSimulator(seed=31)
    df = simulator.sample(60_000, drift=drift)
    assert_calibrated(simulator.fraud_probability(df, drift=drift), df[LABEL_COLUMN].to_numpy())


def test_fraud_probability_is_stable_for_extreme_rows() -> None:
    simulator = TransactionSimulator()
    extreme = simulator.sample(5)
    extreme.loc[0, V_COLUMNS] = 1e4
    extreme.loc[1, V_COLUMNS] = -1e4
    extreme.loc[2, AMOUNT_COLUMN] = 0.0
    extreme.loc[3, AMOUNT_COLUMN] = 1e9
    extreme.loc[4, AMOUNT_COLUMN] = 0.001  # finer than cents, as user data may be
    probability = simulator.fraud_probability(extreme)
    assert np.isfinite(probability).all()
    assert ((probability >= 0) & (probability <= 1)).all()


def test_fraud_probability_names_missing_columns() -> None:
    df = TransactionSimulator().sample(10).drop(columns=["V7"])
    with pytest.raises(DataValidationError, match="V7"):
        TransactionSimulator().fraud_probability(df)


def test_bayes_ceiling_is_realistic_and_not_linear(default_sample) -> None:
    simulator, test = default_sample
    bayes = average_precision_score(test[LABEL_COLUMN], simulator.fraud_probability(test))
    assert 0.80 <= bayes <= 0.95
    # Give the linear model a generous fraud-rich training set; its ranking, unlike
    # its intercept, does not depend on the prior.
    train = TransactionSimulator(seed=13, fraud_rate=0.02).sample(40_000)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000))
    linear.fit(train[FEATURE_COLUMNS], train[LABEL_COLUMN])
    linear_ap = average_precision_score(
        test[LABEL_COLUMN], linear.predict_proba(test[FEATURE_COLUMNS])[:, 1]
    )
    assert linear_ap < bayes - 0.08


# --- Bayes ceiling beside a model's metrics --------------------------------------------


def test_bayes_ceiling_is_the_average_precision_of_the_exact_posterior(rich_sample) -> None:
    simulator, df = rich_sample
    test = df.iloc[:20_000]
    expected = average_precision_score(test[LABEL_COLUMN], simulator.fraud_probability(test))
    assert bayes_ceiling(test, simulator) == {"bayes_average_precision": pytest.approx(expected)}
    model = {"average_precision": 0.6, "roc_auc": 0.9}
    ceiling = bayes_ceiling(test, simulator, metrics=model)
    assert ceiling is not None
    assert ceiling["share_of_bayes_auprc"] == pytest.approx(0.6 / expected)
    assert set(ceiling) == {"bayes_average_precision", "share_of_bayes_auprc"}
    # Metrics without average precision get no share.
    assert set(bayes_ceiling(test, simulator, metrics={"roc_auc": 0.9}) or {}) == {
        "bayes_average_precision"
    }


def test_bayes_ceiling_is_none_without_a_simulator(rich_sample) -> None:
    _, df = rich_sample
    assert bayes_ceiling(df.iloc[:100]) is None
    assert bayes_ceiling(df.iloc[:100], None, metrics={"average_precision": 0.5}) is None


def test_bayes_ceiling_scores_under_the_drift_the_rows_were_drawn_with() -> None:
    drift = Drift.scenario("new_fraud_pattern")
    simulator = TransactionSimulator(seed=27, fraud_rate=0.05)
    drifted = simulator.sample(10_000, drift=drift)
    aware = bayes_ceiling(drifted, simulator, drift=drift)
    stale = bayes_ceiling(drifted, simulator)
    assert aware is not None and stale is not None
    expected = average_precision_score(
        drifted[LABEL_COLUMN], simulator.fraud_probability(drifted, drift=drift)
    )
    assert aware["bayes_average_precision"] == pytest.approx(expected)
    assert stale["bayes_average_precision"] < aware["bayes_average_precision"] - 0.3


def test_bayes_ceiling_needs_labels_and_is_nan_on_a_single_class() -> None:
    simulator = TransactionSimulator(seed=3)
    rows = simulator.sample(200)
    with pytest.raises(DataValidationError, match="Class"):
        bayes_ceiling(rows.drop(columns=[LABEL_COLUMN]), simulator)
    legit_only = rows[rows[LABEL_COLUMN] == 0]
    ceiling = bayes_ceiling(legit_only, simulator, metrics={"average_precision": float("nan")})
    assert ceiling is not None and math.isnan(ceiling["bayes_average_precision"])
