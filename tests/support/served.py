"""A served model to test against: a calibrated model registered at threshold 0.2.

By default logistic: its reasons are exact and cheap, so many rows go through every serving
path in seconds. A tree model's reasons run the compiled TreeSHAP on threads.
"""

from __future__ import annotations

from typing import Any

from fraudkit import mlflow_manager
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.data import time_split
from fraudkit.science.metrics import evaluate
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.simulate import TransactionSimulator

__all__ = ["register_detector"]


def register_detector(
    name: str, model_type: str = "logistic_regression"
) -> tuple[Any, Any, dict[str, float]]:
    """Train ``model_type`` on 20,000 simulated rows and register ``name`` at ``production``.

    Returns the fitted model, its time split and the test metrics it was logged with
    (evaluated at threshold 0.2, the served threshold).
    """
    split = time_split(TransactionSimulator(seed=4, fraud_rate=0.01).sample(20_000))
    model = train_model(split.train, model_type, calibration_df=split.validation)
    metrics = evaluate(split.test["Class"], predict_scores(model, split.test), threshold=0.2)
    mlflow_manager.log_model_with_metadata(
        model,
        name,
        metrics=metrics,
        stage="Production",
        input_example=split.test[FEATURE_COLUMNS].head(5),
        evaluation_dataset=split.test,
        training_data=split.train,
    )
    return model, split, metrics
