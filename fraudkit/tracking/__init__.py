"""Tracking: everything that talks to MLflow.

The store helpers, batch and model logging, the registry and its aliases, promotion gates,
performance history, the :class:`~fraudkit.tracking.manager.MlflowManager` facade and the
MLflow UI launcher. Importing this package loads nothing; each module loads MLflow itself.
"""

__all__: list[str] = []
