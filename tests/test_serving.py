"""The registered production model, served by ``mlflow models serve``, returns the
calibrated fraud probability that ``train_model`` produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port

from fraudkit import mlflow_manager
from fraudkit.data import FEATURE_COLUMNS, TransactionSimulator, time_split
from fraudkit.models import base_model, predict_scores, train_model

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
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # the server runs uvicorn from the venv
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": mlflow_manager.tracking_uri,
    }
    log = (fraudkit_home / "serve.log").open("w")
    command = [f"{bin_dir}/mlflow", "models", "serve", "-m", f"models:/{NAME}@production"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = (fraudkit_home / "serve.log").read_text()
                    raise AssertionError(f"mlflow models serve did not start: {output}") from None
                time.sleep(0.5)
        frame = rows[FEATURE_COLUMNS]
        answer = _post(
            f"http://127.0.0.1:{port}/invocations",
            {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))},
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    served = np.asarray(answer["predictions"], dtype=float)[:, 1]
    np.testing.assert_allclose(served, predict_scores(model, rows), rtol=1e-6, atol=1e-9)
    # ... and not the class-weighted pipeline's inflated scores.
    assert not np.allclose(served, predict_scores(base_model(model), rows), atol=1e-3)
