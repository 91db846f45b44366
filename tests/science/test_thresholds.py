"""Tests for fraudkit.science.thresholds: choosing an operating threshold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve

from fraudkit.core.exceptions import DataValidationError, ModelError
from fraudkit.science.thresholds import ThresholdChoice, choose_threshold


@pytest.fixture(scope="module")
def validation() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = (rng.random(1_500) < 0.05).astype(int)
    scores = np.round(1 / (1 + np.exp(-(rng.normal(size=y.size) + 3 * y - 3))), 3)  # ties
    amount = rng.lognormal(4, 1, size=y.size)
    return y, scores, amount


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_precision_rule_gives_most_recall_at_target(validation, target: float) -> None:
    y, s, _ = validation
    choice = choose_threshold(y, s, rule="precision", target=target)
    precision, recall, thresholds = precision_recall_curve(y, s)
    ok = precision[:-1] >= target
    assert choice.threshold == thresholds[ok].min()
    assert choice.recall == pytest.approx(recall[:-1][ok].max())
    alerts = s >= choice.threshold
    assert choice.precision == pytest.approx(y[alerts].mean()) and choice.precision >= target


@pytest.mark.parametrize("target", [0.5, 0.9])
def test_recall_rule_gives_highest_threshold_at_target(validation, target: float) -> None:
    y, s, _ = validation
    choice = choose_threshold(y, s, rule="recall", target=target)
    recalls = np.array([y[s >= t].sum() / y.sum() for t in np.unique(s)])
    assert choice.threshold == np.unique(s)[recalls >= target].max()
    assert choice.recall >= target
    assert choice.expected_cost is None and choice.target == target


def test_cost_rule_minimises_expected_cost(validation) -> None:
    y, s, amount = validation
    choice = choose_threshold(y, s, rule="cost", amount=amount, review_cost=20.0)
    candidates = np.r_[np.unique(s), np.inf]
    costs = [20.0 * (s >= t).sum() + amount[(y == 1) & (s < t)].sum() for t in candidates]
    assert choice.expected_cost == pytest.approx(min(costs))
    assert choice.threshold == candidates[int(np.argmin(costs))]
    assert choice.target is None and choice.rule == "cost"


def test_cost_rule_can_choose_no_alerts() -> None:
    choice = choose_threshold([0, 0, 1], [0.2, 0.9, 0.5], rule="cost", amount=[10, 10, 1.0])
    assert choice.threshold > 0.9 and choice.recall == 0 and choice.expected_cost == 1.0


def test_threshold_choice_errors(validation) -> None:
    y, s, _ = validation
    with pytest.raises(ModelError, match="needs the transaction amounts"):
        choose_threshold(y, s, rule="cost")
    with pytest.raises(ModelError, match="choose one of: precision, recall, cost"):
        choose_threshold(y, s, rule="f1")
    with pytest.raises(ModelError, match=r"\(0, 1\]"):
        choose_threshold(y, s, target=1.5)
    with pytest.raises(DataValidationError, match="both"):
        choose_threshold([0, 0], [0.1, 0.2])


def test_threshold_choice_is_frozen_with_to_dict(validation) -> None:
    y, s, amount = validation
    choice = choose_threshold(y, s, amount=amount, target=0.5)
    assert isinstance(choice, ThresholdChoice)
    assert set(choice.to_dict()) == {
        "threshold", "rule", "target", "precision", "recall", "expected_cost", "n_fraud",
        "fallback", "note",
    }  # fmt: skip
    assert choice.n_fraud == int(np.sum(y)) and not choice.fallback and choice.note is None
    assert choice.expected_cost is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.threshold = 0.1  # type: ignore[misc]


def test_unreachable_precision_falls_back_to_best_operating_point() -> None:
    # The best precision any threshold reaches is 0.5 (all four rows); 0.9 is out of reach.
    choice = choose_threshold([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2], target=0.9)
    assert choice.fallback and choice.threshold == 0.1
    assert choice.precision == 0.5 and choice.recall == 1.0 and choice.n_fraud == 2
    assert "no threshold reaches precision 0.9 on 2 frauds" in choice.note
    assert "best achievable operating point (precision 0.500)" in choice.note
    # Precision 0.5 at thresholds 0.8, 0.6 and 0.4: the one with the most recall wins.
    tie = choose_threshold([0, 1, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], target=0.9)
    assert tie.fallback and tie.threshold == 0.4 and tie.recall == 1.0
