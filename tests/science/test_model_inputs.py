"""Models on a declared schema: native categories, unseen ones as "other", missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score
from support.ieee import SCHEMA_YAML, ieee_like_frame

from fraudkit.core.exceptions import ModelError
from fraudkit.science.features import FeatureSpec, build_features
from fraudkit.science.models import MODEL_TYPES, build_model, predict_scores, train_model
from fraudkit.science.schema import PRESETS, TransactionSchema


@pytest.fixture(scope="module")
def prepared() -> tuple[TransactionSchema, list[str], pd.DataFrame]:
    import yaml

    schema = TransactionSchema.from_dict(yaml.safe_load(SCHEMA_YAML), name="ieee")
    frame = schema.validate(ieee_like_frame(n_cards=800, seed=3)).frame
    spec = FeatureSpec(windows=("1h", "1d"), label_windows=("7d",))
    behaviour = build_features(frame, schema, spec)
    return schema, list(behaviour.columns), pd.concat([frame, behaviour], axis=1)


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cut = np.array([0.6, 0.8]) * len(frame)
    return (
        frame.iloc[: int(cut[0])],
        frame.iloc[int(cut[0]) : int(cut[1])],
        frame.iloc[int(cut[1]) :],
    )


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_model_type_trains_on_a_schema_and_sees_the_velocity(prepared, model_type) -> None:
    schema, behaviour, frame = prepared
    train, calibrate, test = _split(frame)
    model = train_model(
        train, model_type, calibration_df=calibrate, schema=schema, behaviour=behaviour
    )
    scores = predict_scores(model, test)
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    label = test["isFraud"].to_numpy()
    assert average_precision_score(label, scores) > 5 * label.mean()
    # Calibrated on later data: the expected fraud count is the right order of magnitude.
    assert 0.3 < scores.sum() / max(label.sum(), 1) < 3


def test_an_unseen_category_scores_as_other_and_an_empty_cell_too(prepared) -> None:
    schema, behaviour, frame = prepared
    train, calibrate, test = _split(frame)
    model = train_model(train, calibration_df=calibrate, schema=schema, behaviour=behaviour)
    rows = test.head(50).copy()
    unseen, empty = rows.copy(), rows.copy()
    unseen["ProductCD"] = "a product launched yesterday"
    empty["ProductCD"] = pd.Series(np.nan, index=empty.index, dtype=object)  # as checked
    np.testing.assert_array_equal(predict_scores(model, unseen), predict_scores(model, empty))
    classifier = build_model(schema=schema, behaviour=behaviour).named_steps["classifier"]
    mask = classifier.get_params()["categorical_features"]
    assert mask == [False] * (1 + len(behaviour)) + [True, True]


def test_the_kaggle_schema_keeps_its_model_and_the_hour_stays_kaggle_only(prepared) -> None:
    schema, behaviour, _ = prepared
    assert repr(build_model(schema=PRESETS["kaggle"])) == repr(build_model())
    with pytest.raises(ModelError, match="include_hour reads the Kaggle schema's Time"):
        build_model(schema=schema, behaviour=behaviour, include_hour=True)
