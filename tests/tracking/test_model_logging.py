"""The version behind an alias, loaded with its threshold, metrics and monitoring reference."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraudkit.core.exceptions import RegistryError, TrackingError
from fraudkit.science.models import predict_scores
from fraudkit.tracking.aliased import AliasedModel, load_alias
from fraudkit.tracking.model_logging import BASE_RATE_METRICS

NAME = "alias_check"


@pytest.fixture(scope="module")
def toy() -> tuple[pd.DataFrame, LogisticRegression]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["V1", "V2", "Amount"])
    frame["Class"] = (frame["V1"] + rng.normal(scale=0.5, size=300) > 0.8).astype(int)
    features = frame.drop(columns="Class")
    return frame, LogisticRegression().fit(features, frame["Class"])


def _train(
    manager, toy, *, threshold: float | None = 0.4, reference: bool = True, base_rate: bool = True
) -> str:
    frame, model = toy
    with manager.start_training_run(NAME):
        metrics = {"average_precision": 0.7}
        if base_rate:
            metrics |= dict(zip(BASE_RATE_METRICS, (12, 3_000), strict=True))
        if threshold is not None:
            metrics["threshold"] = threshold
        manager.log_metrics(metrics)
        if reference:
            manager.log_reference(frame, predict_scores(model, frame))
        version = manager.log_model_with_metadata(
            model, NAME, stage="Production", input_example=frame.drop(columns="Class")
        )
    return str(version.version)


def test_load_alias_returns_version_model_threshold_and_reference(manager, toy):
    frame, model = toy
    version = _train(manager, toy)
    found = load_alias(NAME, "production", client=manager.client)
    assert isinstance(found, AliasedModel)
    assert str(found.version.version) == version and found.uri == f"models:/{NAME}/{version}"
    assert found.threshold == pytest.approx(0.4)
    assert found.metrics["average_precision"] == pytest.approx(0.7)
    expected = model.predict_proba(frame.drop(columns="Class"))[:, 1]
    np.testing.assert_allclose(predict_scores(found.model, frame), expected)
    np.testing.assert_allclose(found.reference_scores, expected)
    pd.testing.assert_frame_equal(found.reference, frame)
    assert found.base_rate == (12, 3_000)
    # A stage name and the default client work too.
    assert str(load_alias(NAME, "Production").version.version) == version


def test_load_alias_says_what_is_missing(manager, toy):
    with pytest.raises(RegistryError, match="registered model 'alias_check' not found"):
        load_alias(NAME, "production")
    _train(manager, toy, threshold=None)
    with pytest.raises(RegistryError, match="no version of 'alias_check' holds alias 'staging'"):
        load_alias(NAME, "staging")
    with pytest.raises(RegistryError, match="logged no 'threshold' metric"):
        load_alias(NAME, "production")
    _train(manager, toy, base_rate=False)
    assert load_alias(NAME, "production").base_rate is None  # runs from before it was logged
    _train(manager, toy, reference=False)
    with pytest.raises(TrackingError, match="holds no monitoring reference"):
        load_alias(NAME, "production")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_load_alias_works_in_a_fresh_process_anywhere(manager, toy, tmp_path, fraudkit_home):
    version = _train(manager, toy)
    # A script run from another folder: MLflow's own default store would be that folder's,
    # and the version's logged model must still be found in the kit's store.
    script = (
        "import os; from fraudkit.tracking.aliased import load_alias; "
        f"print(load_alias({NAME!r}, 'production').version.version); "
        "print(os.environ.get('MLFLOW_TRACKING_URI'))"  # left unset, as it was
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "FRAUDKIT_HOME": str(fraudkit_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == [version, "None"]
