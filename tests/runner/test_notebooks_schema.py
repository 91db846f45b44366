"""The notebooks on data that is not Kaggle's: a CSV shaped like IEEE-CIS with its schema
file (training, then monitoring), and the whole pipeline on the entity simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.ieee import ieee_like_frame, write_ieee_like

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.runner.execution import run_notebook
from fraudkit.runner.pipeline import run_pipeline
from fraudkit.science.schema import PRESETS
from fraudkit.tracking.aliased import load_alias
from fraudkit.tracking.model_packaging import read_definitions, read_simulation
from fraudkit.tracking.registry import load_model

pytestmark = pytest.mark.notebook

MODEL = "credit_card_fraud_detector"


def _summary(run_id: str, folder: Path) -> dict:
    path = mlflow_manager.client.download_artifacts(run_id, "summary.json", str(folder))
    return json.loads(Path(path).read_text())


def _steps(run_id: str, metric: str) -> dict[int, float]:
    return {m.step: m.value for m in mlflow_manager.client.get_metric_history(run_id, metric)}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_ieee_shaped_file_trains_and_is_monitored(backend, tmp_path):
    path, schema = write_ieee_like(tmp_path, n_cards=1_500, days=30)
    training = run_notebook(
        "training", {"data_path": str(path), "schema": str(schema)}, progress=False
    )
    run = mlflow_manager.get_run(training.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["schema"] == str(schema)
    assert run.data.params["features.entities"] == "card1,addr1"
    # Fraud shows only in card velocity, and the behavioural features see it.
    metrics = run.data.metrics
    assert metrics["average_precision"] > 0.5
    assert "bayes_average_precision" not in metrics  # a file has no known ceiling
    # Without the behavioural features the same model sees next to nothing.
    assert metrics["average_precision_without_behaviour"] < 0.3 * metrics["average_precision"]
    definitions = {
        a.path for a in mlflow_manager.client.list_artifacts(run.info.run_id, "definitions")
    }
    assert definitions == {"definitions/schema.yaml", "definitions/features.yaml"}
    stored = mlflow_manager.client.download_artifacts(
        run.info.run_id, "definitions/schema.yaml", str(tmp_path)
    )
    assert yaml.safe_load(Path(stored).read_text())["label"] == "isFraud"

    # Later traffic in a second file; monitoring reads the schema from the version.
    later = tmp_path / "later.csv"
    ieee_like_frame(n_cards=1_500, days=12, seed=1).to_csv(later, index=False)
    monitoring = run_notebook(
        "monitoring", {"data_path": str(later), "n_windows": 3, "label_delay": 1}, progress=False
    )
    watched = mlflow_manager.get_run(monitoring.run_id)
    assert watched.info.status == "FINISHED"
    assert watched.data.params["data_schema"] == str(schema)
    assert sorted(_steps(monitoring.run_id, "average_precision")) == [0, 1]
    assert sorted(_steps(monitoring.run_id, "estimated_average_precision")) == [0, 1, 2]
    # The drift tests cover what the model reads: the amount, the behavioural features and
    # the two categorical columns.
    inputs = mlflow_manager.get_run(training.run_id).data.params
    n_inputs = 1 + len(inputs["features.entities"].split(",")) * 23 + 2
    assert set(_steps(monitoring.run_id, "n_features_tested").values()) == {n_inputs}
    summary = _summary(monitoring.run_id, tmp_path)
    assert summary["drift_scenario"] == "none" and summary["n_windows"] == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_whole_story_runs_on_the_entity_simulator(backend, tmp_path):
    result = run_pipeline(quick=True, progress=False, schema="handbook")
    runs = {run.notebook: run for run in result.runs}
    assert list(runs) == [
        "training",
        "model_comparison",
        "ab_testing",
        "monitoring",
        "retraining",
    ]
    assert all(run.status == "FINISHED" for run in result.runs)
    get = mlflow_manager.get_run
    # Every model is read against the simulator's ceiling; gradient boosting on the
    # behavioural features comes close to it.
    comparison = get(runs["model_comparison"].run_id).data.metrics
    assert 0.6 < comparison["share_of_bayes_auprc"] <= 1.05
    # Prequential validation ran on the world's days: four folds, each candidate's fold
    # means and next-period interval, the paired test, the folds and their plot.
    assert comparison["prequential_n_folds"] == 4
    for model in ("logistic_regression", "hist_gradient_boosting"):
        low, mean, high = (
            comparison[f"prequential_{model}_card_precision_at_k_{stat}"]
            for stat in ("low", "mean", "high")
        )
        assert 0 <= low <= mean <= high <= 1
    assert "prequential_logistic_regression_paired_p_value" in comparison
    folds = mlflow_manager.load_frame(runs["model_comparison"].run_id, "prequential_folds")
    assert len(folds) == 8 and set(folds["fold"]) == {0, 1, 2, 3}
    assert (folds["test_first_day"] - folds["train_end_day"] == 7).all()  # the label delay
    plots = mlflow_manager.client.list_artifacts(runs["model_comparison"].run_id, "plots")
    assert "plots/fold_spread.png" in {a.path for a in plots}
    training = get(runs["training"].run_id).data.metrics
    assert training["average_precision_without_behaviour"] < training["average_precision"]
    # The A/B test promoted the comparison's winner, on fresh traffic of the same world.
    assert get(runs["ab_testing"].run_id).data.metrics["promoted"] == 1.0
    # Version 2 (the comparison's winner) carries its world, which monitoring watched.
    promoted = load_model(f"models:/{MODEL}/2")
    world = read_simulation(promoted)
    assert world == {"preset": "handbook", "n_transactions": 100_000, "seed": 0}
    assert read_definitions(promoted)[0] == PRESETS["handbook"]

    # Monitoring watched that world go on: quiet before the new fraud scheme, a drop after.
    monitoring = runs["monitoring"].run_id
    assert get(monitoring).data.params["data_schema"] == "handbook"
    recommended = _steps(monitoring, "alert_retraining_recommended")
    onset = 3  # QUICK_PARAMETERS["monitoring"]["drift_start"]
    assert [recommended[w] for w in range(onset)] == [0.0] * onset
    assert recommended[onset] == 1.0
    before = [v for w, v in _steps(monitoring, "average_precision").items() if w < onset]
    after = [v for w, v in _steps(monitoring, "average_precision").items() if w >= onset]
    assert min(before) > max(after) + 0.2

    # Retraining learnt the new scheme in the same world and replaced production.
    retraining = get(runs["retraining"].run_id)
    assert retraining.data.params["data_schema"] == "handbook"
    outcome = _summary(runs["retraining"].run_id, tmp_path)
    assert outcome["promoted"] is True and outcome["auprc_difference"] > 0
    successor = load_alias(MODEL, "production")
    assert successor.version.tags["fraudkit.parent_version"] == "2"
    assert successor.simulation == world

    # The dashboard and the report index read this store as any other.
    for command in (["registry"], ["compare"], ["history", "--model-name", MODEL]):
        answer = CliRunner().invoke(cli, ["dashboard", *command])
        assert answer.exit_code == 0, answer.output
    assert "hist_gradient_boosting" in CliRunner().invoke(cli, ["dashboard", "registry"]).output
    page = result.index.read_text()
    assert all(run.run_name in page for run in result.runs)
