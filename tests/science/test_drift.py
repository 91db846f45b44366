from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.oracle import OracleModel, normal_frame

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from fraudkit.science.drift import MIN_ROWS, detect_drift, detect_prediction_drift
from fraudkit.science.simulate import Drift, TransactionSimulator

# ------------------------------------------------------------------------------ data drift


def test_undrifted_windows_rarely_alarm() -> None:
    simulator = TransactionSimulator(seed=11)
    reports = [detect_drift(simulator.sample(1_000), simulator.sample(1_000)) for _ in range(40)]
    # alpha = 0.05 at the dataset level: about 2 of 40 expected; uncorrected KS would
    # alarm on ~77 % of them.
    assert sum(r.dataset_drift for r in reports) <= 4
    assert reports[0].features["feature"].tolist() == FEATURE_COLUMNS


@pytest.mark.parametrize(
    ("scenario", "fraud_rate", "moved"),
    [
        ("covariate_shift", 0.00172, {"V1", "V2", "V14"}),
        ("amount_inflation", 0.00172, {"Amount"}),
        # Only fraud rows change, so the marginals move visibly only when fraud is common:
        # at 10 % fraud, 5 % of the rows jump 3 sd out on V5, V6, V8 and V13.
        ("new_fraud_pattern", 0.1, {"V5", "V6", "V8", "V13"}),
        # Tripling a 10 % prior moves a fifth of the rows onto the fraud loadings.
        ("fraud_rate_change", 0.1, {"V14", "V17", "V12"}),
    ],
)
def test_drift_scenarios_are_detected_on_the_features_they_move(
    scenario: str, fraud_rate: float, moved: set[str]
) -> None:
    simulator = TransactionSimulator(seed=3, fraud_rate=fraud_rate)
    reference = simulator.sample(5_000)
    window = simulator.sample(5_000, drift=Drift.scenario(scenario))
    report = detect_drift(reference, window)
    assert report.dataset_drift
    assert moved <= set(report.drifted_features)
    assert report.n_drifted == len(report.drifted_features)
    assert report.share_drifted == pytest.approx(report.n_drifted / len(FEATURE_COLUMNS))


def test_fraud_rate_change_shows_in_the_scores_not_the_features() -> None:
    # At the real 0.17 % prior a threefold fraud wave changes 0.3 % of the rows: invisible
    # to per-feature tests (Class is never tested), plain in the expected fraud count (mean
    # score) of a calibrated model fitted before the wave.
    simulator = TransactionSimulator(seed=5)
    model = OracleModel(simulator)
    reference = simulator.sample(20_000)
    window = simulator.sample(20_000, drift=Drift.scenario("fraud_rate_change"))
    assert not detect_drift(reference, window).dataset_drift
    scores = [model.predict_proba(frame)[:, 1] for frame in (reference, window)]
    prediction = detect_prediction_drift(*scores)
    assert prediction.drifted
    assert prediction.ks_p_value > prediction.alpha / 2  # the shape test alone misses it
    assert prediction.mean_p_value <= prediction.alpha / 2
    assert prediction.mean_ratio > 2
    assert prediction.alert_rate_current > 2 * prediction.alert_rate_reference


def test_time_and_class_are_never_tested() -> None:
    simulator = TransactionSimulator(seed=2)
    reference = simulator.sample(1_000)
    window = simulator.sample(1_000)
    window[LABEL_COLUMN] = 1  # a label shift as blatant as it gets
    report = detect_drift(reference, window)
    assert report.features["feature"].tolist() == FEATURE_COLUMNS
    assert not report.dataset_drift  # Time moved by a whole window, Class flipped
    for column in (TIME_COLUMN, LABEL_COLUMN):
        with pytest.raises(DataValidationError, match=column):
            detect_drift(reference, window, features=["V1", column])


def test_report_table_and_summary() -> None:
    rng = np.random.default_rng(0)
    reference = normal_frame(rng, 3_000)
    window = normal_frame(rng, 3_000, {"x1": 0.3})
    report = detect_drift(reference, window, features=list(reference.columns))
    table = report.features
    assert list(table.columns) == [
        *("feature", "test", "statistic", "p_value", "p_value_adjusted", "effect", "threshold"),
        *("drifted", "unseen", "unseen_categories"),
    ]
    assert (table["unseen"] == 0).all()
    assert table["test"].eq("ks").all()
    assert (table["effect"] == table["statistic"]).all()
    assert (table["p_value_adjusted"] >= table["p_value"]).all()
    assert report.drifted_features == ["x1"]
    assert report.to_dict() == {
        "data_drift": 1,
        "share_drifted": pytest.approx(0.2),
        "n_drifted": 1,
        "n_features_tested": 5,
        "max_feature_ks": pytest.approx(table["statistic"].max()),
    }


