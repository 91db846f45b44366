from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudkit.data import (
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    TIME_COLUMN,
    Drift,
    TransactionSimulator,
    time_split,
)
from fraudkit.exceptions import ConfigurationError, DataValidationError, SmallSampleWarning
from fraudkit.metrics import evaluate
from fraudkit.models import choose_threshold, predict_scores, train_model
from fraudkit.monitoring import (
    MIN_ROWS,
    MonitoringAlert,
    WindowReport,
    detect_drift,
    detect_prediction_drift,
    estimate_performance,
    evaluate_alerts,
    monitor_window,
    summarise_alerts,
)


@dataclass
class OracleModel:
    """The simulator's exact posterior, fitted before any drift: a calibrated model."""

    simulator: TransactionSimulator

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        p = self.simulator.fraud_probability(df)
        return np.column_stack([1 - p, p])


def _normal_frame(rng: np.random.Generator, n: int, shifts: dict[str, float] | None = None):
    """Independent standard-normal columns x0..x4 (cheap data for the statistics)."""
    frame = pd.DataFrame(rng.standard_normal((n, 5)), columns=[f"x{i}" for i in range(5)])
    for column, shift in (shifts or {}).items():
        frame[column] += shift
    return frame


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
    reference = _normal_frame(rng, 3_000)
    window = _normal_frame(rng, 3_000, {"x1": 0.3})
    report = detect_drift(reference, window, features=list(reference.columns))
    table = report.features
    assert list(table.columns) == [
        *("feature", "test", "statistic", "p_value", "p_value_adjusted", "effect", "threshold"),
        "drifted",
    ]
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
    reference = _normal_frame(rng, 2_000)
    window = _normal_frame(rng, 2_000, {"x0": 0.15, "x1": 0.12, "x2": 0.1})
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
    reference = _normal_frame(rng, 3_000)
    window = _normal_frame(rng, 3_000, {"x3": 1.0})
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
    reference = _normal_frame(rng, 100_000)
    window = _normal_frame(rng, 100_000, {"x0": 0.05})  # KS distance ~0.02
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
    reference, current = change(_normal_frame(rng, 100), _normal_frame(rng, 100))
    with pytest.raises(DataValidationError, match=match):
        detect_drift(reference, current)


def test_bad_features_are_rejected() -> None:
    rng = np.random.default_rng(8)
    reference, current = _normal_frame(rng, 100), _normal_frame(rng, 100)
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
        detect_drift(_normal_frame(rng, 100), _normal_frame(rng, 100), features=["x0"], **options)


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


def test_prediction_drift_rejects_bad_scores() -> None:
    with pytest.raises(DataValidationError, match="at least 30"):
        detect_prediction_drift(np.zeros(10), np.zeros(100))
    with pytest.raises(DataValidationError, match="row 3"):
        detect_prediction_drift(np.zeros(100), np.r_[np.zeros(3), np.inf, np.zeros(96)])


# ----------------------------------------------------------------- label-free performance


def test_estimate_matches_realised_metrics_for_calibrated_scores() -> None:
    simulator = TransactionSimulator(seed=12, fraud_rate=0.02)
    window = simulator.sample(20_000)
    scores = simulator.fraud_probability(window)  # calibrated by construction
    realised = evaluate(window[LABEL_COLUMN], scores)
    estimated = estimate_performance(scores)
    tolerances = {
        "average_precision": 0.03,
        "roc_auc": 0.01,
        "fraud_precision": 0.03,
        "fraud_recall": 0.05,
        "fraud_f1": 0.04,
        "accuracy": 0.002,
    }
    for metric, tolerance in tolerances.items():
        assert estimated[f"estimated_{metric}"] == pytest.approx(realised[metric], abs=tolerance)
    assert estimated["estimated_fraud_rate"] == pytest.approx(realised["fraud_rate"], rel=0.15)
    assert estimated["n_alerts"] == realised["n_alerts"]


