"""Reasons through the calibration: exact, additive, per input column, and faithful."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from threadpoolctl import threadpool_limits

from fraudkit.core.exceptions import ModelError
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.models import MODEL_TYPES, train_model
from fraudkit.science.reasons import (
    MAX_REASONS,
    Attributions,
    ReasonExplainer,
    reason_columns,
)
from fraudkit.science.simulate import TransactionSimulator


def assert_log_odds(score: np.ndarray, probability: np.ndarray) -> None:
    """``score`` is the log-odds of ``probability``: to 1e-6 where float64 holds the log-odds
    that finely (not within 1e-9 of 0 or 1), and as a probability everywhere."""
    held = (probability > 1e-9) & (probability < 1 - 1e-9)
    assert held.mean() > 0.9
    np.testing.assert_allclose(score[held], logit(probability[held]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(expit(score), probability, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, calibration and test windows with 3 % fraud."""
    simulator = TransactionSimulator(seed=5, fraud_rate=0.03)
    return simulator.sample(5_000), simulator.sample(3_000), simulator.sample(2_000)


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_sigmoid_calibrated_reasons_add_up_to_the_probabilitys_log_odds(
    frames, model_type: str
) -> None:
    train, calibration, test = frames
    model = train_model(train, model_type, calibration_df=calibration)
    explained = ReasonExplainer(model, train).explain(test)
    assert explained.units == "log-odds"
    assert explained.features == FEATURE_COLUMNS
    assert_log_odds(explained.score, model.predict_proba(test)[:, 1])


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_isotonic_reasons_add_up_to_the_base_score_and_keep_the_ranking(
    frames, model_type: str
) -> None:
    train, calibration, test = frames
    model = train_model(train, model_type, calibration_df=calibration, calibration="isotonic")
    explainer = ReasonExplainer(model, train)
    explained = explainer.explain(test)
    assert explained.units == "base score"
    np.testing.assert_allclose(explained.score, explainer.expected_score(test), atol=1e-9)
    # The calibration is monotone: a higher base score never has a lower probability.
    order = np.argsort(explained.score, kind="stable")
    assert np.all(np.diff(model.predict_proba(test)[order, 1]) >= -1e-12)


def test_the_hours_sine_and_cosine_are_one_reason(frames) -> None:
    train, calibration, test = frames
    model = train_model(train, "random_forest", calibration_df=calibration, include_hour=True)
    explained = ReasonExplainer(model).explain(test)
    assert explained.features == [*FEATURE_COLUMNS, "hour"]
    assert np.abs(explained.contributions[:, -1]).max() > 0
    assert_log_odds(explained.score, model.predict_proba(test)[:, 1])


def test_a_logistic_model_is_explained_from_its_training_mean(frames) -> None:
    train, calibration, test = frames
    model = train_model(train, "logistic_regression", calibration_df=calibration)
    explainer = ReasonExplainer(model, train)
    # The mean transaction of the training data has no reasons at all.
    mean_row = pd.DataFrame([train[FEATURE_COLUMNS].mean()])
    mean_row["Amount"] = np.expm1(np.log1p(train["Amount"]).mean())
    assert np.abs(explainer.explain(mean_row).contributions).max() < 1e-9
    rebuilt = ReasonExplainer(model, feature_means=explainer.feature_means)
    np.testing.assert_array_equal(
        rebuilt.explain(test).contributions, explainer.explain(test).contributions
    )
    with pytest.raises(ModelError, match="reference="):
        ReasonExplainer(model)
    with pytest.raises(ModelError, match="feature_means holds 3 values"):
        ReasonExplainer(model, feature_means=[0.0, 1.0, 2.0])


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_top_reason_is_faithful(frames, model_type: str) -> None:
    """Setting the top reason's feature to its training median lowers the score."""
    train, calibration, test = frames
    model = train_model(train, model_type, calibration_df=calibration)
    alerts = test[model.predict_proba(test)[:, 1] >= 0.5]
    assert len(alerts) >= 20
    top = ReasonExplainer(model, train).reasons(alerts, 1)["reason_1"].to_numpy()
    changed = alerts.copy()
    for i, feature in enumerate(top):
        changed.iloc[i, changed.columns.get_loc(feature)] = train[feature].median()
    lowered = model.predict_proba(changed)[:, 1] < model.predict_proba(alerts)[:, 1]
    assert lowered.mean() >= 0.9


def test_top_reasons_are_the_largest_contributions_first() -> None:
    attributions = Attributions(
        features=["a", "b", "c"],
        contributions=np.array([[0.1, 0.5, -0.2], [0.0, 0.0, 0.0], [-1.0, -3.0, -2.0]]),
        base_value=-4.0,
        units="log-odds",
    )
    top = attributions.top(2)
    assert list(top.columns) == reason_columns(2)
    assert top["reason_1"].tolist() == ["b", "a", "a"]  # ties go to the first listed
    assert top["reason_2"].tolist() == ["a", "b", "c"]
    assert top["reason_1_contribution"].tolist() == [0.5, 0.0, -1.0]
    # More reasons than features: the rest are empty, never invented.
    four = attributions.top(4)
    assert four["reason_4"].isna().all() and four["reason_4_contribution"].isna().all()
    np.testing.assert_allclose(attributions.score, [-3.6, -4.0, -10.0])


@pytest.mark.parametrize("k", [-1, MAX_REASONS + 1, 2.0, True, "3"])
def test_a_bad_number_of_reasons_is_refused(k) -> None:
    attributions = Attributions(["a"], np.zeros((1, 1)), 0.0, "log-odds")
    with pytest.raises(ModelError, match=f"from 0 to {MAX_REASONS}"):
        attributions.top(k)


def test_zero_reasons_skip_the_attributions(frames) -> None:
    train, calibration, test = frames
    model = train_model(train, "hist_gradient_boosting", calibration_df=calibration)
    assert ReasonExplainer(model).reasons(test, 0).shape == (len(test), 0)


def test_what_cannot_be_explained_is_refused(frames, tmp_path) -> None:
    from sklearn.linear_model import LogisticRegression
    from support.ieee import write_ieee_like

    from fraudkit.science.transactions import load_or_simulate

    train, _, _ = frames
    bare = LogisticRegression(max_iter=5_000).fit(train[FEATURE_COLUMNS], train["Class"])
    with pytest.raises(ModelError, match="need a fraudkit model"):
        ReasonExplainer(bare)
    path, schema = write_ieee_like(tmp_path, n_cards=500, days=12)
    data = load_or_simulate(path, schema, n_transactions=0, features={"windows": ["1h"]})
    split = data.split()
    options: dict[str, Any] = {**data.model_options, "calibration": "none"}
    boosted = train_model(split.train, "hist_gradient_boosting", **options)
    with pytest.raises(ModelError, match="splits on categories natively"):
        ReasonExplainer(boosted)
    forest = train_model(split.train, "random_forest", **options)
    explained = ReasonExplainer(forest).explain(split.test)
    # One-hot columns and missing indicators are summed back to the columns they came from.
    assert set(explained.features) <= set(split.test.columns)
    assert {"ProductCD", "P_emaildomain"} <= set(explained.features)
