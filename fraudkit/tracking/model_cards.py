"""A model card for every registered version, logged when it is registered.

:func:`card_evidence` measures what the card reports from the model and its data (before
anything is logged: a failure leaves nothing behind); :func:`log_model_card` adds what the
registry knows (the version, its run's metrics and threshold rule, its alias moves) and
logs ``model_card.md``, ``model_card.html``, the reliability diagram and the facts as
artifacts of the training run, under ``model_card/v<version>/``; the version's tag
``fraudkit.model_card`` names that folder. :func:`load_model_card` reads them back with the
alias history as it stands now (``fraudkit card``). Rendering is
:mod:`fraudkit.display.model_card`'s: the same facts and moves give the same bytes.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudkit.core import config
from fraudkit.core.exceptions import RegistryError
from fraudkit.core.tags import (
    MODEL_CARD_TAG,
    MODEL_CLASS_TAG,
    MODEL_ID_TAG,
    MODEL_TYPE_TAG,
)
from fraudkit.display.model_card import RELIABILITY_FILE, ModelCard, card_html, card_markdown
from fraudkit.science.schema import PRESETS, TransactionSchema
from fraudkit.science.thresholds import DEFAULT_THRESHOLD_RULE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "CARD_FILES",
    "CARD_FOLDER",
    "IMPORTANCE_ROWS",
    "card_evidence",
    "load_model_card",
    "log_model_card",
    "write_model_card",
]

#: Run artifact folder of the cards, one subfolder per version (``v3``).
CARD_FOLDER = "model_card"
#: What each card folder holds, besides :data:`~fraudkit.display.model_card.RELIABILITY_FILE`.
CARD_FILES = ("model_card.md", "model_card.html", "facts.json")
#: Most evaluation rows a permutation importance re-scores (a fixed-seed sample beyond).
IMPORTANCE_ROWS = 20_000
# The address `fraudkit ui` serves a local store's UI at: where a card's links point when
# the store is not a tracking server.
_LOCAL_UI = "http://127.0.0.1:5000"
# Threshold-choice params of a training run (the training notebook's parameters).
_RULE_PARAMS = {
    "rule": "threshold_rule",
    "target": "threshold_target",
    "review_cost": "review_cost",
}


def _period(df: pd.DataFrame, schema: TransactionSchema) -> tuple[str | None, str | None]:
    if schema.time not in df.columns or df.empty:
        return None, None
    from pandas.api.types import is_numeric_dtype

    first, last = df[schema.time].min(), df[schema.time].max()
    if is_numeric_dtype(df[schema.time]):
        # Numeric times count from the data's start, in the schema's unit (Kaggle: seconds).
        unit = schema.time_unit or "s"
        return f"{float(first):,.0f} {unit}", f"{float(last):,.0f} {unit}"
    return str(first), str(last)


def _summary(df: pd.DataFrame, name: str, schema: TransactionSchema) -> dict[str, Any]:
    """Fingerprint, period, rows and frauds of one dataset."""
    from fraudkit.science.data import data_fingerprint

    start, end = _period(df, schema)
    frauds = int(df[schema.label].sum()) if schema.label in df.columns else None
    return {
        "name": name,
        "fingerprint": data_fingerprint(df),
        "rows": len(df),
        "frauds": frauds,
        "start": start,
        "end": end,
    }


def _calibration(y: np.ndarray, p: np.ndarray, dataset: str) -> dict[str, Any]:
    """Expected against actual frauds overall and in the ten equal-width bands."""
    from fraudkit.science.metrics import calibration_bands, calibration_metrics

    summary = calibration_metrics(y, p)
    return {
        "dataset": dataset,
        "expected": summary["expected_n_fraud"],
        "actual": summary["n_fraud"],
        "brier_score": summary["brier_score"],
        "expected_calibration_error": summary["expected_calibration_error"],
        "bins": calibration_bands(y, p),
    }


def _reliability_svg(y: np.ndarray, p: np.ndarray) -> str:
    """The reliability diagram as SVG, free of dates and random ids (same data, same bytes)."""
    import matplotlib
    import matplotlib.pyplot as plt

    from fraudkit.display.plots import plot_reliability_diagram

    with matplotlib.rc_context({"svg.hashsalt": "fraudkit-model-card", "svg.fonttype": "none"}):
        figure = plot_reliability_diagram(y, {"model": p})
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(figure)
    return buffer.getvalue()


def _importances(model: Any, df: pd.DataFrame | None, label: str, dataset: str) -> dict | None:
    from fraudkit.science.importances import feature_importances
    from fraudkit.science.models import base_model

    sample = df
    if df is not None and len(df) > IMPORTANCE_ROWS:
        sample = df.sample(IMPORTANCE_ROWS, random_state=0)
    try:
        # Native importances need no data; permutation ones fail without it.
        values = feature_importances(model, sample, label=label)  # type: ignore[arg-type]
    except (KeyError, ValueError, AttributeError, TypeError):
        return None  # a model outside the kit's pipelines, or no data to permute
    final = base_model(model)
    final = final[-1] if hasattr(final, "steps") else final
    if hasattr(final, "feature_importances_"):
        method = "The forest's impurity importances (mean decrease in impurity)"
    elif hasattr(final, "coef_"):
        method = "The absolute coefficients on the scaled features (log-odds per unit)"
    else:
        method = (
            f"The mean drop in average precision when each feature is permuted, on "
            f"`{dataset}` ({0 if sample is None else len(sample):,} rows)"
        )
    return {"method": method, "values": [[str(k), float(v)] for k, v in values.items()]}


def card_evidence(
    model: Any,
    *,
    schema: TransactionSchema | None,
    evaluation: pd.DataFrame | None,
    evaluation_name: str,
    training: pd.DataFrame | None,
) -> tuple[dict[str, Any], str | None]:
    """What a version's card measures from its model and data, and its reliability diagram.

    Parameters
    ----------
    model : sklearn estimator
        The fitted model.
    schema : TransactionSchema, optional
        Its schema (default Kaggle's).
    evaluation : DataFrame, optional
        The labelled evaluation (test) period.
    evaluation_name : str
        Its dataset name.
    training : DataFrame, optional
        The training rows.

    Returns
    -------
    tuple
        The facts (``training``, ``evaluation``, ``calibration``, ``importances``,
        ``warnings``) and the diagram's SVG (None without evaluation data).
    """
    from fraudkit.science.metrics import few_frauds_message
    from fraudkit.science.models import predict_scores

    schema = schema or PRESETS["kaggle"]
    facts: dict[str, Any] = {"training": None, "evaluation": None, "calibration": None}
    svg, warnings = None, []
    for key, df, name in (
        ("training", training, "training"),
        ("evaluation", evaluation, evaluation_name),
    ):
        if df is not None:
            facts[key] = _summary(df, name, schema)
            frauds = facts[key]["frauds"]
            note = (
                None if frauds is None else few_frauds_message(frauds, len(df), f"the {name} data")
            )
            warnings += [note] if note else []
    if evaluation is not None and schema.label in evaluation.columns:
        y = evaluation[schema.label].to_numpy(dtype=int)
        p = predict_scores(model, evaluation)
        facts["calibration"] = _calibration(y, p, evaluation_name)
        if 0 < y.sum() < len(y):
            svg = _reliability_svg(y, p)
    facts["importances"] = _importances(model, evaluation, schema.label, evaluation_name)
    facts["warnings"] = warnings
    facts["schema"] = schema.name or "declared"
    return facts, svg


def _metric_rows(client: MlflowClient, model_id: str | None) -> tuple[list, int]:
    """The version's metrics with the data each was measured on, and how many name none.

    MLflow links to a logged model the metrics logged with it (with their dataset) and the
    run's metrics logged before it (without one). The card keeps those with a dataset and
    the validation period's (``val_``, as the training notebook logs them); the others (a
    retraining run's champion metrics, say) say nothing about this version's data.
    """
    found: dict[str, dict[str, Any]] = {}
    others = set()
    for metric in client.get_logged_model(model_id).metrics or [] if model_id else []:
        if metric.dataset_name:
            dataset = f"{metric.dataset_name} (digest {metric.dataset_digest})"
        elif metric.key.startswith("val_"):
            dataset = "the validation period"
        else:
            others.add(metric.key)
            continue
        found[metric.key] = {"name": metric.key, "value": metric.value, "dataset": dataset}
    rows = sorted(found.values(), key=lambda m: (m["name"].startswith("val_"), m["name"]))
    return rows, len(others - set(found))


def _version_facts(
    client: MlflowClient,
    mv: ModelVersion,
    run_id: str,
    evidence: dict[str, Any],
    threshold: tuple[float, str],
) -> dict[str, Any]:
    run = client.get_run(run_id)
    params = run.data.params
    model_id = mv.model_id or (mv.tags or {}).get(MODEL_ID_TAG)
    metrics, others = _metric_rows(client, model_id)
    threshold_facts: dict[str, Any] = {"value": threshold[0], "source": threshold[1]}
    for key, param in _RULE_PARAMS.items():
        value = params.get(param)
        threshold_facts[key] = float(value) if value and key != "rule" else value
    if threshold_facts["rule"] is None and threshold_facts["target"] is not None:
        # A notebook with a target and no rule parameter chose with the default rule.
        threshold_facts["rule"] = DEFAULT_THRESHOLD_RULE
    registered = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC)
    return {
        "format": 1,
        "model": {
            "name": mv.name,
            "version": str(mv.version),
            "model_id": model_id,
            "estimator": (mv.tags or {}).get(MODEL_CLASS_TAG) or "unknown",
            "model_type": (mv.tags or {}).get(MODEL_TYPE_TAG) or params.get("model_type"),
            "schema": evidence.get("schema", "kaggle"),
            "registered": registered.strftime("%Y-%m-%d %H:%M UTC"),
            "run_id": run_id,
            "experiment_id": run.info.experiment_id,
        },
        "threshold": threshold_facts,
        "metrics": metrics,
        "unattributed_metrics": others,
        **{k: v for k, v in evidence.items() if k != "schema"},
    }


def _links(client: MlflowClient, run_ids: list[str]) -> dict[str, str]:
    """Each run's MLflow UI page: the tracking server's, else where `fraudkit ui` serves it."""
    from fraudkit.tracking.links import run_url, ui_address
    from fraudkit.tracking.store import find_run

    base = ui_address(client.tracking_uri) or _LOCAL_UI
    links = {}
    for run_id in run_ids:
        run = find_run(client, run_id)
        if run is not None:
            links[run_id] = run_url(base, run.info.experiment_id, run_id)
    return links


def _missing(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _card(client: MlflowClient, facts: dict[str, Any], svg: str | None) -> ModelCard:
    """The card of ``facts`` with the version's alias moves as they stand."""
    from fraudkit.tracking.registry import alias_history

    model = facts["model"]
    history = alias_history(client, model["name"])
    mine = history[(history["to"] == model["version"]) | (history["from"] == model["version"])]
    moves = []
    for record in mine.to_dict("records"):
        # pandas' string columns hold a missing value as NaN; the card wants None.
        record = {key: None if _missing(value) else value for key, value in record.items()}
        record["time"] = record["time"].strftime("%Y-%m-%d %H:%M:%S UTC")
        moves.append(record)
    card = ModelCard(facts, moves, {}, svg)
    return replace(card, links=_links(client, card.run_ids))


def log_model_card(
    client: MlflowClient,
    mv: ModelVersion,
    run_id: str,
    evidence: tuple[dict[str, Any], str | None],
    threshold: tuple[float, str],
) -> str:
    """Log version ``mv``'s card to its training run and tag the version; return the folder.

    Parameters
    ----------
    client : MlflowClient
    mv : ModelVersion
        The new version (its tags set, its alias moved).
    run_id : str
        The run that logged it.
    evidence : tuple
        What :func:`card_evidence` returned.
    threshold : tuple
        The threshold the version is served at, and where it came from
        (``metrics['threshold']``, ``threshold=`` or the default).
    """
    facts, svg = evidence
    facts = _version_facts(client, mv, run_id, facts, threshold)
    folder = f"{CARD_FOLDER}/v{mv.version}"
    with tempfile.TemporaryDirectory() as tmp:
        write_model_card(_card(client, facts, svg), Path(tmp) / "model_card.md")
        (Path(tmp) / "facts.json").write_text(json.dumps(facts, indent=1, sort_keys=True))
        client.log_artifacts(run_id, tmp, folder)
    client.set_model_version_tag(mv.name, str(mv.version), MODEL_CARD_TAG, folder)
    return folder


def load_model_card(uri: str, *, client: MlflowClient | None = None) -> ModelCard:
    """The card of the version ``uri`` names, with its alias history brought up to date.

    Parameters
    ----------
    uri : str
        ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``.
    client : MlflowClient, optional
        Default: one on the configured store.

    Raises
    ------
    RegistryError
        The URI names no registered version, or the version has no card (it was
        registered before model cards; register it again to get one).
    """
    import mlflow

    from fraudkit.tracking.registry import resolve_model_uri
    from fraudkit.tracking.store import quiet_downloads

    client = client or mlflow.MlflowClient(config.tracking_uri())
    mv = resolve_model_uri(client, uri)
    if mv is None:
        raise RegistryError(
            f"{uri!r} names no registered version; pass models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    folder = (mv.tags or {}).get(MODEL_CARD_TAG)
    if not folder or not mv.run_id:
        raise RegistryError(
            f"{mv.name} version {mv.version} has no model card: it was registered before "
            "fraudkit logged them. Log the model again with log_model_with_metadata to get one"
        )
    with tempfile.TemporaryDirectory() as tmp, quiet_downloads():
        local = Path(client.download_artifacts(mv.run_id, folder, tmp))
        facts = json.loads((local / "facts.json").read_text())
        svg_path = local / RELIABILITY_FILE
        svg = svg_path.read_text() if svg_path.exists() else None
    return _card(client, facts, svg)


def write_model_card(card: ModelCard, path: str | Path) -> Path:
    """Write ``card`` to ``path``: HTML for ``.html``, else Markdown with its diagram beside.

    A Markdown card is written with ``model_card.html`` and ``reliability.svg`` next to it
    when ``path`` is named ``model_card.md`` (the logged layout); otherwise only the diagram
    joins it.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(card_html(card), encoding="utf-8")
        return path
    path.write_text(card_markdown(card), encoding="utf-8")
    if path.name == "model_card.md":
        (path.parent / "model_card.html").write_text(card_html(card), encoding="utf-8")
    if card.reliability_svg is not None:
        (path.parent / RELIABILITY_FILE).write_text(card.reliability_svg, encoding="utf-8")
    return path