def test_estimate_is_the_mean_over_label_draws() -> None:
    rng = np.random.default_rng(13)
    scores = np.round(rng.beta(0.4, 6.0, 1_500), 2)  # rounded: many tied scores
    draws = [rng.random(scores.size) < scores for _ in range(200)]
    estimated = estimate_performance(scores, threshold=0.3, n_samples=400)
    alerts = scores >= 0.3
    realised = {
        "average_precision": [average_precision_score(y, scores) for y in draws],
        "roc_auc": [roc_auc_score(y, scores) for y in draws],
        "fraud_recall": [y[alerts].sum() / y.sum() for y in draws],
    }
    for metric, values in realised.items():
        # Both sides are Monte-Carlo means: allow four standard errors of their difference.
        tolerance = 4 * np.std(values) * math.sqrt(1 / 400 + 1 / len(draws))
        assert estimated[f"estimated_{metric}"] == pytest.approx(np.mean(values), abs=tolerance)
    assert estimated["estimated_fraud_precision"] == pytest.approx(scores[alerts].mean())
    assert estimate_performance(scores, threshold=0.3, n_samples=400) == estimated


def test_estimate_rejects_non_probabilities() -> None:
    with pytest.raises(DataValidationError, match=r"probabilities in \[0, 1\]; row 0"):
        estimate_performance(np.r_[1.5, np.zeros(50)])
    with pytest.raises(ConfigurationError, match="n_samples"):
        estimate_performance(np.zeros(50), n_samples=0)
    with pytest.raises(ConfigurationError, match="confidence"):
        estimate_performance(np.zeros(50), confidence=1.0)
    with pytest.raises(DataValidationError, match="y_true has 49 values but scores has 50"):
        estimate_performance(np.zeros(50), labels=np.zeros(49))
    with pytest.raises(DataValidationError, match="y_true must hold only 0"):
        estimate_performance(np.zeros(50), labels=np.full(50, 2))


INTERVAL_METRICS = ("average_precision", "roc_auc", "fraud_precision", "fraud_recall", "n_fraud")


def test_intervals_are_ordered_and_hold_the_estimate() -> None:
    rng = np.random.default_rng(17)
    scores = rng.beta(0.3, 15.0, 5_000)
    wide = estimate_performance(scores, threshold=0.2)
    narrow = estimate_performance(scores, threshold=0.2, confidence=0.5)
    assert wide["confidence"] == 0.9
    for metric in INTERVAL_METRICS:
        key = f"estimated_{metric}"
        assert wide[f"{key}_lower"] < wide[key] < wide[f"{key}_upper"], metric
        assert wide[f"{key}_lower"] <= narrow[f"{key}_lower"] < narrow[f"{key}_upper"]
        assert narrow[f"{key}_upper"] <= wide[f"{key}_upper"]
    # The fraud count is Poisson-binomial: its 90 % range is about +-1.645 sd.
    sd = math.sqrt(np.sum(scores * (1 - scores)))
    width = wide["estimated_n_fraud_upper"] - wide["estimated_n_fraud_lower"]
    assert width == pytest.approx(2 * 1.645 * sd, rel=0.2)
    # Two alerts of probability 0.97: the draws are lumpy (the 5 % quantile of precision is
    # already 1), so the interval is widened to hold the expectation.
    lumpy = estimate_performance(np.r_[0.97, 0.97, np.full(98, 0.001)], threshold=0.5)
    assert lumpy["estimated_fraud_precision"] == pytest.approx(0.97)
    assert lumpy["estimated_fraud_precision_lower"] <= 0.97 <= 1.0
    assert lumpy["estimated_fraud_precision_upper"] == 1.0


def test_intervals_cover_the_realised_metrics_of_calibrated_scores() -> None:
    # Labels drawn from the scores themselves: the scores are calibrated by construction,
    # so 90 % intervals should hold about 90 % of the realised metrics.
    rng = np.random.default_rng(18)
    covered = {metric: [] for metric in INTERVAL_METRICS}
    errors = []
    for _ in range(60):
        scores = rng.beta(0.3, 15.0, 4_000)
        labels = rng.random(scores.size) < scores
        realised = evaluate(labels, scores, threshold=0.2)
        estimate = estimate_performance(scores, threshold=0.2, n_samples=100)
        for metric, hits in covered.items():
            value = realised[metric]
            lower, upper = (estimate[f"estimated_{metric}_{end}"] for end in ("lower", "upper"))
            hits.append(lower <= value <= upper)
        errors.append(estimate["estimated_average_precision"] - realised["average_precision"])
    for metric, hits in covered.items():
        # 60 windows: a binomial(60, 0.9) count of hits lies in [47, 58] with 98 % chance.
        assert 47 <= sum(hits) <= 58, metric
    assert abs(np.mean(errors)) < 3 * np.std(errors) / math.sqrt(len(errors))


