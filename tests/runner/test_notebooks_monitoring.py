"""The monitoring and retraining notebooks, executed for real on the embedded store.

A notebook execution costs ~15 s of kernel start-up and imports before any work, so the
file runs five: training then monitoring without drift, and the drift loop of the quick
pipeline (training -> monitoring -> retraining) once.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fraudkit import mlflow_manager
from fraudkit.core.config import notebooks_dir
from fraudkit.runner.execution import run_notebook
from fraudkit.runner.parameters import NOTEBOOKS
from fraudkit.runner.pipeline import QUICK_PARAMETERS, run_pipeline

pytestmark = pytest.mark.notebook

MODEL = "credit_card_fraud_detector"
MONITORING_FIGURES = {
    "plots/window_metrics.png",
    "plots/estimate_vs_realised.png",
    "plots/card_precision_by_window.png",
    "plots/alert_rate.png",
    "plots/feature_drift.png",
    "plots/version_history.png",
}


@pytest.fixture
def store(backend):
    """The default manager; notebook tests run on the embedded store only."""
    return mlflow_manager


def _by_step(run_id: str, metric: str) -> dict[int, float]:
    return {m.step: m.value for m in mlflow_manager.client.get_metric_history(run_id, metric)}


def _artifacts(run_id: str, path: str) -> set[str]:
    return {a.path for a in mlflow_manager.client.list_artifacts(run_id, path)}


def _summary(run_id: str, folder: Path) -> dict:
    path = mlflow_manager.client.download_artifacts(run_id, "summary.json", str(folder))
    return json.loads(Path(path).read_text())


def _check_monitoring_run(
    run_id: str, n_windows: int, label_delay: int, version: str, folder: Path
) -> dict:
    """Assert what every monitoring run of ``version`` must leave behind; return its summary."""
    run = mlflow_manager.get_run(run_id)
    assert run.info.status == "FINISHED"
    monitored = mlflow_manager.client.get_model_version(MODEL, version)
    windows = list(range(n_windows))
    labelled = windows[: n_windows - label_delay]
    # Realised metrics only where labels have arrived; estimates, with intervals, everywhere.
    assert sorted(_by_step(run_id, "average_precision")) == labelled
    assert _by_step(run_id, "labels_used") == {w: float(w in labelled) for w in windows}
    for metric in (
        "estimated_average_precision",
        "estimated_average_precision_lower",
        "estimated_average_precision_upper",
        "estimate_reliable",
        "share_drifted",
        "prediction_ks",
        "alert_retraining_recommended",
    ):
        assert sorted(_by_step(run_id, metric)) == windows, metric
    # Linked to the version: the registry's history holds every window.
    tags = run.data.tags
    assert tags["fraudkit.model_name"] == MODEL
    assert tags["fraudkit.model_version"] == version
    history = mlflow_manager.get_model_performance_history(MODEL, metrics=["average_precision"])
    mine = history[history["run_id"] == run_id]
    assert sorted(mine["step"]) == labelled
    assert set(mine["source"]) == {"monitoring"}
    assert set(mine["version"]) == {int(version)}
    assert run.data.params["model_version"] == version
    assert float(run.data.params["threshold"]) == pytest.approx(
        mlflow_manager.get_run(monitored.run_id).data.metrics["threshold"]
    )
    assert MONITORING_FIGURES <= _artifacts(run_id, "plots")
    summary = _summary(run_id, folder)
    assert summary["n_windows"] == n_windows
    assert summary["model_version"] == version
    assert summary["label_delay"] == label_delay
    assert summary["windows_judged_on_estimates"] == windows[n_windows - label_delay :]
    assert isinstance(summary["retraining_recommended"], bool)
    verdict = summary["retraining_recommended"]
    assert tags["fraudkit.summary.retraining_recommended"] == str(verdict)
    assert run.data.metrics["retraining_recommended"] == float(verdict)
    assert summary["retraining_windows"] == [
        step
        for step, value in sorted(_by_step(run_id, "alert_retraining_recommended").items())
        if value
    ]
    return summary


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_monitoring_without_drift_recommends_no_retraining(store, tmp_path):
    small = {"n_transactions": 20_000, "fraud_rate": 0.01}
    training = run_notebook("training", small, progress=False)
    result = run_notebook(
        "monitoring",
        {"n_windows": 4, "window_size": 10_000, "drift_scenario": "none", "fraud_rate": 0.01},
        progress=False,
    )
    assert store.get_version_by_alias(MODEL, "production").run_id == training.run_id
    summary = _check_monitoring_run(result.run_id, 4, 2, "1", tmp_path)
    assert summary["retraining_recommended"] is False
    assert summary["performance_drop_windows"] == []
    assert summary["drift_scenario"] == "none"
    # Undrifted windows: the model keeps its test-period AUPRC within the tolerance.
    baseline = store.get_run(training.run_id).data.metrics["average_precision"]
    assert all(v > 0.75 * baseline for v in _by_step(result.run_id, "average_precision").values())


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_quick_pipeline_detects_drift_retrains_and_promotes(store, tmp_path, monkeypatch):
    # The loop under test only: comparison and A/B notebooks are tested elsewhere and would
    # double the cost; the pipeline runs whichever notebooks the folder holds.
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("training", "monitoring", "retraining"):
        shutil.copy(notebooks_dir() / NOTEBOOKS[name], folder)
    monkeypatch.setenv("FRAUDKIT_NOTEBOOKS_DIR", str(folder))

    result = run_pipeline(quick=True, progress=False)

    assert [r.notebook for r in result.runs] == ["training", "monitoring", "retraining"]
    _, monitoring, retraining = result.runs

    # Monitoring: drift injected from window 3 of 6 is caught there, and not before.
    quick = QUICK_PARAMETERS["monitoring"]
    n_windows, onset, delay = (quick[k] for k in ("n_windows", "drift_start", "label_delay"))
    summary = _check_monitoring_run(monitoring.run_id, n_windows, delay, "1", tmp_path)
    recommended = _by_step(monitoring.run_id, "alert_retraining_recommended")
    assert [recommended[w] for w in range(onset)] == [0.0] * onset
    # Drifted windows with labels show the drop; the newest, judged on the label-free
    # estimate alone, may not (a new fraud pattern is scored as legitimate).
    assert all(recommended[w] == 1.0 for w in range(onset, n_windows - delay))
    assert summary["retraining_recommended"] is True
    assert summary["drift_scenario"] == "new_fraud_pattern"
    assert store.get_run(monitoring.run_id).data.tags["fraudkit.pipeline_id"] == result.pipeline_id

    # Retraining: triggered by that run, on its drift, and the successor won and was promoted.
    run = store.get_run(retraining.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["monitoring_run_id"] == monitoring.run_id
    # Its own parameters as the runner logged them; the traffic it reproduced, read from
    # the monitoring run, as traffic.*.
    watched = store.get_run(monitoring.run_id).data.params
    assert params["drift_scenario"] == "new_fraud_pattern"
    for key in ("drift_scenario", "drift_severity", "seed", "n_windows", "window_size"):
        assert params[f"traffic.{key}"] == watched[key], key
    outcome = _summary(retraining.run_id, tmp_path)
    assert outcome["winner"] == "B" and outcome["statistical_significance"] is True
    assert outcome["p_value"] < 0.05
    assert outcome["promoted"] is True
    assert outcome["new_version"] == "2" and outcome["parent_version"] == "1"
    metrics = run.data.metrics
    # Better AUPRC than production on the same fresh window of drifted traffic.
    assert metrics["average_precision"] > metrics["production_average_precision"] + 0.1
    assert metrics["average_precision"] <= metrics["bayes_average_precision"] + 0.05
    # The summary names the change for what it is: absolute AUPRC points on that window.
    assert "improvement" not in outcome
    assert outcome["auprc_difference"] == pytest.approx(
        metrics["average_precision"] - metrics["production_average_precision"]
    )

    # Registry: production moved to the new version, with its lineage and evidence.
    production = store.get_version_by_alias(MODEL, "production")
    assert str(production.version) == "2" and production.run_id == retraining.run_id
    assert sorted(production.aliases) == ["production", "staging"]
    assert production.tags["fraudkit.parent_version"] == "1"
    assert production.tags["fraudkit.monitoring_run_id"] == monitoring.run_id
    moves = store.alias_history(MODEL, "production")
    assert list(moves["to"]) == ["1", "2"]
    assert moves["evidence_run_id"].iloc[-1] == retraining.run_id
    # The new version is monitorable: it carries a threshold and a reference sample.
    assert "threshold" in metrics
    assert not store.load_frame(retraining.run_id, "reference").empty

    # The report index shows the monitoring run's figures.
    page = result.index.read_text()
    parser = _Images()
    parser.feed(page)
    shown = [src for src in parser.sources if src.startswith(f"runs/{monitoring.run_name}/")]
    assert len(shown) == len(MONITORING_FIGURES)
    assert all((result.index.parent / src).is_file() for src in shown)
