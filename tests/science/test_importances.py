from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.importances import feature_importances
from fraudkit.science.models import MODEL_TYPES, train_model
from fraudkit.science.simulate import TransactionSimulator

# Features the simulator makes informative (its fraud loadings, and fraud amounts with many
# tiny card tests).
SIGNAL_FEATURES = {"V14", "V17", "V12", "V10", "V4", "V11", "V3", "V16", "V7", "V2", "V1"}
SIGNAL_FEATURES |= {"Amount"}


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and later test windows with 3 % fraud, so small frames hold enough frauds."""
    simulator = TransactionSimulator(seed=11, fraud_rate=0.03)
    return simulator.sample(4_000), simulator.sample(3_000)


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    """Tiny models: OpenMP start-up would dominate permutation importance's predictions."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_feature_importances(frames, model_type: str) -> None:
    train, test = frames
    importances = feature_importances(train_model(train, model_type), test, n_repeats=2)
    assert sorted(importances.index) == sorted(FEATURE_COLUMNS)
    assert importances.is_monotonic_decreasing
    assert set(importances.index[:3]) <= SIGNAL_FEATURES


def test_feature_importances_group_the_hour(frames) -> None:
    train, _ = frames
    model = train_model(train, "random_forest", include_hour=True, n_estimators=10)
    importances = feature_importances(model, train)
    assert "hour" in importances.index and len(importances) == len(FEATURE_COLUMNS) + 1
    assert importances.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("model_type", ["logistic_regression", "random_forest"])
def test_a_schema_models_importances_are_its_input_columns(tmp_path, model_type) -> None:
    from support.ieee import write_ieee_like

    from fraudkit.science.transactions import load_or_simulate

    path, schema = write_ieee_like(tmp_path, n_cards=1_000, days=20)
    data = load_or_simulate(path, schema, n_transactions=0, features={"windows": ["1h"]})
    split = data.split()
    model = train_model(split.train, model_type, **data.model_options)
    found = feature_importances(model, split.validation, label=data.label)
    # One-hot columns (ProductCD_W, ...) and missing-value indicators count towards the
    # column they come from: one importance per input column.
    assert sorted(found.index) == sorted(data.input_columns)
    assert (found > 0).sum() > len(found) // 2
    if model_type == "random_forest":  # impurity: the velocity the fraud shows in leads
        assert found.index[0] in data.behaviour
