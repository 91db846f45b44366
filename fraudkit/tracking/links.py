"""Links into the MLflow UI's machine-learning view (see :mod:`fraudkit.tracking.ui` for why
every link carries ``workflowType=machine_learning``).

Pure string work on the store's address: no MLflow import, no manager, so any layer that
writes a link (the report index, a model card) can use it.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlparse

from fraudkit.core import config
from fraudkit.core.exceptions import ConfigurationError

__all__ = ["ML_WORKFLOW", "experiment_url", "run_url", "ui_address"]

#: The ``workflowType`` query value of the UI's "Model training" view.
ML_WORKFLOW = "machine_learning"


def _ui_base(base_url: str) -> str:
    parsed = urlparse(str(base_url).strip())
    if parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(
            f"MLflow UI address {base_url!r} is not an http(s) URL; pass the server's "
            "address, e.g. http://127.0.0.1:5000"
        )
    host = parsed.hostname
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parsed.port:
        host = f"{host}:{parsed.port}"
    # Credentials never go into a link a page shows; query and fragment are the UI's own.
    return f"{parsed.scheme.lower()}://{host}{parsed.path.rstrip('/')}"


def _segment(value: str, what: str) -> str:
    text = str(value).strip()
    if not text:
        raise ConfigurationError(f"{what} is empty; pass the id MLflow gave it")
    return quote(text, safe="")


def experiment_url(base_url: str, experiment_id: str, run_id: str | None = None) -> str:
    """Return the MLflow UI link to an experiment (or one of its runs) in the ML view.

    Parameters
    ----------
    base_url : str
        The MLflow server's address, e.g. ``http://127.0.0.1:5000`` (a path prefix is
        kept; user-info, query and fragment are dropped, so no credential ends up in a
        link).
    experiment_id : str
        The experiment's id.
    run_id : str, optional
        A run of that experiment: link to the run's page instead.

    Returns
    -------
    str
        ``<base>/#/experiments/<id>?workflowType=machine_learning`` or
        ``<base>/#/experiments/<id>/runs/<run_id>?workflowType=machine_learning``.

    Raises
    ------
    ConfigurationError
        If ``base_url`` is not an http(s) URL or an id is empty.
    """
    route = f"/experiments/{_segment(experiment_id, 'experiment id')}"
    if run_id is not None:
        route += f"/runs/{_segment(run_id, 'run id')}"
    # The UI routes inside the fragment, so its query goes after the hash route.
    return f"{_ui_base(base_url)}/#{route}?{urlencode({'workflowType': ML_WORKFLOW})}"


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    """Return the MLflow UI link to run ``run_id`` in the machine-learning view.

    See :func:`experiment_url` for the parameters and errors.
    """
    return experiment_url(base_url, experiment_id, run_id)


def ui_address(tracking_uri: str) -> str | None:
    """The MLflow UI of a store: a tracking server's own address; None for a local store,
    which has a UI only while `fraudkit ui` serves one."""
    return (
        tracking_uri if config.is_remote(tracking_uri) and tracking_uri.startswith("http") else None
    )
