"""Errors raised by fraudkit.

Every error a user can cause is a :class:`FraudkitError` subclass whose message says
what is wrong and how to fix it; the CLI maps them to exit codes without tracebacks.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DataValidationError",
    "FraudkitError",
    "ModelError",
    "NotebookExecutionError",
    "NotebookParameterError",
    "PromotionRefused",
    "RegistryError",
    "SchemaError",
    "ScoringError",
    "SmallSampleWarning",
    "TrackingError",
    "TrackingUnavailableError",
]


class FraudkitError(Exception):
    """Base class of every error fraudkit raises on purpose."""


class ConfigurationError(FraudkitError):
    """A setting (environment variable, tracking URI, stage, experiment type) is invalid."""


class DataValidationError(FraudkitError):
    """A data file or frame does not match its schema (by default ``creditcard.csv``'s)."""


class SchemaError(FraudkitError):
    """A transaction schema (a preset name or a schema file) is unknown or invalid."""


class ModelError(FraudkitError):
    """A model type, model parameter or threshold rule is invalid."""


class TrackingError(FraudkitError):
    """Logging to, or reading from, the MLflow tracking store failed."""


class TrackingUnavailableError(TrackingError):
    """The MLflow tracking store cannot be reached at all."""


class RegistryError(TrackingError):
    """A registered model, version or alias does not exist or cannot be changed."""


class PromotionRefused(RegistryError):
    """A promotion gate refused the candidate version; nothing was moved."""


class ScoringError(FraudkitError):
    """A scores folder belongs to another job, or its parts do not cover the input once."""


class NotebookParameterError(FraudkitError):
    """A notebook parameter is unknown or has the wrong type."""


class NotebookExecutionError(FraudkitError):
    """A notebook failed while executing.

    Attributes
    ----------
    notebook : str
        Name of the notebook that failed.
    cell_index : int or None
        Index of the failing code cell in the notebook (``None`` when the kernel died
        before a cell could be blamed).
    error : str
        The error name and message of the failing cell.
    traceback : str
        The traceback text of the failing cell.
    run_id : str or None
        The MLflow run that holds the partial executed notebook and its HTML report.
    """

    def __init__(
        self,
        notebook: str,
        *,
        cell_index: int | None,
        error: str,
        traceback: str = "",
        run_id: str | None = None,
        output_path: str | None = None,
    ) -> None:
        self.notebook = notebook
        self.cell_index = cell_index
        self.error = error
        self.traceback = traceback
        self.run_id = run_id
        self.output_path = output_path
        where = f"cell {cell_index}" if cell_index is not None else "an unknown cell"
        message = f"notebook {notebook!r} failed in {where}: {error}"
        if run_id:
            message += f" (MLflow run {run_id} marked FAILED"
            message += f"; partial notebook at {output_path})" if output_path else ")"
        super().__init__(message)


class SmallSampleWarning(UserWarning):
    """A split or window holds too few frauds for its numbers to be estimates.

    A warning, not an error: the run goes on and records the warning (notebook output,
    report and a run tag), so a quick experiment on little data still finishes.
    """
