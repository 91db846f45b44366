"""Names, paths and settings shared by the MLflow layer.

Everything that depends on the environment is resolved by a function at call time (never
at import), so setting ``FRAUDKIT_HOME`` or ``MLFLOW_TRACKING_URI`` after import works and
importing fraudkit touches no file.

Environment variables
---------------------
MLFLOW_TRACKING_URI
    The tracking store. Wins over everything else. A relative ``sqlite:///`` path is made
    absolute against the current directory.
FRAUDKIT_HOME
    The project directory holding ``mlflow.db``, ``mlartifacts/`` and ``reports/``.
    Defaults to the nearest ancestor of the current directory that holds the kit's
    ``pyproject.toml`` and ``notebooks/``, else the current directory.
FRAUDKIT_NOTEBOOKS_DIR
    Where the parameterized notebooks live: a folder of edited copies (``fraudkit
    notebooks copy DIR`` makes one). Default: those installed with the package, or
    ``notebooks/`` of the checkout.
FRAUDKIT_PIPELINE_ID, FRAUDKIT_NOTEBOOK
    Set by the notebook runner for the kernel; become run tags.
MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, MLFLOW_HTTP_REQUEST_TIMEOUT
    MLflow's HTTP client settings; fraudkit sets :data:`HTTP_DEFAULTS` for those left unset
    when it first talks to a tracking server.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlparse

from fraudkit.core.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ENV_HOME",
    "ENV_NOTEBOOK",
    "ENV_NOTEBOOKS_DIR",
    "ENV_PIPELINE_ID",
    "ENV_TRACKING_URI",
    "HTTP_DEFAULTS",
    "MLFLOW_EXPERIMENTS",
    "STAGE_ALIASES",
    "ExperimentType",
    "apply_http_defaults",
    "artifact_root",
    "fraudkit_home",
    "is_remote",
    "kit_notebooks_dir",
    "notebooks_dir",
    "redact_secrets",
    "redact_uri",
    "reports_dir",
    "stage_to_alias",
    "tracking_uri",
]

MLFLOW_EXPERIMENTS: dict[str, str] = {
    "training": "credit_card_fraud_detection",
    "ab_testing": "credit_card_fraud_ab_testing",
    "model_comparison": "credit_card_fraud_model_comparison",
    "monitoring": "credit_card_fraud_monitoring",
    "retraining": "credit_card_fraud_retraining",
}

DEFAULT_MODEL_NAME = "credit_card_fraud_detector"

# The seed speaks of registry stages; MLflow 3 deprecates them, so each maps to an alias.
STAGE_ALIASES: dict[str, str] = {"staging": "staging", "production": "production"}

ENV_HOME = "FRAUDKIT_HOME"
ENV_NOTEBOOKS_DIR = "FRAUDKIT_NOTEBOOKS_DIR"
ENV_PIPELINE_ID = "FRAUDKIT_PIPELINE_ID"
ENV_NOTEBOOK = "FRAUDKIT_NOTEBOOK"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"

# MLflow's own defaults (7 retries, backoff factor 2, 120 s timeout) keep a call to a dead
# server retrying for about 4 minutes, and a notebook makes dozens of calls. These give up
# on a refused connection after about 15 s (retries after 0, 2, 4 and 8 s), which still
# rides out a server restart.
HTTP_DEFAULTS: dict[str, str] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

# fraudkit/core/config.py -> fraudkit/core -> fraudkit -> the checkout (or site-packages).
_PACKAGE = Path(__file__).resolve().parents[1]
# An installed wheel carries the notebooks as package data (pyproject.toml maps the
# checkout's top-level notebooks/ to fraudkit/notebooks/); a checkout has them at the top.
_NOTEBOOK_FOLDERS = (_PACKAGE / "notebooks", _PACKAGE.parent / "notebooks")


class ExperimentType(StrEnum):
    """The five kinds of work fraudkit records, one MLflow experiment each."""

    TRAINING = "training"
    AB_TESTING = "ab_testing"
    MODEL_COMPARISON = "model_comparison"
    MONITORING = "monitoring"
    RETRAINING = "retraining"

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment name of this type (as in the seed)."""
        return MLFLOW_EXPERIMENTS[self.value]

    @classmethod
    def parse(cls, value: str | ExperimentType) -> ExperimentType:
        """Return the type named by ``value`` (a type key such as ``"training"``).

        Raises
        ------
        ConfigurationError
            If ``value`` names no experiment type.
        """
        if isinstance(value, ExperimentType):
            return value
        key = str(value).strip().lower().replace("-", "_")
        for member in cls:
            if key in (member.value, member.experiment_name):
                return member
        valid = ", ".join(m.value for m in cls)
        raise ConfigurationError(f"unknown experiment type {value!r}; use one of: {valid}")


def stage_to_alias(stage: str) -> str:
    """Map a seed stage name (``"Staging"``, ``"Production"``, any case) to its alias.

    Raises
    ------
    ConfigurationError
        If ``stage`` is not one of the known stages.
    """
    alias = STAGE_ALIASES.get(str(stage).strip().lower())
    if alias is None:
        valid = ", ".join(s.capitalize() for s in STAGE_ALIASES)
        raise ConfigurationError(f"unknown stage {stage!r}; use one of: {valid}")
    return alias