def test_estimate_is_unreliable_when_labels_contradict_the_scores() -> None:
    rng = np.random.default_rng(19)
    scores = rng.beta(0.3, 15.0, 10_000)  # ~200 expected frauds
    honest = estimate_performance(scores, labels=rng.random(scores.size) < scores)
    assert honest["reliable"]
    assert honest["reliability_note"] == "no drift (fraud count checked)"
    doubled = estimate_performance(scores, labels=rng.random(scores.size) < 2 * scores)
    assert not doubled["reliable"]
    assert "frauds arrived where the scores expect" in doubled["reliability_note"]
    unchecked = estimate_performance(scores)
    assert unchecked["reliable"] and unchecked["reliability_note"].startswith("not checked")


# ------------------------------------------------------------------------------- windows


@pytest.fixture(scope="module")
def labelled_windows() -> dict[str, pd.DataFrame]:
    simulator = TransactionSimulator(seed=14, fraud_rate=0.02)
    return {
        "reference": simulator.sample(10_000),
        "same": simulator.sample(10_000),
        "new_pattern": simulator.sample(10_000, drift=Drift.scenario("new_fraud_pattern")),
        "simulator": simulator,
    }


def test_monitor_window_uses_labels_when_they_have_arrived(labelled_windows) -> None:
    model = OracleModel(labelled_windows["simulator"])
    reference, window = labelled_windows["reference"], labelled_windows["same"]
    report = monitor_window(model, reference, window)
    assert report.labels_used
    assert report.metrics == evaluate(
        window[LABEL_COLUMN],
        model.predict_proba(window)[:, 1],
        threshold=0.5,
        amount=window["Amount"],
    )
    assert not report.drift.dataset_drift and not report.prediction_drift.drifted
    flat = report.to_dict()
    assert {"data_drift", "share_drifted", "prediction_drift", "prediction_ks"} <= set(flat)
    assert flat["average_precision"] == report.metrics["average_precision"]
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat.values())


@pytest.mark.parametrize("drop_labels", ["flag", "column"])
def test_monitor_window_estimates_without_labels(labelled_windows, drop_labels: str) -> None:
    model = OracleModel(labelled_windows["simulator"])
    reference, window = labelled_windows["reference"], labelled_windows["same"]
    if drop_labels == "column":
        window = window.drop(columns=[LABEL_COLUMN])
    reference_scores = model.predict_proba(reference)[:, 1]
    report = monitor_window(
        model,
        reference,
        window,
        labels_available=drop_labels == "column",
        reference_scores=reference_scores,
    )
    assert not report.labels_used
    assert "average_precision" not in report.metrics
    assert report.metrics["estimated_average_precision"] > 0.8
    assert report.to_dict()["labels_used"] == 0


def test_new_fraud_pattern_recommends_retraining(labelled_windows) -> None:
    # Half of the fraud moves where the model never saw fraud: the features barely move
    # (2 % fraud), but average precision collapses once labels arrive.
    model = OracleModel(labelled_windows["simulator"])
    reference = labelled_windows["reference"]
    baseline = monitor_window(model, reference, labelled_windows["same"]).metrics
    report = monitor_window(model, reference, labelled_windows["new_pattern"])
    alert = evaluate_alerts(report, baseline_metrics=baseline, tolerance=0.1)
    assert alert.performance_drop and alert.retraining_recommended
    assert "performance_drop" in alert.rules_fired
    assert alert.details["relative_drop"] > 0.25


