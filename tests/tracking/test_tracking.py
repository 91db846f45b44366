"""MlflowManager against the embedded SQLite store and a real mlflow server."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from fraudkit import MLFLOW_EXPERIMENTS, ExperimentType, mlflow_manager
from fraudkit.core.exceptions import ConfigurationError, TrackingError
from fraudkit.core.tags import PARENT_RUN_TAG
from fraudkit.science.data import data_fingerprint
from fraudkit.science.models import predict_scores
from fraudkit.tracking.batch_logging import TRUNCATION_MARKER
from fraudkit.tracking.manager import MlflowManager


@pytest.fixture(scope="module")
def toy_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 4)), columns=["V1", "V2", "V3", "Amount"])
    label = pd.Series((frame["V1"] + rng.normal(scale=0.5, size=400) > 1.0).astype(int))
    return frame, label


@pytest.fixture(scope="module")
def hgb_model(toy_data):
    frame, label = toy_data
    return HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, label)


def _client() -> MlflowClient:
    return mlflow_manager.client


def _run(run_id: str):
    return _client().get_run(run_id)


def test_setup_experiments_creates_the_seed_experiments(manager, backend, fraudkit_home):
    ids = manager.setup_experiments()
    assert set(ids) == set(MLFLOW_EXPERIMENTS)
    for key, experiment_id in ids.items():
        experiment = _client().get_experiment(experiment_id)
        assert experiment.name == MLFLOW_EXPERIMENTS[key]
        if backend == "sqlite":
            assert experiment.artifact_location == (fraudkit_home / "mlartifacts").as_uri()
    manager.reset()
    assert manager.setup_experiments() == ids  # idempotent


def test_deleted_experiment_is_restored_not_duplicated(manager):
    ids = manager.setup_experiments()
    _client().delete_experiment(ids["monitoring"])
    manager.reset()
    again = manager.setup_experiments()
    assert again["monitoring"] == ids["monitoring"]
    assert _client().get_experiment(ids["monitoring"]).lifecycle_stage == "active"


def test_experiments_are_tagged_for_the_ui_machine_learning_view(manager):
    from fraudkit.core.tags import EXPERIMENT_KIND_TAG, ML_EXPERIMENT_KIND

    ids = manager.setup_experiments()
    client = MlflowClient(tracking_uri=manager.tracking_uri)  # a plain client, not the kit's

    def kind(key: str) -> str | None:
        return client.get_experiment(ids[key]).tags.get(EXPERIMENT_KIND_TAG)

    assert {key: kind(key) for key in ids} == dict.fromkeys(ids, ML_EXPERIMENT_KIND)
    # An experiment found without the tag (made before the kit tagged, or by hand) gets
    # it; a deleted one is restored with it; a kind someone chose is left alone.
    client.delete_experiment_tag(ids["training"], EXPERIMENT_KIND_TAG)
    client.delete_experiment_tag(ids["monitoring"], EXPERIMENT_KIND_TAG)
    client.delete_experiment(ids["monitoring"])
    client.set_experiment_tag(ids["ab_testing"], EXPERIMENT_KIND_TAG, "genai_development")
    assert kind("training") is None
    manager.reset()
    assert manager.setup_experiments() == ids
    assert kind("training") == ML_EXPERIMENT_KIND
    assert kind("monitoring") == ML_EXPERIMENT_KIND
    assert client.get_experiment(ids["monitoring"]).lifecycle_stage == "active"
    assert kind("ab_testing") == "genai_development"
    client.set_experiment_tag(ids["ab_testing"], EXPERIMENT_KIND_TAG, ML_EXPERIMENT_KIND)


def test_concurrent_setup_from_two_processes(tmp_path):
    # A fresh store (no template copy) so both processes race on schema creation too.
    home = tmp_path / "race"
    home.mkdir()
    code = (
        "from fraudkit import mlflow_manager; import json; "
        "print(json.dumps(mlflow_manager.setup_experiments()))"
    )
    env = {**__import__("os").environ, "FRAUDKIT_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    first, second = (json.loads(out) for out, _ in outputs)
    assert first == second and len(first) == 5


def test_training_run_name_tags_and_finished_status(manager, monkeypatch):
    monkeypatch.setenv("FRAUDKIT_PIPELINE_ID", "pipe-123")
    with manager.start_training_run("fraud_detection_v2") as run:
        run_id = run.info.run_id
    stored = _run(run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name.startswith("training-fraud_detection_v2-")
    assert stored.info.run_name.endswith("Z")
    assert stored.data.tags["fraudkit.experiment_type"] == "training"
    assert stored.data.tags["fraudkit.pipeline_id"] == "pipe-123"
    experiment = _client().get_experiment(stored.info.experiment_id)
    assert experiment.name == "credit_card_fraud_detection"


def test_exception_inside_block_ends_run_failed_and_propagates(manager):
    with pytest.raises(ZeroDivisionError), manager.start_training_run("boom") as run:
        run_id = run.info.run_id
        _ = 1 / 0
    assert _run(run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_run_id_resumes_an_existing_run(manager):
    created = _client().create_run(manager.experiment_id("monitoring"), run_name="from-runner")
    with manager.start_monitoring_run("production_model", run_id=created.info.run_id) as run:
        assert run.info.run_id == created.info.run_id
        manager.log_metrics({"average_precision": 0.5}, step=1)
    stored = _run(created.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "from-runner"  # the runner's name is kept
    assert stored.data.tags["fraudkit.monitored_model"] == "production_model"


def test_resuming_a_run_of_another_type_is_refused(manager):
    created = _client().create_run(manager.experiment_id("training"))
    with pytest.raises(TrackingError, match="not the ab_testing experiment"):
        manager.start_ab_test_run("a", "b", run_id=created.info.run_id)


def test_seed_usage_examples(manager, hgb_model, toy_data):
    frame, _ = toy_data
    with manager.start_training_run("fraud_detection_v2") as run:
        manager.log_params(
            {"n_samples": 2000, "model_type": "RandomForest", "scaling_method": "standard"}
        )
        manager.log_metrics({"accuracy": 0.985, "fraud_f1": 0.823, "fraud_precision": 0.856})
        version = manager.log_model_with_metadata(
            model=hgb_model,
            model_name="credit_card_fraud_detector",
            metrics={"average_precision": 0.8},
            params={"learning_rate": 0.1},
            stage="Staging",
            input_example=frame,
        )
    stored = _run(run.info.run_id)
    assert stored.data.params["model_type"] == "RandomForest"
    assert stored.data.metrics["fraud_f1"] == pytest.approx(0.823)
    assert str(version.version) == "1" and "staging" in version.aliases
    with manager.start_ab_test_run("model_v1", "model_v2") as ab_run:
        manager.log_experiment_summary(
            {"winner": "B", "improvement": 0.12, "statistical_significance": True}
        )
    ab = _run(ab_run.info.run_id)
    assert ab.data.tags["fraudkit.summary.winner"] == "B"
    assert ab.data.metrics["statistical_significance"] == 1.0
    assert ab.info.run_name.startswith("ab_testing-model_v1-vs-model_v2-")
    with manager.start_monitoring_run("production_model"):
        manager.log_metrics({"average_precision": 0.7}, step=3)
    history = manager.get_model_performance_history("credit_card_fraud_detector")
    assert set(history["metric"]) >= {"average_precision", "accuracy"}
    with manager.start_comparison_run("candidates") as parent:
        with manager.start_comparison_run("child", nested=True) as child:
            manager.log_metrics({"average_precision": 0.6})
    child_run = _run(child.info.run_id)
    assert child_run.data.tags[PARENT_RUN_TAG] == parent.info.run_id
    with manager.start_retraining_run("weekly") as retrain:
        pass
    assert _run(retrain.info.run_id).data.tags["fraudkit.experiment_type"] == "retraining"


def test_batched_logging_flattens_and_records_policies(manager):
    long_value = "x" * 7000
    with (
        manager.start_training_run("policies") as run,
        pytest.warns(UserWarning, match="non-finite"),
    ):
        manager.log_params({"model": {"depth": 3, "name": "hgb"}, "long": long_value, "none": None})
        manager.log_metrics({"ok": 1.5, "flag": True, "bad": float("nan"), "big": math.inf}, step=2)
    stored = _run(run.info.run_id)
    assert stored.data.params["model.depth"] == "3"
    assert stored.data.params["none"] == "None"
    assert stored.data.params["long"].endswith(TRUNCATION_MARKER)
    assert len(stored.data.params["long"]) == 6000
    assert stored.data.tags["fraudkit.truncated_params"] == "long"
    full = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/fraudkit/params_full.json")
    assert full["long"] == long_value
    assert stored.data.metrics == {"ok": 1.5, "flag": 1.0}
    assert stored.data.tags["fraudkit.nonfinite_metrics"] == "bad=nan,big=inf"
    assert _client().get_metric_history(run.info.run_id, "ok")[0].step == 2


def test_many_values_go_in_batches(manager):
    metrics = {f"m{i}": float(i) for i in range(1500)}
    params = {f"p{i}": i for i in range(250)}
    with manager.start_training_run("many") as run:
        manager.log_metrics(metrics)
        manager.log_params(params)
    stored = _run(run.info.run_id)
    assert len(stored.data.metrics) == 1500 and len(stored.data.params) == 250


def test_non_numeric_metric_and_logging_without_run_are_errors(manager):
    with pytest.raises(TrackingError, match="no active run"):
        manager.log_metrics({"a": 1})
    with manager.start_training_run("bad"), pytest.raises(TrackingError, match="non-numeric"):
        manager.log_metrics({"a": "high"})


def test_log_artifacts_files_dirs_figures_and_missing_paths(manager, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("hello")
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    with manager.start_training_run("artifacts") as run:
        manager.log_artifacts({"reports": report, "tables": folder, "curve": figure})
        with pytest.raises(TrackingError, match="does not exist"):
            manager.log_artifacts({"ok": report, "missing": tmp_path / "nope.png"})
    plt.close(figure)
    names = {a.path for a in _client().list_artifacts(run.info.run_id)}
    assert names == {"reports", "tables", "curve.png"}
    assert [a.path for a in _client().list_artifacts(run.info.run_id, "tables")] == ["tables/a.csv"]
    assert [a.path for a in _client().list_artifacts(run.info.run_id, "ok")] == []


def test_log_dataset_records_schema_profile_and_fingerprints(manager):
    from fraudkit.science.data import data_fingerprint
    from fraudkit.science.transactions import load_or_simulate
    from fraudkit.tracking.model_logging import SCHEMA_SAMPLE_ROWS

    frame = load_or_simulate(None, n_transactions=3 * SCHEMA_SAMPLE_ROWS, seed=1).frame
    test = frame.tail(500)
    with warnings.catch_warnings():
        # MLflow's integer-column hint would otherwise land in every notebook report.
        warnings.simplefilter("error", UserWarning)
        with manager.start_training_run("datasets") as run:
            train_print = manager.log_dataset(frame, name="train", context="training")
            test_print = manager.log_dataset(test, name="test", context="test")
    recorded = _run(run.info.run_id)
    inputs = {d.dataset.name: d for d in recorded.inputs.dataset_inputs}
    assert set(inputs) == {"train", "test"}
    train = inputs["train"].dataset
    # The schema comes from a sample, the profile and digest from every row.
    schema = {c["name"]: c["type"] for c in json.loads(train.schema)["mlflow_colspec"]}
    assert schema == {
        "Time": "double",
        **{f"V{i}": "double" for i in range(1, 29)},
        "Amount": "double",
        "Class": "long",
    }
    assert json.loads(train.profile) == {"num_rows": len(frame), "num_elements": frame.size}
    assert train.digest == train_print == data_fingerprint(frame)
    assert inputs["test"].tags[0].value == "test"
    tags = recorded.data.tags
    assert tags["fraudkit.data_fingerprint"] == train_print
    assert tags["fraudkit.data_fingerprint.training"] == train_print
    assert tags["fraudkit.data_fingerprint.test"] == test_print != train_print


def test_log_model_with_metadata_hist_gradient_boosting_loads_by_alias(
    manager, hgb_model, toy_data, capfd
):
    frame, _ = toy_data
    version = manager.log_model_with_metadata(
        hgb_model,
        "fraud_hgb",
        metrics={"average_precision": 0.9},
        stage="staging",
        input_example=frame,
    )
    assert version.aliases == ["staging"]
    run = _run(version.run_id)
    assert run.info.status == "FINISHED"  # the call started and ended its own run
    assert run.data.tags["fraudkit.experiment_type"] == "training"
    loaded = mlflow.pyfunc.load_model("models:/fraud_hgb@staging")
    decided = loaded.predict(frame.head(10))
    # A bare classifier has no reasons to give, and no threshold was chosen: 0.5.
    assert list(decided.columns) == ["fraud_probability", "alert", "threshold", "model_version"]
    proba = hgb_model.predict_proba(frame.head(10))[:, 1]
    np.testing.assert_allclose(decided["fraud_probability"], proba, rtol=1e-9)
    assert decided["alert"].tolist() == (proba >= 0.5).tolist()
    assert set(decided["threshold"]) == {0.5} and set(decided["model_version"]) == {"1"}
    # Scoring transactions that carry more than the signature (Time, Class) is quiet.
    capfd.readouterr()
    extra = frame.head(10).assign(Time=1.0, Class=0)
    np.testing.assert_allclose(predict_scores(loaded, extra), proba, rtol=1e-9)
    assert "not defined in the model signature" not in capfd.readouterr().err
    flavor = mlflow.models.get_model_info("models:/fraud_hgb@staging").flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    moves = manager.alias_history("fraud_hgb")
    assert moves.iloc[-1][["alias", "from", "to"]].tolist() == ["staging", None, "1"]


def test_log_model_links_evaluation_metrics_to_the_model_and_dataset(manager, hgb_model, toy_data):
    frame, label = toy_data
    holdout = frame.assign(Class=label).tail(150)
    digest = data_fingerprint(holdout)
    metrics = {"average_precision": 0.9, "roc_auc": 0.95}
    with manager.start_training_run("linked") as run:
        # Recorded already (as the notebooks record their test period): not recorded twice.
        manager.log_dataset(holdout, name="holdout", context="test")
        version = manager.log_model_with_metadata(
            hgb_model,
            "fraud_linked",
            metrics=metrics,
            input_example=frame,
            evaluation_dataset=holdout,
            evaluation_dataset_name="holdout",
        )
    tags = version.tags
    assert (tags["fraudkit.eval_dataset"], tags["fraudkit.eval_digest"]) == ("holdout", digest)
    model_id = tags["fraudkit.model_id"]
    logged = _client().get_logged_model(model_id)
    linked = {
        (m.key, m.value, m.model_id, m.dataset_name, m.dataset_digest) for m in logged.metrics
    }
    assert linked == {(key, value, model_id, "holdout", digest) for key, value in metrics.items()}
    stored = _run(run.info.run_id)
    assert stored.data.metrics == metrics  # the run shows them as before
    assert [(d.dataset.name, d.dataset.digest) for d in stored.inputs.dataset_inputs] == [
        ("holdout", digest)
    ]
    assert stored.data.tags["fraudkit.data_fingerprint.evaluation"] == digest

    with pytest.raises(TrackingError, match="evaluation_dataset is a list; pass the labelled"):
        manager.log_model_with_metadata(hgb_model, "never", evaluation_dataset=[1.0, 2.0])
    assert _client().search_registered_models(filter_string="name = 'never'") == []


def test_reference_keeps_transactions_with_the_model_scores(manager, hgb_model, toy_data):
    frame, label = toy_data
    reference = frame.assign(Class=label).tail(100)
    scores = predict_scores(hgb_model, reference)
    with manager.start_training_run("reference") as run:
        assert manager.log_reference(reference, scores) == run.info.run_id
    loaded, loaded_scores = manager.load_reference(run.info.run_id)
    pd.testing.assert_frame_equal(loaded, reference.reset_index(drop=True))
    np.testing.assert_array_equal(loaded_scores, scores)
    # The frame alone reads as before, so older readers of "reference" keep working.
    pd.testing.assert_frame_equal(manager.load_frame(run.info.run_id, "reference"), loaded)

    with manager.start_training_run("bad reference") as bad:
        for wrong in (scores[:-1], np.where(scores > 0.5, np.nan, scores), ["high"] * 100):
            with pytest.raises(TrackingError, match=r"one finite number per row .*predict_scores"):
                manager.log_reference(reference, wrong)
        manager.log_frame(reference, "reference")  # an older kit kept no scores
    assert [a.path for a in _client().list_artifacts(bad.info.run_id, "data")] == [
        "data/reference.parquet"
    ]
    with pytest.raises(
        TrackingError,
        match=r"holds no monitoring reference with scores \(no artifact "
        r"data/reference_scores\.parquet\); .*mlflow_manager\.log_reference\(frame, ",
    ):
        manager.load_reference(bad.info.run_id)


def test_log_model_without_input_example_uses_feature_names(manager, toy_data):
    frame, label = toy_data
    model = LogisticRegression().fit(frame, label)
    version = manager.log_model_with_metadata(model, "fraud_lr", stage="Production")
    info = mlflow.models.get_model_info(f"models:/fraud_lr/{version.version}")
    assert info.signature.inputs.input_names() == list(frame.columns)
    assert "production" in version.aliases


@pytest.mark.parametrize("stage", ["Archived", "prod", ""])
def test_unknown_stage_is_refused_before_anything_is_logged(manager, hgb_model, stage):
    manager.setup_experiments()
    with pytest.raises(ConfigurationError, match="Staging, Production"):
        manager.log_model_with_metadata(hgb_model, "never", stage=stage)
    runs = _client().search_runs([manager.experiment_id("training")])
    assert runs == []
    assert _client().search_registered_models(filter_string="name = 'never'") == []


def test_log_model_requires_a_classifier(manager):
    with pytest.raises(TrackingError, match="predict_proba"):
        manager.log_model_with_metadata(object(), "bad")


def test_experiment_type_parsing():
    assert ExperimentType.parse("ab-testing") is ExperimentType.AB_TESTING
    assert ExperimentType.parse("credit_card_fraud_monitoring") is ExperimentType.MONITORING
    with pytest.raises(ConfigurationError, match="training, ab_testing"):
        ExperimentType.parse("scoring")


def test_importing_fraudkit_touches_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = "import fraudkit; fraudkit.mlflow_manager; import fraudkit.tracking.manager"
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=empty,
        check=True,
        env={**__import__("os").environ, "FRAUDKIT_HOME": str(empty)},
    )
    assert list(empty.iterdir()) == []


def test_explicit_tracking_uri(tmp_path):
    manager = MlflowManager(tracking_uri=f"sqlite:///{tmp_path / 'other.db'}")
    manager.setup_experiments()
    assert (tmp_path / "other.db").exists()


def test_first_use_of_a_store_creates_all_five_experiments(manager, backend):
    client = manager.client  # opening the store alone creates nothing
    if backend == "sqlite":  # the shared server keeps earlier tests' experiments
        assert [e.name for e in client.search_experiments()] in ([], ["Default"])
    with manager.start_monitoring_run("first_use"):
        pass
    names = {e.name for e in client.search_experiments()}
    assert set(MLFLOW_EXPERIMENTS.values()) <= names


def test_reset_forgets_the_store_and_ends_active_runs(manager):
    ids = manager.setup_experiments()
    run = manager.start_training_run("left_open")
    manager.reset()
    assert mlflow.active_run() is None
    assert _run(run.info.run_id).info.status == "FINISHED"
    _client().delete_experiment(ids["training"])
    manager.reset()
    assert manager.setup_experiments() == ids  # looked up again, the deleted one restored


def test_registry_methods_are_written_out_with_real_signatures():
    import inspect

    from fraudkit.tracking import history, promotion, registry

    assert "__getattr__" not in vars(MlflowManager)
    owners = {
        "promote_model": promotion,
        "rollback_model": registry,
        "compare_model_versions": history,
        "get_model_performance_history": history,
        "detect_performance_degradation": history,
        "get_registry_overview": history,
        "alias_history": registry,
        "link_run_to_version": registry,
        "get_version_by_alias": registry,
        "resolve_model_uri": registry,
    }
    for name, module in owners.items():
        method = inspect.signature(getattr(MlflowManager, name))
        function = inspect.signature(getattr(module, name))
        # The same parameters, the client bound from the manager in place of self.
        assert list(method.parameters)[1:] == list(function.parameters)[1:], name
        assert getattr(MlflowManager, name).__doc__, name


def test_latest_finished_run(manager, backend):
    from fraudkit.tracking.manager import latest_finished_run

    assert latest_finished_run("monitoring") is None
    if backend == "sqlite":  # reading created nothing
        assert manager.client.get_experiment_by_name(MLFLOW_EXPERIMENTS["monitoring"]) is None
    with manager.start_monitoring_run("older") as older:
        manager.set_tags({"fraudkit.summary.retraining_recommended": "True"})
    with manager.start_monitoring_run("newer") as newer:
        pass
    with pytest.raises(ZeroDivisionError), manager.start_monitoring_run("failed"):
        1 / 0  # noqa: B018
    manager.start_monitoring_run("running")
    found = latest_finished_run(ExperimentType.MONITORING, client=manager.client)
    assert found.info.run_id == newer.info.run_id
    recommended = "tags.`fraudkit.summary.retraining_recommended` = 'True'"
    found = latest_finished_run("monitoring", filter_string=recommended)
    assert found.info.run_id == older.info.run_id
    assert latest_finished_run("training") is None
    with pytest.raises(ConfigurationError, match="unknown experiment type"):
        latest_finished_run("scoring")
