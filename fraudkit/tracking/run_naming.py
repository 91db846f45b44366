"""The structured name and the standard tags of every run the kit starts.

A run is named ``<type>-<label>-<UTC timestamp>`` and tagged with its experiment type, its
label, the notebook and pipeline that started it (from the runner's environment) and the
git commit of the notebooks' checkout. :class:`~fraudkit.tracking.manager.MlflowManager`
offers both as ``run_name`` and ``run_tags``.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from datetime import UTC, datetime

from fraudkit.core import config
from fraudkit.core.config import ExperimentType
from fraudkit.core.tags import (
    EXPERIMENT_TYPE_TAG,
    GIT_COMMIT_TAG,
    LABEL_TAG,
    MLFLOW_GIT_COMMIT_TAG,
    NOTEBOOK_TAG,
    PIPELINE_TAG,
)

__all__ = ["run_name", "run_tags"]


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _label(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.@-]+", "_", str(text)).strip("_")
    return cleaned[:80] or "run"


@functools.cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=config.notebooks_dir().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_name(experiment_type: str | ExperimentType, label: str | None = None) -> str:
    """Return the structured run name ``<type>-<label>-<UTC timestamp>``."""
    kind = ExperimentType.parse(experiment_type)
    return f"{kind.value}-{_label(label or kind.value)}-{_utc_stamp()}"


def run_tags(experiment_type: str | ExperimentType, label: str | None = None) -> dict:
    """Return the standard tags of a run of ``experiment_type``."""
    kind = ExperimentType.parse(experiment_type)
    tags = {EXPERIMENT_TYPE_TAG: kind.value}
    if label:
        tags[LABEL_TAG] = str(label)
    for env, key in (
        (config.ENV_NOTEBOOK, NOTEBOOK_TAG),
        (config.ENV_PIPELINE_ID, PIPELINE_TAG),
    ):
        if os.environ.get(env):
            tags[key] = os.environ[env]
    commit = _git_commit()
    if commit:
        tags[MLFLOW_GIT_COMMIT_TAG] = commit
        tags[GIT_COMMIT_TAG] = commit
    return tags