def test_every_window_gets_the_estimate_and_labels_add_realised_metrics(
    labelled_windows,
) -> None:
    model = OracleModel(labelled_windows["simulator"])
    reference, window = labelled_windows["reference"], labelled_windows["same"]
    reference_scores = model.predict_proba(reference)[:, 1]
    report = monitor_window(model, reference, window, reference_scores=reference_scores)
    assert report.labels_used and report.metrics is report.realised
    assert report.estimate["reliable"], report.estimate["reliability_note"]
    assert report.estimate["reliability_note"] == (
        "no drift (features, scores, fraud count checked)"
    )
    assert report.warnings == ()
    flat = report.to_dict()
    assert flat["average_precision"] == report.realised["average_precision"]
    assert flat["estimated_average_precision"] == report.estimate["estimated_average_precision"]
    assert flat["estimated_n_fraud_upper"] > flat["estimated_n_fraud"]
    assert flat["estimate_reliable"] == 1 and flat["n_warnings"] == 0
    realised, estimated = report.realised["n_fraud"], report.estimate["estimated_n_fraud"]
    assert estimated == pytest.approx(realised, rel=0.2)


def test_new_fraud_pattern_makes_the_estimate_unreliable(labelled_windows) -> None:
    # The label-free estimate assumes the score-to-probability map of the reference; half
    # of the fraud now sits where the model has never seen fraud and scores it legitimate.
    model = OracleModel(labelled_windows["simulator"])
    reference = labelled_windows["reference"]
    reference_scores = model.predict_proba(reference)[:, 1]
    report = monitor_window(
        model,
        reference,
        labelled_windows["new_pattern"],
        labels_available=False,
        reference_scores=reference_scores,
    )
    assert not report.labels_used and report.metrics is report.estimate
    assert not report.estimate["reliable"]
    assert "scores drifted (expected frauds x0." in report.estimate["reliability_note"]
    assert report.warnings == (
        "the label-free estimate judging this window is unreliable: "
        + report.estimate["reliability_note"],
    )
    assert report.to_dict()["estimate_reliable"] == 0


def test_a_window_with_few_frauds_warns() -> None:
    simulator = TransactionSimulator(seed=20)
    model = OracleModel(simulator)
    reference, window = simulator.sample(5_000), simulator.sample(2_000)
    with pytest.warns(SmallSampleWarning, match="the window holds only"):
        report = monitor_window(model, reference, window)
    assert len(report.warnings) == 1
    assert f"holds only {report.realised['n_fraud']} fraud" in report.warnings[0]
    assert report.to_dict()["n_warnings"] == 1
    with pytest.warns(SmallSampleWarning, match="frauds expected from its scores"):
        unlabelled = monitor_window(model, reference, window, labels_available=False)
    assert "frauds expected from its scores" in unlabelled.warnings[0]


def test_monitor_window_rejects_scores_and_drift_of_other_frames(labelled_windows) -> None:
    model = OracleModel(labelled_windows["simulator"])
    reference, window = labelled_windows["reference"], labelled_windows["same"]
    with pytest.raises(DataValidationError, match="reference_scores has 100 values"):
        monitor_window(model, reference, window, reference_scores=np.zeros(100))
    other = detect_drift(reference, window.iloc[:500])
    with pytest.raises(DataValidationError, match="DriftReport of this window"):
        monitor_window(model, reference, window, drift=other)


def test_alert_rules_rarely_fire_on_undrifted_windows() -> None:
    # The training recipe in small: calibrated on the validation period, threshold for
    # precision 0.8, the test period (never trained on) as reference and baseline. Each rule
    # is a level-0.05 test (performance: a significant drop of more than 25 %), about 2 of
    # 40 windows. The rate holds on average over references; one fixed reference shifts it
    # (a reference whose V12 happens to be odd makes every window look drifted on V12), the
    # less the larger it is against the window: here 20,000 rows against 5,000.
    simulator = TransactionSimulator(seed=21, fraud_rate=0.01)
    split = time_split(simulator.sample(100_000))
    model = train_model(split.train, "logistic_regression", calibration_df=split.validation)
    validation_scores = predict_scores(model, split.validation)
    threshold = choose_threshold(
        split.validation[LABEL_COLUMN], validation_scores, rule="precision", target=0.8
    ).threshold
    test_scores = predict_scores(model, split.test)
    baseline = evaluate(split.test[LABEL_COLUMN], test_scores, threshold=threshold)
    alerts = []
    for window in simulator.sample_windows(40, 5_000):
        report = monitor_window(
            model, split.test, window, threshold=threshold, reference_scores=test_scores
        )
        alerts.append(evaluate_alerts(report, baseline_metrics=baseline, tolerance=0.25))
    summary = summarise_alerts(alerts)
    for rule in ("data_drift", "prediction_drift", "performance_drop"):
        assert len(summary[f"{rule}_windows"]) <= 5, rule  # P(>= 6) = 0.014 at binomial(40, 0.05)
    assert len(summary["retraining_windows"]) <= 2


