from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from support.oracle import OracleModel

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import LABEL_COLUMN
from fraudkit.science.estimation import (
    bootstrap_calibrations,
    estimate_performance,
    reference_calibration,
)
from fraudkit.science.metrics import evaluate
from fraudkit.science.simulate import TransactionSimulator

# ------------------------------------------------------------------------------ data drift


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


def test_scores_rank_and_probabilities_draw() -> None:
    # A model may rank by one number and have its probability mapped from it: the estimate
    # is the same as for scores that are the probabilities, whatever monotone transform.
    rng = np.random.default_rng(14)
    probabilities = rng.beta(0.4, 6.0, 2_000)
    scores = np.sqrt(probabilities)
    mapped = estimate_performance(
        scores, probabilities=probabilities, threshold=np.sqrt(0.3), n_samples=300
    )
    direct = estimate_performance(probabilities, threshold=0.3, n_samples=300)
    assert mapped == direct | {"threshold": pytest.approx(np.sqrt(0.3))}
    with pytest.raises(DataValidationError, match="one probability per scored row"):
        estimate_performance(scores, probabilities=probabilities[:-1])


def test_reference_calibration_maps_scores_to_fraud_probabilities() -> None:
    simulator = TransactionSimulator(seed=15, fraud_rate=0.01)
    reference, window = simulator.sample(30_000), simulator.sample(30_000)
    model = OracleModel(simulator)

    def inflated(frame: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(frame)[:, 1] ** 0.3  # same ranking, probabilities too high

    calibration = reference_calibration(inflated(reference), reference[LABEL_COLUMN])
    scores = inflated(window)
    n_fraud = window[LABEL_COLUMN].sum()
    assert scores.sum() > 3 * n_fraud
    assert calibration.predict(scores).sum() == pytest.approx(n_fraud, rel=0.15)
    # Weighted to a long-run rate of 0.5 %, the probabilities' odds move by the ratio of the
    # two rates' odds (Bayes' rule under a change of the fraud prior); up to the blocks the
    # weighted pooling merges differently.
    halved = reference_calibration(
        inflated(reference), reference[LABEL_COLUMN], base_rate=(5, 1_000)
    )
    observed = reference[LABEL_COLUMN].mean()
    before, after = calibration.predict(scores), halved.predict(scores)
    inside = (before > 0) & (before < 1)
    ratio = (after[inside] / (1 - after[inside])) / (before[inside] / (1 - before[inside]))
    expected = (0.005 / 0.995) / (observed / (1 - observed))
    assert np.median(ratio) == pytest.approx(expected, rel=0.01)
    assert np.mean(np.abs(ratio / expected - 1) < 0.05) > 0.95
    few = reference_calibration(inflated(reference[:1_000]), reference[LABEL_COLUMN][:1_000])
    assert few is None  # about 10 frauds: the scores are read as they are


def test_map_samples_widen_the_intervals_and_the_count_check() -> None:
    simulator = TransactionSimulator(seed=16, fraud_rate=0.01)
    reference, window = simulator.sample(20_000), simulator.sample(20_000)
    model = OracleModel(simulator)
    reference_scores = model.predict_proba(reference)[:, 1]
    scores = model.predict_proba(window)[:, 1]
    maps = bootstrap_calibrations(reference_scores, reference[LABEL_COLUMN], n_maps=10)
    assert len(maps) == 10
    samples = np.stack([fitted.predict(scores) for fitted in maps])
    assert samples.std(axis=0).max() > 0  # the resamples disagree somewhere
    plain = estimate_performance(scores, n_samples=300)
    wide = estimate_performance(scores, probability_samples=samples, n_samples=300)

    def width(estimate: dict, metric: str) -> float:
        return estimate[f"estimated_{metric}_upper"] - estimate[f"estimated_{metric}_lower"]

    for metric in ("n_fraud", "fraud_recall", "average_precision"):
        assert width(wide, metric) > width(plain, metric), metric
    # Point estimates of the closed-form metrics stay those of the probabilities given.
    assert wide["estimated_fraud_precision"] == plain["estimated_fraud_precision"]
    with pytest.raises(DataValidationError, match="probability_samples has shape"):
        estimate_performance(scores, probability_samples=samples[:, :-1])
    with pytest.raises(ConfigurationError, match="n_maps"):
        bootstrap_calibrations(reference_scores, reference[LABEL_COLUMN], n_maps=0)
    few = bootstrap_calibrations(reference_scores[:500], reference[LABEL_COLUMN][:500])
    assert few == []


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