def test_holm_is_never_less_conservative_than_benjamini_hochberg() -> None:
    rng = np.random.default_rng(1)
    reference = normal_frame(rng, 2_000)
    window = normal_frame(rng, 2_000, {"x0": 0.15, "x1": 0.12, "x2": 0.1})
    columns = list(reference.columns)
    bh = detect_drift(reference, window, features=columns)
    holm = detect_drift(reference, window, features=columns, correction="holm")
    assert (holm.features["p_value_adjusted"] >= bh.features["p_value_adjusted"]).all()
    assert holm.n_drifted <= bh.n_drifted
    assert bh.dataset_drift and holm.dataset_drift


def test_few_valued_columns_use_chi_square() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"channel": rng.choice(4, 2_000, p=[0.4, 0.3, 0.2, 0.1])})
    same = pd.DataFrame({"channel": rng.choice(4, 2_000, p=[0.4, 0.3, 0.2, 0.1])})
    moved = pd.DataFrame({"channel": rng.choice(4, 2_000, p=[0.3, 0.3, 0.2, 0.2])})
    assert detect_drift(reference, moved, features=["channel"]).features["test"].item() == "chi2"
    assert detect_drift(reference, moved, features=["channel"]).dataset_drift
    assert not detect_drift(reference, same, features=["channel"]).dataset_drift


@pytest.mark.parametrize(("method", "cutoff"), [("psi", 0.2), ("wasserstein", 0.1)])
def test_effect_size_methods(method: str, cutoff: float) -> None:
    rng = np.random.default_rng(5)
    reference = normal_frame(rng, 3_000)
    window = normal_frame(rng, 3_000, {"x3": 1.0})
    report = detect_drift(reference, window, features=list(reference.columns), method=method)
    table = report.features
    assert report.drifted_features == ["x3"]
    assert table["test"].eq(method).all()
    assert table["p_value"].isna().all()
    assert table["threshold"].eq(cutoff).all()
    stricter = detect_drift(
        reference, window, features=list(reference.columns), method=method, threshold=100.0
    )
    assert not stricter.dataset_drift


def test_min_effect_ignores_significant_but_tiny_shifts() -> None:
    rng = np.random.default_rng(6)
    reference = normal_frame(rng, 100_000)
    window = normal_frame(rng, 100_000, {"x0": 0.05})  # KS distance ~0.02
    plain = detect_drift(reference, window, features=["x0", "x1"])
    guarded = detect_drift(reference, window, features=["x0", "x1"], min_effect=0.05)
    assert plain.drifted_features == ["x0"]
    assert not guarded.dataset_drift


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda ref, cur: (ref, cur.iloc[: MIN_ROWS - 1]), "current has 29 rows"),
        (lambda ref, cur: (ref.iloc[:0], cur), "reference has 0 rows"),
        (lambda ref, cur: (ref[["x0"]], cur[["x0"]]), "none of the feature columns"),
        (lambda ref, cur: (ref, cur.values), "DataFrame"),
    ],
)
def test_bad_frames_are_rejected(change, match: str) -> None:
    rng = np.random.default_rng(7)
    reference, current = change(normal_frame(rng, 100), normal_frame(rng, 100))
    with pytest.raises(DataValidationError, match=match):
        detect_drift(reference, current)


def test_bad_features_are_rejected() -> None:
    rng = np.random.default_rng(8)
    reference, current = normal_frame(rng, 100), normal_frame(rng, 100)
    with pytest.raises(DataValidationError, match="'V99' is not a column of reference"):
        detect_drift(reference, current, features=["x0", "V99"])
    current["label"] = "a"
    reference["label"] = "b"
    with pytest.raises(DataValidationError, match=r"'label'.*numeric"):
        detect_drift(reference, current, features=["label"])
    current.loc[5, "x0"] = np.nan
    with pytest.raises(DataValidationError, match="'x0' of current has 1 missing"):
        detect_drift(reference, current, features=["x0"])
    with pytest.raises(DataValidationError, match="features is empty"):
        detect_drift(reference, current, features=[])