def test_monitor_window_scores_a_trained_pipeline() -> None:
    simulator = TransactionSimulator(seed=15, fraud_rate=0.02)
    model = train_model(simulator.sample(5_000), model_type="logistic_regression")
    reference = simulator.sample(2_000)
    window = simulator.sample(2_000, drift=Drift.scenario("covariate_shift"))
    report = monitor_window(model, reference, window)
    assert report.drift.dataset_drift
    assert {"V1", "V2", "V14"} <= set(report.drift.drifted_features)
    assert 0.0 <= report.metrics["average_precision"] <= 1.0


# -------------------------------------------------------------------------------- alerts


@pytest.fixture(scope="module")
def parts() -> dict[str, object]:
    rng = np.random.default_rng(16)
    reference, columns = _normal_frame(rng, 1_000), [f"x{i}" for i in range(5)]
    scores = rng.beta(0.5, 20.0, 1_000)
    return {
        "quiet": detect_drift(reference, _normal_frame(rng, 1_000), features=columns),
        "drift": detect_drift(reference, _normal_frame(rng, 1_000, {"x2": 1}), features=columns),
        "steady": detect_prediction_drift(scores, rng.beta(0.5, 20.0, 1_000)),
        "moved": detect_prediction_drift(scores, rng.beta(2.0, 20.0, 1_000)),
    }


def _report(parts, drift: str, prediction: str, **metrics: float) -> WindowReport:
    """A report judged on ``metrics``: realised ones, or estimated_* when so named."""
    estimated = any(key.startswith("estimated_") for key in metrics)
    estimate = {"reliable": True, "reliability_note": "no drift"}
    if estimated:
        estimate |= {"estimated_n_fraud": 50.0, **metrics}
    realised = None if estimated else {"n_fraud": 50, **metrics}
    return WindowReport(parts[drift], parts[prediction], estimate, realised)


BASELINE = {"average_precision": 0.8, "n_fraud": 50}


def test_quiet_window_fires_nothing(parts) -> None:
    alert = evaluate_alerts(
        _report(parts, "quiet", "steady", average_precision=0.78), baseline_metrics=BASELINE
    )
    assert alert.rules_fired == ()
    assert not alert.retraining_recommended
    assert alert.to_dict() == {
        "alert_data_drift": 0,
        "alert_prediction_drift": 0,
        "alert_performance_drop": 0,
        "retraining_recommended": 0,
    }


def test_drift_alone_alerts_but_drift_with_score_drift_recommends_retraining(parts) -> None:
    data_only = evaluate_alerts(_report(parts, "drift", "steady"))
    assert data_only.rules_fired == ("data_drift",)
    assert not data_only.retraining_recommended
    assert data_only.details["drifted_features"] == ["x2"]
    both = evaluate_alerts(_report(parts, "drift", "moved"))
    assert both.rules_fired == ("data_drift", "prediction_drift")
    assert both.retraining_recommended


@pytest.mark.parametrize(
    ("window_value", "dropped"), [(0.6, True), (0.75, False), (math.nan, False)]
)
def test_performance_drop_is_relative_to_the_baseline(
    parts, window_value: float, dropped: bool
) -> None:
    alert = evaluate_alerts(
        _report(parts, "quiet", "steady", estimated_average_precision=window_value),
        baseline_metrics=BASELINE,
        tolerance=0.1,
    )
    assert alert.performance_drop is dropped
    assert alert.retraining_recommended is dropped
    assert alert.details["baseline_value"] == 0.8
    assert alert.details["window_n"] == 50.0  # estimated_n_fraud: the frauds it rests on


