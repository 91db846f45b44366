"""A model on a declared schema is logged with its schema and feature definitions: one
versioned thing, read back with the version, its signature typed from the schema."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from support.ieee import write_ieee_like

from fraudkit import mlflow_manager
from fraudkit.core.exceptions import TrackingError
from fraudkit.science.features import FeatureSpec
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.transactions import load_or_simulate
from fraudkit.tracking.aliased import load_alias
from fraudkit.tracking.model_packaging import read_definitions, skops_trusted_types

NAME = "schema_check"


@pytest.fixture(scope="module")
def ieee(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("ieee")
    path, schema = write_ieee_like(folder, n_cards=400, days=20)
    data = load_or_simulate(path, schema, n_transactions=0, features={"windows": ["1h", "1d"]})
    return data, data.split()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("model_type", ["hist_gradient_boosting", "logistic_regression"])
def test_schema_and_definitions_travel_with_the_version(manager, ieee, model_type, tmp_path):
    data, split = ieee
    model = train_model(
        split.train, model_type, calibration_df=split.validation, **data.model_options
    )
    with manager.start_training_run(NAME) as run:
        manager.log_metrics({"threshold": 0.5})
        manager.log_reference(split.test, predict_scores(model, split.test))
        version = manager.log_model_with_metadata(
            model, NAME, stage="Production", **data.model_metadata(split.test)
        )
    # Params a reader sees in the run table, and the YAML artifacts.
    params = manager.get_run(run.info.run_id).data.params
    assert params["features.entities"] == "card1,addr1"
    assert params["features.windows"] == "1h,1d"
    assert params["features.label_delay"] == data.spec.label_delay
    assert params["features.schema"].endswith("schema.yaml")
    folder = Path(manager.client.download_artifacts(run.info.run_id, "definitions", tmp_path))
    assert yaml.safe_load((folder / "schema.yaml").read_text()) == data.schema.to_dict()
    assert FeatureSpec.from_dict(yaml.safe_load((folder / "features.yaml").read_text())) == (
        data.spec
    )
    # The version carries them: load_alias reads them back from the model itself.
    found = load_alias(NAME, "production", client=manager.client)
    assert str(found.version.version) == str(version.version)
    assert found.schema == data.schema and found.features == data.spec
    # The signature is the schema's: doubles, and optional strings for the categories.
    inputs = {c.name: c for c in found.model.metadata.get_input_schema().inputs}
    assert list(inputs) == data.input_columns
    assert inputs["ProductCD"].type.name == "string" and not inputs["ProductCD"].required
    assert inputs["card1_count_1h"].type.name == "double" and inputs["card1_count_1h"].required
    # The served model scores as the trained one, empty and unseen categories included.
    rows = split.test.head(200).copy()
    rows.loc[rows.index[:5], "P_emaildomain"] = np.nan
    rows.loc[rows.index[5:10], "ProductCD"] = "never-seen"
    np.testing.assert_allclose(predict_scores(found.model, rows), predict_scores(model, rows))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_kaggle_model_carries_no_definitions(manager):
    data = load_or_simulate(None, n_transactions=6_000, fraud_rate=0.02, seed=1)
    split = data.split()
    model = train_model(split.train, "logistic_regression", calibration_df=split.validation)
    with manager.start_training_run(NAME):
        manager.log_metrics({"threshold": 0.5})
        manager.log_reference(split.test, predict_scores(model, split.test))
        manager.log_model_with_metadata(
            model, NAME, stage="Production", **data.model_metadata(split.test)
        )
    found = load_alias(NAME, "production", client=manager.client)
    assert found.schema is None and found.features is None
    assert read_definitions(found.model) == (None, None)


def test_a_schema_model_needs_an_input_example(fraudkit_home, ieee):
    data, split = ieee
    model = train_model(split.train, "logistic_regression", **data.model_options)
    with pytest.raises(TrackingError, match="needs input_example"):
        mlflow_manager.log_model_with_metadata(model, NAME, schema=data.schema, features=data.spec)


def test_a_partial_is_trusted_only_around_trusted_functions(ieee):
    data, split = ieee
    # Gradient boosting on categories keeps functools.partial(check_array, ...).
    model = train_model(split.train, "hist_gradient_boosting", **data.model_options)
    assert "functools.partial" in skops_trusted_types(model)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    hostile = make_pipeline(FunctionTransformer(functools.partial(os.system)), LogisticRegression())
    hostile[-1].fit(frame[["a"]], frame["b"])
    hostile[0].fit(frame[["a"]])
    with pytest.raises(TrackingError, match="system"):
        skops_trusted_types(hostile)


def test_definitions_that_are_not_ours_are_refused_with_the_fix():
    from types import SimpleNamespace

    def logged(metadata):
        return SimpleNamespace(metadata=SimpleNamespace(metadata=metadata))

    assert read_definitions(logged(None)) == (None, None)
    for broken in ({"schema": {"time": "t"}}, {"schema": "x", "features": {}}):
        with pytest.raises(TrackingError, match="log the model again"):
            read_definitions(logged({"fraudkit_definitions": broken}))