def _is_project_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "notebooks").is_dir()


def fraudkit_home() -> Path:
    """Return the absolute project directory that holds the store, artifacts and reports."""
    configured = os.environ.get(ENV_HOME)
    if configured:
        return Path(configured).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _is_project_root(candidate):
            return candidate
    return cwd


def notebooks_dir() -> Path:
    """Return the directory holding the parameterized notebooks.

    ``FRAUDKIT_NOTEBOOKS_DIR`` when set, else the notebooks installed with the package
    (``fraudkit/notebooks/`` in a wheel), else ``notebooks/`` of the checkout.
    """
    configured = os.environ.get(ENV_NOTEBOOKS_DIR)
    if configured:
        return Path(configured).expanduser().resolve()
    return kit_notebooks_dir()


def kit_notebooks_dir() -> Path:
    """Return the folder of the kit's own notebooks, whatever ``FRAUDKIT_NOTEBOOKS_DIR`` says.

    ``fraudkit/notebooks/`` of an installed wheel, else ``notebooks/`` of the checkout.
    """
    packaged, checkout = _NOTEBOOK_FOLDERS
    return packaged if packaged.is_dir() else checkout


def reports_dir() -> Path:
    """Return the directory the runner writes executed notebooks and HTML reports to."""
    return fraudkit_home() / "reports"


def _absolute_sqlite(uri: str) -> str:
    # "sqlite:///relative.db" is relative to whatever the current directory is when MLflow
    # opens it; papermill changes that, so pin it now.
    path = uri[len("sqlite:///") :]
    if path.startswith("/") or path == ":memory:" or not path:
        return uri
    return "sqlite:///" + str((Path.cwd() / path).resolve())


def tracking_uri() -> str:
    """Return the tracking URI fraudkit uses.

    ``MLFLOW_TRACKING_URI`` when set (relative SQLite paths made absolute), else an
    absolute ``sqlite:///<FRAUDKIT_HOME>/mlflow.db``.

    Raises
    ------
    ConfigurationError
        If ``MLFLOW_TRACKING_URI`` has a scheme MLflow cannot use.
    """
    uri = os.environ.get(ENV_TRACKING_URI, "").strip()
    if not uri:
        return "sqlite:///" + str(fraudkit_home() / "mlflow.db")
    scheme = urlparse(uri).scheme.lower()
    if scheme == "sqlite":
        return _absolute_sqlite(uri)
    if scheme in ("http", "https", "file", "databricks") or scheme.startswith(
        ("postgresql", "mysql", "mssql")
    ):
        return uri
    if scheme == "" and not uri.startswith("/"):
        raise ConfigurationError(
            f"MLFLOW_TRACKING_URI={redact_uri(uri)!r} has no scheme; use e.g. "
            "http://127.0.0.1:5000 or sqlite:////abs/path/mlflow.db"
        )
    if scheme == "":
        return uri
    raise ConfigurationError(
        f"MLFLOW_TRACKING_URI has unsupported scheme {scheme!r}; use http(s)://, "
        "sqlite:///, postgresql://, mysql:// or file://"
    )


def apply_http_defaults() -> None:
    """Set :data:`HTTP_DEFAULTS` in the environment for the variables not already set.

    MLflow reads these variables at each request, and the notebook kernels the runner
    starts inherit them.
    """
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def is_remote(uri: str) -> bool:
    """Whether ``uri`` points at a tracking server (artifacts handled by the server)."""
    return urlparse(uri).scheme.lower() in ("http", "https", "databricks")


def artifact_root(uri: str | None = None) -> str | None:
    """Return the absolute artifact location for new experiments, or None.

    A tracking server chooses (and proxies) its own artifact store, so None is returned
    for remote URIs; local stores get ``<FRAUDKIT_HOME>/mlartifacts``.
    """
    if is_remote(uri or tracking_uri()):
        return None
    return (fraudkit_home() / "mlartifacts").as_uri()


def redact_uri(uri: str) -> str:
    """Return ``uri`` with any password or token in its user-info replaced by ``***``."""
    parsed = urlparse(uri)
    if parsed.password is None and not parsed.username:
        return uri
    host = parsed.hostname or ""
    if parsed.port:
        host = f"{host}:{parsed.port}"
    user = parsed.username or ""
    userinfo = f"{user}:***" if parsed.password is not None else "***"
    return parsed._replace(netloc=f"{userinfo}@{host}").geturl()


def redact_secrets(text: str, uri: str) -> str:
    """Return ``text`` with the password or token of ``uri`` replaced by ``***`` everywhere.

    For messages that may quote ``uri`` in any form (MLflow's errors repeat the URL they
    requested, credentials included).
    """
    parsed = urlparse(uri)
    secret = parsed.password if parsed.password is not None else parsed.username
    if not secret:
        return text
    for form in (secret, unquote(secret)):
        text = text.replace(form, "***")
    return text
