"""The registered production model decides: ``mlflow models serve``, ``pyfunc`` and the
kit's own scoring give the same rows (probability, alert at the version's threshold,
version, reasons), and MLflow's evaluator scores the alert as the kit did."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from support.served import register_detector
from support.servers import ModelServer

from fraudkit import mlflow_manager
from fraudkit.core.exceptions import DataValidationError, ModelError
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.models import base_model, predict_scores
from fraudkit.science.reasons import ReasonExplainer
from fraudkit.tracking.registry import load_model
from fraudkit.tracking.served import DecisionModel

NAME = "served_detector"
URI = f"models:/{NAME}@production"


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture
def registered(backend):
    """A calibrated logistic model registered at a chosen threshold, and its test period."""
    return register_detector(NAME)


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_served_rows_are_the_same_over_http_pyfunc_and_the_kit(registered, fraudkit_home: Path):
    model, split, metrics = registered
    rows = split.test.head(200)
    # json.dumps writes every float exactly (DataFrame.to_json keeps 10 digits).
    frame = {"columns": FEATURE_COLUMNS, "data": rows[FEATURE_COLUMNS].to_numpy().tolist()}
    with ModelServer(URI, mlflow_manager.tracking_uri, fraudkit_home) as server:
        answer = _post(f"{server.url}/invocations", {"dataframe_split": frame})
        fast = _post(
            f"{server.url}/invocations",
            {"dataframe_split": frame, "params": {"reasons": 0, "threshold": 0.01}},
        )
    served = pd.DataFrame(answer["predictions"])
    pyfunc = load_model(URI).predict(rows[FEATURE_COLUMNS])
    pd.testing.assert_frame_equal(served, pyfunc, check_dtype=False)
    # The calibrated probability, not the class-weighted pipeline's inflated scores ...
    np.testing.assert_array_equal(served["fraud_probability"], predict_scores(model, rows))
    assert not np.allclose(served["fraud_probability"], predict_scores(base_model(model), rows))
    # ... the alert at the threshold chosen in training, the version, and its reasons.
    assert set(served["threshold"]) == {metrics["threshold"]} == {0.2}
    assert served["alert"].tolist() == (served["fraud_probability"] >= 0.2).tolist()
    assert set(served["model_version"]) == {"1"}
    own = ReasonExplainer(model, split.train).reasons(rows, 3)
    pd.testing.assert_frame_equal(served.iloc[:, 4:], own, check_dtype=False)
    # Inference params: no reasons (the fast path) and another threshold.
    fast_frame = pd.DataFrame(fast["predictions"])
    assert list(fast_frame.columns) == ["fraud_probability", "alert", "threshold", "model_version"]
    assert fast_frame["alert"].tolist() == (served["fraud_probability"] >= 0.01).tolist()


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_served_forests_reasons_are_the_same_under_concurrent_requests(
    backend, fraudkit_home: Path
):
    """The compiled TreeSHAP splits each request's rows over threads, and the server may
    answer requests at once: every answer equals pyfunc's and the fitted model's reasons."""
    model, split, _ = register_detector("served_forest", "random_forest")
    uri = "models:/served_forest@production"
    rows = split.test.reset_index(drop=True)
    chunks = [rows.iloc[i : i + 1_000] for i in range(0, len(rows), 1_000)]
    assert len(chunks) >= 3
    with ModelServer(uri, mlflow_manager.tracking_uri, fraudkit_home) as server:

        def answer(rows: pd.DataFrame) -> pd.DataFrame:
            frame = {"columns": FEATURE_COLUMNS, "data": rows[FEATURE_COLUMNS].to_numpy().tolist()}
            reply = _post(f"{server.url}/invocations", {"dataframe_split": frame})
            return pd.DataFrame(reply["predictions"])

        with ThreadPoolExecutor(len(chunks)) as pool:
            served = pd.concat(list(pool.map(answer, chunks)), ignore_index=True)
    pyfunc = load_model(uri).predict(rows[FEATURE_COLUMNS])
    pd.testing.assert_frame_equal(served, pyfunc, check_dtype=False, check_exact=True)
    own = ReasonExplainer(model, split.train).reasons(rows, 3)
    pd.testing.assert_frame_equal(served.iloc[:, 4:], own, check_dtype=False, check_exact=True)
    assert served["reason_1_contribution"].abs().max() > 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_served_model_is_typed_and_refuses_what_it_cannot_score(registered):
    model, split, _ = registered
    served = load_model(URI)
    signature = served.metadata.signature
    outputs = {spec.name: spec.type.name for spec in signature.outputs.inputs}
    assert outputs["fraud_probability"] == "double" and outputs["alert"] == "boolean"
    assert outputs["model_version"] == "string" and outputs["reason_3_contribution"] == "double"
    params = {spec.name: spec.default for spec in signature.params}
    assert params == {"threshold": 0.2, "reasons": 3}
    five = served.predict(split.test[FEATURE_COLUMNS].head(5), params={"reasons": 5})
    assert "reason_5_contribution" in five.columns
    # An empty request gets an empty answer, with the columns of a full one.
    none = served.predict(split.test[FEATURE_COLUMNS].head(0))
    assert len(none) == 0 and list(none.columns) == list(five.columns[:-4])
    assert none["fraud_probability"].dtype == float and none["alert"].dtype == bool
    with pytest.raises(ModelError, match="from 0 to 10"):
        served.predict(split.test[FEATURE_COLUMNS].head(5), params={"reasons": 11})
    # Without a column MLflow names it; the kit's own error names the fix.
    with pytest.raises(mlflow.exceptions.MlflowException, match="V14"):
        served.predict(split.test[FEATURE_COLUMNS].drop(columns="V14").head(5))
    decider = DecisionModel(model, 0.2, "1", FEATURE_COLUMNS)
    with pytest.raises(DataValidationError, match=r"lacks the model's input column\(s\) V14"):
        decider.predict(split.test.drop(columns="V14").head(5))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_mlflow_evaluate_on_the_alert_gives_the_kits_precision_and_recall(registered):
    """MLflow's classifier evaluator reads the served rows' ``alert`` (``predictions=``)."""
    _, split, metrics = registered
    decisions = load_model(URI).predict(split.test[FEATURE_COLUMNS], params={"reasons": 0})
    data = decisions[["alert"]].assign(Class=split.test["Class"].to_numpy())
    with mlflow.start_run():
        result = mlflow.models.evaluate(
            data=data,
            predictions="alert",
            targets="Class",
            model_type="classifier",
            # The alert explains nothing; MLflow's SHAP step would try to.
            evaluator_config={"log_model_explainability": False},
        )
    assert result.metrics["precision_score"] == pytest.approx(metrics["fraud_precision"], abs=1e-12)
    assert result.metrics["recall_score"] == pytest.approx(metrics["fraud_recall"], abs=1e-12)
