from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler, StandardScaler
from threadpoolctl import threadpool_limits

from fraudkit.core.exceptions import DataValidationError, ModelError, SmallSampleWarning
from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN, TIME_COLUMN
from fraudkit.science.metrics import calibration_metrics
from fraudkit.science.models import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION,
    DEFAULT_MODEL_TYPE,
    MODEL_TYPES,
    SCALING_METHODS,
    base_model,
    build_model,
    predict_scores,
    train_model,
)
from fraudkit.science.simulate import TransactionSimulator


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and later test windows with 3 % fraud, so small frames hold enough frauds."""
    simulator = TransactionSimulator(seed=11, fraud_rate=0.03)
    return simulator.sample(4_000), simulator.sample(3_000)


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread() -> Iterator[None]:
    """Models here are tiny: OpenMP start-up, and spin-waits on a busy 2-core box, would
    dominate gradient boosting's many small predictions (permutation importance)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def trained(frames) -> dict[str, Pipeline]:
    train, _ = frames
    models = {model_type: train_model(train, model_type) for model_type in MODEL_TYPES}
    # Forest threads sum tree votes in any order; one thread makes predictions bit-exact.
    base_model(models["random_forest"]).set_params(classifier__n_jobs=1)
    return models


def test_constants() -> None:
    assert DEFAULT_MODEL_TYPE == "hist_gradient_boosting" and DEFAULT_MODEL_TYPE in MODEL_TYPES
    assert SCALING_METHODS == ("standard", "robust", "none")


@pytest.mark.parametrize(
    ("method", "expected"), [("standard", StandardScaler), ("robust", RobustScaler)]
)
def test_build_model_named_steps_and_scaling(method: str, expected: type) -> None:
    model = build_model("logistic_regression", scaling_method=method)
    assert list(model.named_steps) == ["features", "scaling", "classifier"]
    assert isinstance(model.named_steps["scaling"], expected)
    assert build_model(scaling_method="none").named_steps["scaling"] == "passthrough"


def test_build_model_params_override_defaults() -> None:
    model = build_model("random_forest", n_estimators=7, max_depth=3)
    assert model[-1].n_estimators == 7 and model[-1].max_depth == 3
    assert model[-1].class_weight == "balanced_subsample"
    assert build_model("logistic_regression")[-1].class_weight == "balanced"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model_type": "xgboost"}, "choose one of: logistic_regression, hist_gradient_boosting"),
        (
            {"model_type": "random_forest", "n_trees": 5},
            r"n_trees .*valid parameters: .*n_estimators",
        ),
        ({"scaling_method": "minmax"}, "choose one of: standard, robust, none"),
    ],
)
def test_build_model_rejects_unknown_choices(kwargs: dict, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        build_model(**kwargs)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_models_learn_and_accept_raw_frames(trained, frames, model_type: str) -> None:
    _, test = frames
    model = trained[model_type]
    with_extras = model.predict_proba(test)  # Time and Class present
    features_only = model.predict_proba(test[FEATURE_COLUMNS])
    np.testing.assert_array_equal(with_extras, features_only)
    ap = average_precision_score(test[LABEL_COLUMN], with_extras[:, 1])
    assert ap > 0.5  # chance is the 3 % fraud rate


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_raw_time_is_never_a_feature(trained, frames, model_type: str) -> None:
    _, test = frames
    shifted = test.assign(**{TIME_COLUMN: test[TIME_COLUMN] + 1e6})
    model = trained[model_type]
    np.testing.assert_array_equal(model.predict_proba(test), model.predict_proba(shifted))
    assert TIME_COLUMN not in base_model(model)["features"].get_feature_names_out()


def test_hour_feature_is_periodic_in_days(frames) -> None:
    train, test = frames
    model = train_model(train, "logistic_regression", include_hour=True)
    names = list(base_model(model)["features"].get_feature_names_out())
    assert len(names) == len(FEATURE_COLUMNS) + 2  # sin and cos of the time of day
    base = model.predict_proba(test)
    next_day = test.assign(**{TIME_COLUMN: test[TIME_COLUMN] + 86_400})
    np.testing.assert_allclose(model.predict_proba(next_day), base, atol=1e-9)
    six_hours = test.assign(**{TIME_COLUMN: test[TIME_COLUMN] + 6 * 3_600})
    assert not np.allclose(model.predict_proba(six_hours), base)


@pytest.mark.parametrize(
    ("model_type", "include_hour"), [*((t, False) for t in MODEL_TYPES), (DEFAULT_MODEL_TYPE, True)]
)
def test_skops_round_trip(frames, trained, model_type: str, include_hour: bool) -> None:
    train, test = frames
    model = (
        train_model(train, model_type, include_hour=True) if include_hour else trained[model_type]
    )
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert not [t for t in untrusted if t.startswith("fraudkit")]
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))