def test_performance_drop_must_be_more_than_noise(parts) -> None:
    # A 31 % drop of average precision: noise on 10 frauds a side (z = 1.2), a collapse on
    # 500 (z = 8.7). The relative tolerance alone would fire on both.
    def alert(n_fraud: int) -> MonitoringAlert:
        report = _report(parts, "quiet", "steady", average_precision=0.55)
        report.realised["n_fraud"] = n_fraud
        baseline = {"average_precision": 0.8, "n_fraud": n_fraud}
        return evaluate_alerts(report, baseline_metrics=baseline, tolerance=0.25)

    few, many = alert(10), alert(500)
    assert few.details["relative_drop"] == many.details["relative_drop"] > 0.25
    assert not few.performance_drop and few.details["drop_p_value"] > 0.05
    assert many.performance_drop and many.details["drop_p_value"] < 1e-6
    precision = _report(parts, "quiet", "steady", fraud_precision=0.5)
    precision.realised["n_alerts"] = 40
    numbers = evaluate_alerts(
        precision,
        baseline_metrics={"fraud_precision": 0.9, "n_alerts": 60},
        metric="fraud_precision",
    ).details
    assert (numbers["window_n"], numbers["baseline_n"]) == (40, 60)  # precision rests on alerts


def test_registry_degradation_counts_as_a_performance_drop(parts) -> None:
    report = _report(parts, "quiet", "steady", average_precision=0.8)
    alert = evaluate_alerts(report, degradation=SimpleNamespace(degraded=True))
    assert alert.rules_fired == ("registry_degradation",)
    assert alert.performance_drop and alert.retraining_recommended
    assert not evaluate_alerts(report, degradation=SimpleNamespace(degraded=False)).rules_fired
    with pytest.raises(TypeError, match="degraded"):
        evaluate_alerts(report, degradation=object())


def test_alert_settings_are_checked(parts) -> None:
    report = _report(parts, "quiet", "steady", average_precision=0.7)
    with pytest.raises(ConfigurationError, match="'precision' is not among the window"):
        evaluate_alerts(report, baseline_metrics={"precision": 0.8}, metric="precision")
    with pytest.raises(DataValidationError, match="positive baseline"):
        evaluate_alerts(report, baseline_metrics={"average_precision": 0.0, "n_fraud": 50})
    with pytest.raises(DataValidationError, match="baseline metrics lack 'n_fraud'"):
        evaluate_alerts(report, baseline_metrics={"average_precision": 0.8})
    with pytest.raises(ConfigurationError, match="tolerance"):
        evaluate_alerts(report, tolerance=-0.1)
    with pytest.raises(ConfigurationError, match="alpha"):
        evaluate_alerts(report, baseline_metrics=BASELINE, alpha=0.0)


def test_summarise_alerts() -> None:
    def alert(*rules: str) -> MonitoringAlert:
        drop = "performance_drop" in rules
        both = {"data_drift", "prediction_drift"} <= set(rules)
        return MonitoringAlert(
            data_drift="data_drift" in rules,
            prediction_drift="prediction_drift" in rules,
            performance_drop=drop,
            rules_fired=rules,
            retraining_recommended=drop or both,
            details={},
        )

    alerts = [alert(), alert("prediction_drift"), alert("data_drift", "prediction_drift")]
    assert summarise_alerts([*alerts, alert("performance_drop")]) == {
        "n_windows": 4,
        "data_drift_windows": [2],
        "prediction_drift_windows": [1, 2],
        "performance_drop_windows": [3],
        "retraining_windows": [2, 3],
        "first_alert_window": 1,
        "retraining_recommended": True,
    }
    quiet = summarise_alerts(alerts[:1])
    assert quiet["first_alert_window"] is None and not quiet["retraining_recommended"]
    assert summarise_alerts([]) == {
        "n_windows": 0,
        "data_drift_windows": [],
        "prediction_drift_windows": [],
        "performance_drop_windows": [],
        "retraining_windows": [],
        "first_alert_window": None,
        "retraining_recommended": False,
    }