def test_drop_missing_tests_only_the_values_present() -> None:
    rng = np.random.default_rng(9)
    reference, current = normal_frame(rng, 400), normal_frame(rng, 400)
    # A card's first transaction has no time since its previous one: empty, not drifted.
    reference.loc[:99, "x0"] = np.nan
    current.loc[:9, "x0"] = np.nan
    kept = detect_drift(reference, current, features=["x0"], drop_missing=True)
    expected = detect_drift(
        reference[reference["x0"].notna()],
        current[current["x0"].notna()],
        features=["x0"],
    )
    pd.testing.assert_frame_equal(kept.features, expected.features)
    current.loc[10:, "x0"] += 3.0  # the values present moved: that is drift
    assert detect_drift(reference, current, features=["x0"], drop_missing=True).dataset_drift
    # A column with (almost) no values is left untested; it hides no other column's drift.
    reference["empty"], current["empty"] = np.nan, np.nan
    both = detect_drift(reference, current, features=["x0", "empty"], drop_missing=True)
    table = both.features.set_index("feature")
    assert table.loc["x0", "drifted"] and not table.loc["empty", "drifted"]
    assert table.loc["empty", "test"] == "too few values"
    assert np.isnan(table.loc["empty", "p_value_adjusted"])
    current.loc[10, "x0"] = np.inf  # an infinity is still refused
    with pytest.raises(DataValidationError, match="'x0' of current has 1 missing or infinite"):
        detect_drift(reference, current, features=["x0"], drop_missing=True)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"method": "energy"}, "unknown drift method"),
        ({"correction": "bonferroni"}, "unknown correction"),
        ({"alpha": 1.5}, "alpha"),
        ({"threshold": 0.3}, "threshold applies to"),
        ({"min_effect": 2.0}, "min_effect"),
    ],
)
def test_bad_settings_are_rejected(options: dict, match: str) -> None:
    rng = np.random.default_rng(9)
    with pytest.raises(ConfigurationError, match=match):
        detect_drift(normal_frame(rng, 100), normal_frame(rng, 100), features=["x0"], **options)


# ------------------------------------------------------------------------ prediction drift


def test_prediction_drift_detects_shifted_scores_only() -> None:
    rng = np.random.default_rng(10)

    def scores(a: float) -> np.ndarray:
        return rng.beta(a, 20.0, 5_000)

    same = [detect_prediction_drift(scores(0.5), scores(0.5)) for _ in range(20)]
    assert sum(r.drifted for r in same) <= 3
    shifted = detect_prediction_drift(scores(0.5), scores(0.7))
    assert shifted.drifted
    assert shifted.ks_p_value < 1e-6
    assert shifted.mean_ratio == pytest.approx(0.7 / 20.7 / (0.5 / 20.5), rel=0.1)
    assert set(shifted.to_dict()) == {
        "prediction_drift",
        "prediction_ks",
        "prediction_ks_p_value",
        "prediction_mean_p_value",
        "prediction_alert_rate",
        "prediction_psi",
        "prediction_mean_ratio",
    }
    assert shifted.to_dict()["prediction_drift"] == 1


def test_base_rate_takes_the_reference_mean_at_the_long_run_fraud_rate() -> None:
    # A reference period that happened to hold twice the long-run fraud rate: ordinary
    # traffic then looks like a fraud drought against its own mean, not against the mean
    # at the long-run rate.
    lucky = TransactionSimulator(seed=21, fraud_rate=0.006).sample(20_000)
    simulator = TransactionSimulator(seed=22, fraud_rate=0.003)
    model = OracleModel(simulator)
    reference_scores = model.predict_proba(lucky)[:, 1]
    quiet = plain = 0
    for _ in range(10):
        scores = model.predict_proba(simulator.sample(20_000))[:, 1]
        plain += detect_prediction_drift(reference_scores, scores).drifted
        quiet += detect_prediction_drift(
            reference_scores,
            scores,
            reference_labels=lucky[LABEL_COLUMN],
            base_rate=(600, 200_000),
        ).drifted
    assert plain >= 8 and quiet <= 2
    # A real change of the fraud rate still shows at the long-run rate.
    wave = model.predict_proba(TransactionSimulator(seed=23, fraud_rate=0.009).sample(20_000))
    weighted = detect_prediction_drift(
        reference_scores, wave[:, 1], reference_labels=lucky[LABEL_COLUMN], base_rate=(600, 200_000)
    )
    assert weighted.drifted and weighted.mean_ratio == pytest.approx(3.0, rel=0.25)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"base_rate": (3, 100)}, "base_rate needs reference_labels"),
        ({"base_rate": (300, 100), "reference_labels": np.zeros(100)}, "0 <= frauds <= rows"),
        ({"base_rate": "3%", "reference_labels": np.zeros(100)}, "base_rate must be"),
        ({"base_rate": (3, 100), "reference_labels": np.zeros(100)}, "at least 2 of each"),
    ],
)
def test_base_rate_is_checked(options: dict, match: str) -> None:
    scores = np.linspace(0, 1, 100)
    with pytest.raises(DataValidationError, match=match):
        detect_prediction_drift(scores, scores, **options)


