"""fraudkit: a notebook-centred research kit for credit-card fraud detection on MLflow.

Public names load lazily, on first access, so that importing a science module
(``fraudkit.science.data``, ``fraudkit.science.metrics``, ...) never pulls in
MLflow. Type checkers and IDEs see them through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudkit.core.config import DEFAULT_MODEL_NAME, MLFLOW_EXPERIMENTS, ExperimentType
    from fraudkit.core.exceptions import (
        ConfigurationError,
        DataValidationError,
        FraudkitError,
        ModelError,
        NotebookExecutionError,
        NotebookParameterError,
        PromotionRefused,
        RegistryError,
        SchemaError,
        ScoringError,
        SmallSampleWarning,
        TrackingError,
        TrackingUnavailableError,
    )
    from fraudkit.reports.index import build_report_index
    from fraudkit.runner.execution import run_notebook
    from fraudkit.runner.pipeline import run_pipeline
    from fraudkit.science.abtest import compare_scores, run_ab_test
    from fraudkit.science.data import data_fingerprint, load_transactions, time_split, time_windows
    from fraudkit.science.drift import detect_drift, detect_prediction_drift
    from fraudkit.science.entities import EntityDrift, EntitySimulator, HandbookWorld
    from fraudkit.science.estimation import estimate_performance
    from fraudkit.science.features import FeatureSpec, FeatureState, build_features
    from fraudkit.science.metrics import calibration_metrics, evaluate
    from fraudkit.science.models import build_model, predict_scores, train_model
    from fraudkit.science.monitoring import monitor_window, monitor_windows
    from fraudkit.science.online import compare_online
    from fraudkit.science.retraining_rules import evaluate_alerts
    from fraudkit.science.schema import TransactionSchema, read_transactions
    from fraudkit.science.sequential import SequentialABTest
    from fraudkit.science.simulate import Drift, TransactionSimulator, bayes_ceiling
    from fraudkit.science.thresholds import choose_threshold
    from fraudkit.science.traffic import load_windows
    from fraudkit.science.transactions import Transactions, load_or_simulate
    from fraudkit.tracking.manager import MlflowManager, mlflow_manager

    __version__: str

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "FraudkitError": "core.exceptions",
    "ConfigurationError": "core.exceptions",
    "DataValidationError": "core.exceptions",
    "ModelError": "core.exceptions",
    "TrackingError": "core.exceptions",
    "TrackingUnavailableError": "core.exceptions",
    "RegistryError": "core.exceptions",
    "PromotionRefused": "core.exceptions",
    "NotebookParameterError": "core.exceptions",
    "NotebookExecutionError": "core.exceptions",
    "SchemaError": "core.exceptions",
    "ScoringError": "core.exceptions",
    "SmallSampleWarning": "core.exceptions",
    "ExperimentType": "core.config",
    "MLFLOW_EXPERIMENTS": "core.config",
    "DEFAULT_MODEL_NAME": "core.config",
    "MlflowManager": "tracking.manager",
    "mlflow_manager": "tracking.manager",
    "TransactionSimulator": "science.simulate",
    "Drift": "science.simulate",
    "bayes_ceiling": "science.simulate",
    "load_transactions": "science.data",
    "time_split": "science.data",
    "time_windows": "science.data",
    "data_fingerprint": "science.data",
    "TransactionSchema": "science.schema",
    "read_transactions": "science.schema",
    "build_features": "science.features",
    "EntitySimulator": "science.entities",
    "EntityDrift": "science.entities",
    "Transactions": "science.transactions",
    "HandbookWorld": "science.entities",
    "load_or_simulate": "science.transactions",
    "load_windows": "science.traffic",
    "FeatureSpec": "science.features",
    "FeatureState": "science.features",
    "build_model": "science.models",
    "train_model": "science.models",
    "predict_scores": "science.models",
    "choose_threshold": "science.thresholds",
    "evaluate": "science.metrics",
    "calibration_metrics": "science.metrics",
    "compare_scores": "science.abtest",
    "run_ab_test": "science.abtest",
    "compare_online": "science.online",
    "SequentialABTest": "science.sequential",
    "detect_drift": "science.drift",
    "detect_prediction_drift": "science.drift",
    "estimate_performance": "science.estimation",
    "monitor_window": "science.monitoring",
    "monitor_windows": "science.monitoring",
    "evaluate_alerts": "science.retraining_rules",
    "run_notebook": "runner.execution",
    "run_pipeline": "runner.pipeline",
    "build_report_index": "reports.index",
}

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MLFLOW_EXPERIMENTS",
    "ConfigurationError",
    "DataValidationError",
    "Drift",
    "EntityDrift",
    "EntitySimulator",
    "ExperimentType",
    "FeatureSpec",
    "FeatureState",
    "FraudkitError",
    "HandbookWorld",
    "MlflowManager",
    "ModelError",
    "NotebookExecutionError",
    "NotebookParameterError",
    "PromotionRefused",
    "RegistryError",
    "SchemaError",
    "ScoringError",
    "SequentialABTest",
    "SmallSampleWarning",
    "TrackingError",
    "TrackingUnavailableError",
    "TransactionSchema",
    "TransactionSimulator",
    "Transactions",
    "__version__",
    "bayes_ceiling",
    "build_features",
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
    "load_or_simulate",
    "load_transactions",
    "load_windows",
    "mlflow_manager",
    "monitor_window",
    "monitor_windows",
    "predict_scores",
    "read_transactions",
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
