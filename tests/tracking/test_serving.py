"""The registered production model, served by ``mlflow models serve``, returns the
calibrated fraud probability that ``train_model`` produced."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from support.servers import ModelServer

from fraudkit import mlflow_manager
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.data import time_split
from fraudkit.science.models import base_model, predict_scores, train_model
from fraudkit.science.simulate import TransactionSimulator

pytestmark = [pytest.mark.server, pytest.mark.slow]

NAME = "served_detector"


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_served_production_model_returns_calibrated_probabilities(backend, fraudkit_home: Path):
    split = time_split(TransactionSimulator(seed=4, fraud_rate=0.01).sample(20_000))
    model = train_model(split.train, "logistic_regression", calibration_df=split.validation)
    mlflow_manager.log_model_with_metadata(
        model, NAME, stage="Production", input_example=split.test[FEATURE_COLUMNS].head(5)
    )
    rows = split.test.head(200)
    frame = json.loads(rows[FEATURE_COLUMNS].to_json(orient="split", index=False))
    model_uri = f"models:/{NAME}@production"
    with ModelServer(model_uri, mlflow_manager.tracking_uri, fraudkit_home) as server:
        answer = _post(f"{server.url}/invocations", {"dataframe_split": frame})
    served = np.asarray(answer["predictions"], dtype=float)[:, 1]
    np.testing.assert_allclose(served, predict_scores(model, rows), rtol=1e-6, atol=1e-9)
    # ... and not the class-weighted pipeline's inflated scores.
    assert not np.allclose(served, predict_scores(base_model(model), rows), atol=1e-3)