def test_prediction_drift_rejects_bad_scores() -> None:
    with pytest.raises(DataValidationError, match="at least 30"):
        detect_prediction_drift(np.zeros(10), np.zeros(100))
    with pytest.raises(DataValidationError, match="row 3"):
        detect_prediction_drift(np.zeros(100), np.r_[np.zeros(3), np.inf, np.zeros(96)])


# ----------------------------------------------------------------- label-free performance


def _categories(rng: np.random.Generator, n: int, shares: np.ndarray) -> pd.Series:
    """Merchant categories: a few common ones and a long tail of rare ones."""
    names = np.array([f"mcc{i:02d}" for i in range(len(shares))])
    return pd.Series(rng.choice(names, size=n, p=shares / shares.sum()))


def test_categorical_columns_rarely_alarm_when_nothing_changed() -> None:
    """200 undrifted windows of two categorical columns (8 common categories and a tail of
    30 rare ones, which share one cell) beside two numeric ones: the dataset alarm rate
    stays at alpha, within sampling error (standard error 0.015)."""
    rng = np.random.default_rng(11)
    shares = np.concatenate([np.geomspace(1, 0.05, 8), np.full(30, 0.002)])
    alarms = 0
    for _ in range(200):
        reference, window = (
            normal_frame(rng, 2_000).assign(
                mcc=_categories(rng, 2_000, shares), channel=_categories(rng, 2_000, shares[:3])
            )
            for _ in range(2)
        )
        report = detect_drift(
            reference, window, features=["x1", "x2"], categorical=["mcc", "channel"]
        )
        alarms += report.dataset_drift
    assert alarms / 200 <= 0.05 + 2 * 0.015


def test_a_shifted_or_new_category_is_caught_counted_and_named() -> None:
    rng = np.random.default_rng(12)
    shares = np.geomspace(1, 0.05, 8)
    reference = pd.DataFrame({"mcc": _categories(rng, 3_000, shares)})
    shifted = pd.DataFrame({"mcc": _categories(rng, 3_000, shares[::-1])})
    report = detect_drift(reference, shifted, categorical=["mcc"])
    row = report.features.iloc[0]
    assert report.dataset_drift and row["test"] == "chi2" and row["effect"] > 0.3
    new = pd.DataFrame({"mcc": _categories(rng, 3_000, shares)})
    new.loc[:399, "mcc"] = "gambling"
    new.loc[400:409, "mcc"] = None
    row = detect_drift(reference, new, categorical=["mcc"]).features.iloc[0]
    assert row["drifted"]
    assert row["unseen"] == 410
    assert row["unseen_categories"] == "gambling, (missing)"
    with pytest.raises(DataValidationError, match="categorical column 'country'"):
        detect_drift(reference, new, categorical=["country"])


def test_categorical_columns_are_held_to_alpha_beside_psi() -> None:
    rng = np.random.default_rng(13)
    shares = np.geomspace(1, 0.05, 8)
    reference = normal_frame(rng, 2_000).assign(mcc=_categories(rng, 2_000, shares))
    window = normal_frame(rng, 2_000).assign(mcc=_categories(rng, 2_000, shares[::-1]))
    table = detect_drift(
        reference, window, features=["x1"], categorical=["mcc"], method="psi"
    ).features.set_index("feature")
    assert table.loc["x1", "test"] == "psi" and not table.loc["x1", "drifted"]
    assert table.loc["mcc", "threshold"] == 0.05 and table.loc["mcc", "drifted"]
