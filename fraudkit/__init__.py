"""fraudkit: a notebook-centred research kit for credit-card fraud detection on MLflow."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it. Resolved on first access so that importing a
# pure science module (fraudkit.data, fraudkit.metrics, ...) never pulls in MLflow.
_EXPORTS: dict[str, str] = {
    "FraudkitError": "exceptions",
    "ConfigurationError": "exceptions",
    "DataValidationError": "exceptions",
    "ModelError": "exceptions",
    "TrackingError": "exceptions",
    "TrackingUnavailableError": "exceptions",
    "RegistryError": "exceptions",
    "PromotionRefused": "exceptions",
    "NotebookParameterError": "exceptions",
    "NotebookExecutionError": "exceptions",
    "SmallSampleWarning": "exceptions",
    "ExperimentType": "config",
    "MLFLOW_EXPERIMENTS": "config",
    "DEFAULT_MODEL_NAME": "config",
    "MlflowManager": "tracking",
    "mlflow_manager": "tracking",
    "TransactionSimulator": "data",
    "Drift": "data",
    "load_transactions": "data",
    "time_split": "data",
    "data_fingerprint": "data",
    "build_model": "models",
    "train_model": "models",
    "predict_scores": "models",
    "choose_threshold": "models",
    "evaluate": "metrics",
    "calibration_metrics": "metrics",
    "compare_scores": "abtest",
    "run_ab_test": "abtest",
    "compare_online": "abtest",
    "SequentialABTest": "sequential",
    "detect_drift": "monitoring",
    "monitor_window": "monitoring",
    "estimate_performance": "monitoring",
    "evaluate_alerts": "monitoring",
    "run_notebook": "notebooks",
    "run_pipeline": "notebooks",
    "build_report_index": "notebooks",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fraudkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fraudkit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
