from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from support.oracle import OracleModel, normal_frame

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, SmallSampleWarning
from fraudkit.core.schema import LABEL_COLUMN
from fraudkit.science.data import time_split
from fraudkit.science.drift import detect_drift, detect_prediction_drift
from fraudkit.science.metrics import evaluate
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.monitoring import WindowReport, monitor_window, monitor_windows
from fraudkit.science.retraining_rules import MonitoringAlert, evaluate_alerts, summarise_alerts
from fraudkit.science.simulate import Drift, TransactionSimulator
from fraudkit.science.thresholds import choose_threshold

# ------------------------------------------------------------------------------ data drift


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


def test_a_labelled_reference_corrects_the_scores_the_estimate_reads(labelled_windows) -> None:
    oracle = OracleModel(labelled_windows["simulator"])

    class Inflated:
        """Ranks like the oracle, but its scores are far above the fraud probabilities."""

        def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
            p = oracle.predict_proba(df)[:, 1] ** 0.3
            return np.column_stack([1 - p, p])

    reference, window = labelled_windows["reference"], labelled_windows["same"]
    n_fraud = window[LABEL_COLUMN].sum()
    mapped = monitor_window(Inflated(), reference, window, labels_available=False)
    as_is = monitor_window(
        Inflated(), reference.drop(columns=LABEL_COLUMN), window, labels_available=False
    )
    assert mapped.estimate["estimated_n_fraud"] == pytest.approx(n_fraud, rel=0.15)
    assert as_is.estimate["estimated_n_fraud"] > 2 * n_fraud
    lower = mapped.estimate["estimated_n_fraud_lower"]
    assert lower < n_fraud < mapped.estimate["estimated_n_fraud_upper"]


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
    # The long-run fraud rate is the simulator's 2 %: the reference map is weighted to it.
    report = monitor_window(
        model, reference, window, reference_scores=reference_scores, base_rate=(2_000, 100_000)
    )
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


def _stretch_reports(drift: Drift | None, *, label_delay: int) -> list[WindowReport]:
    """Four 10,000-row windows at 0.5 % fraud, the newest ``label_delay`` without labels."""
    simulator = TransactionSimulator(seed=21, fraud_rate=0.005)
    model = OracleModel(simulator)
    reference = simulator.sample(40_000)
    windows = [simulator.sample(10_000, drift=drift) for _ in range(4)]
    return monitor_windows(
        model, reference, windows, label_delay=label_delay, base_rate=(1_000, 200_000)
    )


def test_monitor_windows_judges_the_newest_on_estimates_and_pools_their_scores() -> None:
    reports = _stretch_reports(None, label_delay=3)
    assert [r.labels_used for r in reports] == [True, False, False, False]
    # The first label-free window has no stretch before it; the next pool 2 and 3 windows.
    assert reports[0].stretch_drift is None and reports[1].stretch_drift is None
    assert [r.stretch_drift.n_current for r in reports[2:]] == [20_000, 30_000]
    assert not any(r.stretch_drift.drifted for r in reports[2:])
    assert "scores of the label-free stretch" in reports[3].estimate["reliability_note"]
    assert reports[3].to_dict()["stretch_prediction_drift"] == 0
    assert "stretch_prediction_drift" not in reports[0].to_dict()


def test_a_lasting_unseen_change_is_caught_by_the_label_free_stretch() -> None:
    # 30 % of the fraud moves where the oracle never saw fraud: each window's expected
    # fraud count drops by about 15 of 50, near its Poisson noise; over four windows by 60
    # of 200, and the stretch flags the estimate of the newest window.
    reports = _stretch_reports(Drift.scenario("new_fraud_pattern", 0.6), label_delay=4)
    newest = reports[-1]
    assert newest.stretch_drift is not None and newest.stretch_drift.drifted
    assert newest.stretch_drift.mean_p_value < min(r.prediction_drift.mean_p_value for r in reports)
    assert not newest.estimate["reliable"]
    assert "label-free windows up to this one" in newest.estimate["reliability_note"]


def test_monitor_windows_checks_the_label_delay() -> None:
    with pytest.raises(ConfigurationError, match="label_delay must be a whole number"):
        monitor_windows(None, pd.DataFrame(), [], label_delay=-1)


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
    reference, columns = normal_frame(rng, 1_000), [f"x{i}" for i in range(5)]
    scores = rng.beta(0.5, 20.0, 1_000)
    return {
        "quiet": detect_drift(reference, normal_frame(rng, 1_000), features=columns),
        "drift": detect_drift(reference, normal_frame(rng, 1_000, {"x2": 1}), features=columns),
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


def test_a_window_reports_card_precision_at_the_alert_budget(labelled_windows) -> None:
    # Realised once labels are in, estimated always; rows stand in for cards on Kaggle's.
    model = OracleModel(labelled_windows["simulator"])
    reference, window = labelled_windows["reference"], labelled_windows["same"]
    report = monitor_window(model, reference, window, alert_budget_k=20)
    realised, estimated = report.card_precision, report.estimated_card_precision
    assert realised is not None and estimated is not None
    assert realised.k == estimated.k == 20 and not realised.by_card
    days = (window["Time"] // 86_400).astype(int)
    scores = model.predict_proba(window)[:, 1]
    expected = [
        window[LABEL_COLUMN][days == day].to_numpy()[np.argsort(-scores[days == day])][:20].mean()
        for day in sorted(days.unique())
    ]
    assert realised.mean == pytest.approx(np.mean(expected))
    assert estimated.low <= estimated.mean <= estimated.high
    # The oracle's probabilities are the truth: the estimate lands near what happened.
    assert abs(estimated.mean - realised.mean) < 0.15
    flat = report.to_dict()
    assert flat["card_precision_at_k"] == realised.mean
    assert flat["estimated_card_precision_at_k_upper"] == estimated.high
    unlabelled = monitor_window(model, reference, window, labels_available=False)
    assert unlabelled.card_precision is None
    assert "card_precision_at_k" not in unlabelled.to_dict()
    assert "estimated_card_precision_at_k" in unlabelled.to_dict()
