"""fraudkit: a notebook-centred research kit for credit-card fraud detection on MLflow.

Public names load lazily, on first access, so that importing a science module
(``fraudkit.data``, ``fraudkit.metrics``, ...) never pulls in MLflow. Type checkers and
IDEs see them through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudkit.abtest import compare_scores, run_ab_test
    from fraudkit.config import DEFAULT_MODEL_NAME, MLFLOW_EXPERIMENTS, ExperimentType
    from fraudkit.data import data_fingerprint, load_transactions, time_split, time_windows
    from fraudkit.drift import detect_drift, detect_prediction_drift
    from fraudkit.estimation import estimate_performance
    from fraudkit.exceptions import (
        ConfigurationError,
        DataValidationError,
        FraudkitError,
        ModelError,
        NotebookExecutionError,
        NotebookParameterError,
        PromotionRefused,
        RegistryError,
        SmallSampleWarning,
        TrackingError,
        TrackingUnavailableError,
    )
    from fraudkit.metrics import calibration_metrics, evaluate
    from fraudkit.models import build_model, choose_threshold, predict_scores, train_model
    from fraudkit.monitoring import evaluate_alerts, monitor_window, monitor_windows
    from fraudkit.notebooks import run_notebook, run_pipeline
    from fraudkit.online import compare_online
    from fraudkit.reports import build_report_index
    from fraudkit.sequential import SequentialABTest
    from fraudkit.simulate import Drift, TransactionSimulator, bayes_ceiling
    from fraudkit.tracking import MlflowManager, mlflow_manager

    __version__: str

# Public name -> module that defines it.
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
    "TransactionSimulator": "simulate",
    "Drift": "simulate",
    "bayes_ceiling": "simulate",
    "load_transactions": "data",
    "time_split": "data",
    "time_windows": "data",
    "data_fingerprint": "data",
    "build_model": "models",
    "train_model": "models",
    "predict_scores": "models",
    "choose_threshold": "models",
    "evaluate": "metrics",
    "calibration_metrics": "metrics",
    "compare_scores": "abtest",
    "run_ab_test": "abtest",
    "compare_online": "online",
    "SequentialABTest": "sequential",
    "detect_drift": "drift",
    "detect_prediction_drift": "drift",
    "estimate_performance": "estimation",
    "monitor_window": "monitoring",
    "monitor_windows": "monitoring",
    "evaluate_alerts": "monitoring",
    "run_notebook": "notebooks",
    "run_pipeline": "notebooks",
    "build_report_index": "reports",
}

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MLFLOW_EXPERIMENTS",
    "ConfigurationError",
    "DataValidationError",
    "Drift",
    "ExperimentType",
    "FraudkitError",
    "MlflowManager",
    "ModelError",
    "NotebookExecutionError",
    "NotebookParameterError",
    "PromotionRefused",
    "RegistryError",
    "SequentialABTest",
    "SmallSampleWarning",
    "TrackingError",
    "TrackingUnavailableError",
    "TransactionSimulator",
    "__version__",
    "bayes_ceiling",
    "build_model",
    "build_report_index",
    "calibration_metrics",
    "choose_threshold",
    "compare_online",
    "compare_scores",
    "data_fingerprint",
    "detect_drift",
    "detect_prediction_drift",
    "estimate_performance",
    "evaluate",
    "evaluate_alerts",
    "load_transactions",
    "mlflow_manager",
    "monitor_window",
    "monitor_windows",
    "predict_scores",
    "run_ab_test",
    "run_notebook",
    "run_pipeline",
    "time_split",
    "time_windows",
    "train_model",
]


def _version() -> str:
    # importlib.metadata scans the installed distributions: ~45 ms of a dashboard answer
    # that needs no version, so it is read on first access too.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fraudkit")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fraudkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fraudkit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