def test_train_model_validates_the_frame(frames) -> None:
    train, _ = frames
    with pytest.raises(DataValidationError, match="no 'Class' column"):
        train_model(train.drop(columns=LABEL_COLUMN))
    with pytest.raises(DataValidationError, match="only class 0"):
        train_model(train[train[LABEL_COLUMN] == 0])
    with pytest.raises(DataValidationError, match=r"lacks feature column.*V14"):
        train_model(train.drop(columns="V14"))
    with pytest.raises(DataValidationError, match=r"lacks feature column.*Time"):
        train_model(train.drop(columns=TIME_COLUMN), include_hour=True)
    with pytest.raises(DataValidationError, match="column V3 at index 7 is not finite"):
        train_model(train.assign(V3=train["V3"].where(train.index != 7)))
    with pytest.raises(DataValidationError, match=r"must hold 0 .* or 1 .*index 2"):
        train_model(train.assign(Class=train["Class"].where(train.index != 2, 2)))
    with pytest.raises(ModelError, match="unknown model type"):
        train_model(train, "svm")


class _Predictor:
    """Duck-typed model whose ``predict`` returns a fixed output; records its input."""

    def __init__(self, output: object) -> None:
        self.output = output
        self.seen: list[str] = []

    def predict(self, df: pd.DataFrame) -> object:
        self.seen = list(df.columns)
        return self.output


@pytest.mark.parametrize(
    "output",
    [
        np.c_[1 - np.array([0.1, 0.7, 0.3]), [0.1, 0.7, 0.3]],
        pd.DataFrame({0: [0.9, 0.3, 0.7], 1: [0.1, 0.7, 0.3]}),
        np.array([0.1, 0.7, 0.3]),
        np.array([[0.1], [0.7], [0.3]]),
    ],
    ids=["two-columns", "frame", "1-D", "one-column"],
)
def test_predict_scores_duck_typing(frames, output: object) -> None:
    _, test = frames
    model = _Predictor(output)
    np.testing.assert_allclose(predict_scores(model, test.head(3)), [0.1, 0.7, 0.3])
    assert LABEL_COLUMN not in model.seen and TIME_COLUMN in model.seen


def test_predict_scores_matches_predict_proba(trained, frames) -> None:
    _, test = frames
    model = trained[DEFAULT_MODEL_TYPE]
    np.testing.assert_array_equal(predict_scores(model, test), model.predict_proba(test)[:, 1])


def test_predict_scores_rejects_bad_models(frames) -> None:
    _, test = frames
    with pytest.raises(ModelError, match=r"shape \(3, 3\)"):
        predict_scores(_Predictor(np.ones((3, 3))), test.head(3))
    with pytest.raises(ModelError, match="2 scores for 3 rows"):
        predict_scores(_Predictor(np.ones(2)), test.head(3))
    with pytest.raises(ModelError, match="neither predict_proba nor predict"):
        predict_scores(object(), test.head(3))


# --------------------------------------------------------------------------- calibration


@pytest.fixture(scope="module")
def calibration_data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, later calibration and later test periods at 1 % fraud."""
    simulator = TransactionSimulator(seed=5, fraud_rate=0.01)
    return simulator.sample(20_000), simulator.sample(10_000), simulator.sample(30_000)


def test_calibration_constants() -> None:
    assert CALIBRATION_METHODS == ("sigmoid", "isotonic", "none")
    assert DEFAULT_CALIBRATION == "sigmoid"


def test_calibration_makes_balanced_scores_probabilities(calibration_data) -> None:
    train, later, test = calibration_data
    y = test[LABEL_COLUMN].to_numpy()
    raw = train_model(train, "logistic_regression", calibration="none")
    calibrated = train_model(train, "logistic_regression", calibration_df=later)
    assert isinstance(raw, Pipeline) and base_model(raw) is raw
    raw_scores, scores = predict_scores(raw, test), predict_scores(calibrated, test)
    # class_weight="balanced" inflates the expected fraud count many times over ...
    assert raw_scores.sum() / y.sum() > 5
    # ... calibration on later data brings it to the truth (300 frauds: +-12 % is 2 sd) ...
    assert calibration_metrics(y, scores)["expected_to_actual_fraud"] == pytest.approx(1, abs=0.2)
    # ... and, being strictly increasing, keeps the ranking: AUPRC does not move.
    assert average_precision_score(y, scores) == pytest.approx(
        average_precision_score(y, raw_scores), abs=1e-12
    )
    # The pipeline inside is the uncalibrated model, fitted on the same training period.
    np.testing.assert_allclose(predict_scores(base_model(calibrated), test), raw_scores)


def test_calibration_slice_is_carved_from_the_latest_training_rows(calibration_data) -> None:
    train, _, test = calibration_data
    model = train_model(train, "logistic_regression", calibration_share=0.25)
    pipeline = base_model(model)
    # The pipeline never saw the latest quarter: refitting on the first 75 % reproduces it.
    earliest = train.sort_values(TIME_COLUMN).iloc[: len(train) - len(train) // 4]
    again = train_model(earliest, "logistic_regression", calibration="none")
    np.testing.assert_allclose(predict_scores(pipeline, test), predict_scores(again, test))
    y = test[LABEL_COLUMN].to_numpy()
    ratio = calibration_metrics(y, predict_scores(model, test))["expected_to_actual_fraud"]
    assert ratio == pytest.approx(1, abs=0.25)


def test_isotonic_calibration_and_skops_round_trip(calibration_data) -> None:
    train, later, test = calibration_data
    model = train_model(
        train, "hist_gradient_boosting", calibration="isotonic", calibration_df=later
    )
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert all(t.startswith(("sklearn.", "numpy.", "scipy.")) for t in untrusted)
    loaded = sio.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    assert isinstance(base_model(loaded), Pipeline)


def test_calibration_without_frauds_warns_and_returns_the_pipeline(calibration_data) -> None:
    train, later, _ = calibration_data
    one_fraud = pd.concat([later[later[LABEL_COLUMN] == 0], later[later[LABEL_COLUMN] == 1][:1]])
    with pytest.warns(SmallSampleWarning, match=r"calibration slice holds only 1 fraud in"):
        model = train_model(train, "logistic_regression", calibration_df=one_fraud)
    assert isinstance(model, Pipeline)


def test_calibration_settings_are_validated(calibration_data) -> None:
    train, later, _ = calibration_data
    with pytest.raises(ModelError, match=r"unknown calibration method 'platt'.*sigmoid, isotonic"):
        train_model(train, calibration="platt")
    with pytest.raises(ModelError, match=r"calibration_share must lie in \(0, 0.5\]"):
        train_model(train, calibration_share=0.9)
    with pytest.raises(DataValidationError, match="calibration frame has no 'Class' column"):
        train_model(train, "logistic_regression", calibration_df=later.drop(columns=LABEL_COLUMN))
    with pytest.raises(DataValidationError, match=r"calibration frame lacks .*V3"):
        train_model(train, "logistic_regression", calibration_df=later.drop(columns="V3"))
