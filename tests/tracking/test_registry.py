"""Model lifecycle (gates, rollback, comparison, history) on SQLite and a real mlflow server."""

from __future__ import annotations

import getpass
import math
import time
import warnings

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from sklearn.linear_model import LogisticRegression

from fraudkit.core.exceptions import (
    ConfigurationError,
    DataValidationError,
    ModelError,
    PromotionRefused,
    RegistryError,
)
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.science.data import data_fingerprint, time_split
from fraudkit.science.metrics import evaluate
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.tracking import registry, store
from fraudkit.tracking.history import HISTORY_COLUMNS
from fraudkit.tracking.versions import (
    SourceRun,
    VersionRecord,
    comparison_frame,
    comparison_rows,
    registry_rows,
)

NAME = "fraud_lifecycle"


@pytest.fixture(scope="module")
def toy_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["V1", "V2", "Amount"])
    label = pd.Series((frame["V1"] + rng.normal(scale=0.5, size=200) > 0.8).astype(int))
    return frame, label


@pytest.fixture(scope="module")
def fitted(toy_data) -> LogisticRegression:
    frame, label = toy_data
    return LogisticRegression().fit(frame, label)


def _register(manager, metrics: dict, name: str = NAME, params: dict | None = None) -> str:
    """Register a version backed by a training run holding ``metrics``; return its number.

    Registry logic reads runs, aliases and tags only, so most tests skip the model
    artifact (logging one costs ~0.3 s) and the run starter; test_gate_* log real models.
    Such a version has no recorded evaluation dataset ("unknown data" to the gate).
    """
    client = manager.client
    run_id = client.create_run(manager.experiment_id("training")).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)) for k, v in (params or {"model_type": "lr"}).items()],
    )
    if not client.search_registered_models(filter_string=f'name = "{name}"'):
        client.create_registered_model(name)
    return str(client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id).version)


def _register_many(manager, values: list[float], name: str = NAME) -> list[str]:
    return [_register(manager, {"average_precision": v}, name) for v in values]


def _holder(manager, stage: str = "Production", name: str = NAME) -> str | None:
    mv = manager.get_version_by_alias(name, stage)
    return None if mv is None else str(mv.version)


def _ab_run(manager, **summary) -> str:
    with manager.start_ab_test_run("v1", "v2") as run:
        manager.log_experiment_summary(summary)
    return run.info.run_id


def _monitor(manager, version: str, values: list[float], name: str = NAME, **extra) -> str:
    """A monitoring run measuring ``version`` at steps 0..n-1, linked to it."""
    with manager.start_monitoring_run(name) as run:
        for step, value in enumerate(values):
            manager.log_metrics({"average_precision": value, **extra}, step=step)
    manager.link_run_to_version(run.info.run_id, name, version)
    return run.info.run_id


def _logged(
    manager, model, metrics: dict, evaluation: pd.DataFrame | None, name: str = "test", **kwargs
) -> str:
    """Log ``model`` as a new version, its metrics measured on ``evaluation`` (or on no
    recorded dataset); return the version number."""
    if evaluation is not None:
        kwargs.setdefault("input_example", evaluation.drop(columns="Class").head(5))
    version = manager.log_model_with_metadata(
        model,
        NAME,
        metrics=metrics,
        **kwargs,
        evaluation_dataset=evaluation,
        evaluation_dataset_name=name,
    )
    return str(version.version)


def test_gate_compares_versions_measured_on_the_same_dataset(manager, fitted, toy_data):
    frame, label = toy_data
    test = frame.assign(Class=label)
    digest = data_fingerprint(test)
    champion, worse, better = (
        _logged(manager, fitted, {"average_precision": value}, test) for value in (0.80, 0.78, 0.85)
    )
    manager.promote_model(NAME, champion)
    moves = len(manager.alias_history(NAME))
    with pytest.raises(
        PromotionRefused,
        match=r"average_precision 0\.7800 vs 0\.8000 of version 1 \(difference -0\.0200 "
        rf"< required \+0\.0100\) on test \(digest {digest}, from linked metrics\)",
    ):
        manager.promote_model(NAME, worse, min_improvement=0.01)
    with pytest.raises(PromotionRefused, match=r"no roc_auc of versions 3 and 1 measured on the"):
        manager.promote_model(NAME, better, metric="roc_auc", min_improvement=0.0)
    assert _holder(manager) == "1"
    assert len(manager.alias_history(NAME)) == moves

    promoted = manager.promote_model(NAME, better, min_improvement=0.01, reason="AUPRC +0.05")
    assert str(promoted.version) == "3" and promoted.aliases == ["production"]
    last = manager.alias_history(NAME, "Production").iloc[-1]
    assert (last["from"], last["to"], last["action"]) == ("1", "3", "promote")
    assert last["reason"] == "AUPRC +0.05" and last["user"] == getpass.getuser()
    assert abs(pd.Timestamp.now(tz="UTC") - last["time"]) < pd.Timedelta(minutes=5)
    assert last["gate"] == {
        "metric": "average_precision",
        "candidate_value": 0.85,
        "holder_value": 0.80,
        "dataset": "test",
        "digest": digest,
        "source": "linked metrics",
    }
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@production").predict(frame.head(5))
    np.testing.assert_allclose(
        served["fraud_probability"], fitted.predict_proba(frame.head(5))[:, 1]
    )
    assert set(served["model_version"]) == {"3"}

    # Promoting the holder again is a no-op: nothing recorded.
    manager.promote_model(NAME, 3)
    assert len(manager.alias_history(NAME)) == moves + 1


def test_gate_refuses_versions_measured_on_different_data(manager, fitted, toy_data):
    frame, label = toy_data
    old_period, new_period = frame.assign(Class=label).iloc[:100], frame.assign(Class=label)[100:]
    champion = _logged(manager, fitted, {"average_precision": 0.60}, old_period, "test_2023")
    successor = _logged(manager, fitted, {"average_precision": 0.95}, new_period, "test_2024")
    (unknown,) = _register_many(manager, [0.99])
    # No holder yet: the gate passes without any comparison.
    manager.promote_model(NAME, champion, min_improvement=0.0)
    assert manager.alias_history(NAME).iloc[-1]["gate"] is None
    moves = len(manager.alias_history(NAME))

    named = (
        rf"version 2 was evaluated on test_2024 \(digest {data_fingerprint(new_period)}\), "
        rf"version 1 on test_2023 \(digest {data_fingerprint(old_period)}\)\); pass "
        "evaluation_data= .* or evidence_run_id= of an A/B run that scored both"
    )
    with pytest.raises(PromotionRefused, match=named):
        manager.promote_model(NAME, successor, min_improvement=0.0)
    with pytest.raises(PromotionRefused, match=r"version 3 was evaluated on unknown data"):
        manager.promote_model(NAME, unknown, min_improvement=0.0)
    assert _holder(manager) == champion
    assert len(manager.alias_history(NAME)) == moves

    manager.promote_model(NAME, successor)  # min_improvement=None: no gate
    assert _holder(manager) == successor


def test_gate_scores_both_versions_on_evaluation_data(manager):
    transactions = TransactionSimulator(seed=7, fraud_rate=0.02).sample(20_000)
    split = time_split(transactions)
    better = train_model(split.train, "logistic_regression")
    shuffled = split.train["Class"].sample(frac=1, random_state=0).to_numpy()
    worse = train_model(split.train.assign(Class=shuffled), "logistic_regression")
    # Registered without an evaluation dataset, as before linked metrics: only scoring
    # both on one frame can compare them.
    example = split.test[FEATURE_COLUMNS].head(5)
    v1, v2 = (
        _logged(manager, m, {"average_precision": 0.5}, None, input_example=example)
        for m in (worse, better)
    )
    manager.promote_model(NAME, v1)
    moves = len(manager.alias_history(NAME))
    with pytest.raises(PromotionRefused, match="version 2 was evaluated on unknown data"):
        manager.promote_model(NAME, v2, min_improvement=0.0)
    with pytest.raises(DataValidationError, match="'Class' column"):
        manager.promote_model(
            NAME, v2, min_improvement=0.0, evaluation_data=split.test.drop(columns="Class")
        )

    manager.promote_model(NAME, v2, min_improvement=0.1, evaluation_data=split.test)
    gate = manager.alias_history(NAME).iloc[-1]["gate"]
    expected = [
        evaluate(split.test["Class"], predict_scores(m, split.test))["average_precision"]
        for m in (better, worse)
    ]
    assert [gate["candidate_value"], gate["holder_value"]] == pytest.approx(expected)
    assert gate["candidate_value"] > gate["holder_value"] + 0.1
    assert (gate["digest"], gate["source"]) == (data_fingerprint(split.test), "evaluation_data")
    assert _holder(manager) == v2

    moves = len(manager.alias_history(NAME))
    with pytest.raises(PromotionRefused, match=r"difference -0\.\d+ < required \+0\.0000"):
        manager.promote_model(NAME, v1, min_improvement=0.0, evaluation_data=split.test)
    (no_model,) = _register_many(manager, [0.9])  # a version without a loadable model
    with pytest.raises(PromotionRefused, match="cannot score version 3 of 'fraud_lifecycle'"):
        manager.promote_model(NAME, no_model, min_improvement=0.0, evaluation_data=split.test)
    assert _holder(manager) == v2
    assert len(manager.alias_history(NAME)) == moves


def test_gate_uses_an_ab_run_that_scored_both_versions(manager):
    v1, v2 = _register_many(manager, [0.90, 0.40])  # own-test values: v2 looks worse
    manager.promote_model(NAME, v1)
    moves = len(manager.alias_history(NAME))
    ab = {
        "model_name": NAME,
        "model_a_version": v1,
        "model_b_version": v2,
        "metric": "average_precision",
        "metric_a": 0.31,
        "metric_b": 0.74,
        "dataset_digest": "0123456789abcdef",
    }
    with manager.start_monitoring_run(NAME) as monitoring:
        manager.log_experiment_summary(ab)
    refusals = {
        _ab_run(manager, **{**ab, "metric": "roc_auc"}): "compared metric=roc_auc, not average",
        _ab_run(manager, **{**ab, "model_a_version": "7"}): "did not A/B-test versions 2 and 1",
        monitoring.info.run_id: "is a monitoring run, not an A/B-testing one",
        "0" * 32: "not found",
    }
    for evidence, message in refusals.items():
        with pytest.raises(PromotionRefused, match=rf"unknown data; evidence run .*{message}"):
            manager.promote_model(NAME, v2, min_improvement=0.0, evidence_run_id=evidence)
    won = _ab_run(manager, **ab)
    with pytest.raises(PromotionRefused, match=r"0\.7400 vs 0\.3100 .* required \+0\.5000"):
        manager.promote_model(NAME, v2, min_improvement=0.5, evidence_run_id=won)
    assert _holder(manager) == v1
    assert len(manager.alias_history(NAME)) == moves

    manager.promote_model(NAME, v2, min_improvement=0.2, evidence_run_id=won)
    last = manager.alias_history(NAME).iloc[-1]
    assert last["evidence_run_id"] == won
    assert last["gate"]["source"] == f"A/B run {won}"
    assert (last["gate"]["candidate_value"], last["gate"]["holder_value"]) == (0.74, 0.31)
    assert last["gate"]["digest"] == "0123456789abcdef"

    # The retraining notebook A/B-tests its new model on a retraining run: accepted too,
    # with the versions in either order.
    with manager.start_retraining_run("drift_response") as retraining:
        manager.log_experiment_summary(
            {**ab, "model_a_version": v2, "model_b_version": v1, "metric_a": 0.74, "metric_b": 0.8}
        )
    manager.promote_model(NAME, v1, min_improvement=0.05, evidence_run_id=retraining.info.run_id)
    assert _holder(manager) == v1
    gate = manager.alias_history(NAME).iloc[-1]["gate"]
    assert (gate["candidate_value"], gate["holder_value"]) == (0.80, 0.74)


def test_ab_evidence_gate(manager):
    v1, v2 = _register_many(manager, [0.80, 0.82])
    manager.promote_model(NAME, v1)
    with manager.start_training_run("not-ab") as training:
        pass
    base = {"p_value": 0.3, "model_a_version": v1, "model_b_version": v2}
    refusals = {
        None: "needs evidence_run_id",
        training.info.run_id: "not an A/B-testing run",
        _ab_run(manager, winner=None, statistical_significance=False, **base): (
            r"winner=None, winner version=None, significant=False, p_value=0.3"
        ),
        _ab_run(manager, winner="A", statistical_significance=True, **{**base, "p_value": 0.01}): (
            r"does not show version 2 .*winner=A, winner version=1, significant=True"
        ),
        "0" * 32: "not found",
    }
    for evidence, message in refusals.items():
        with pytest.raises(PromotionRefused, match=message):
            manager.promote_model(NAME, v2, require_significant_ab=True, evidence_run_id=evidence)
        assert _holder(manager) == v1
    assert len(manager.alias_history(NAME)) == 1

    won = _ab_run(manager, winner="B", statistical_significance=True, **{**base, "p_value": 0.01})
    manager.promote_model(NAME, v2, require_significant_ab=True, evidence_run_id=won)
    assert _holder(manager) == v2
    assert manager.alias_history(NAME).iloc[-1]["evidence_run_id"] == won


def test_rollback_replays_the_recorded_moves(manager):
    v1, v2, v3 = _register_many(manager, [0.80, 0.82, 0.84])
    manager.promote_model(NAME, v2, "Staging")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for version in (v1, v2, v3):
            manager.promote_model(NAME, version)
        assert str(manager.rollback_model(NAME).version) == v2
        assert str(manager.rollback_model(NAME, reason="v2 alerts").version) == v1
    assert not [w for w in caught if "stage" in str(w.message).lower()]
    history = manager.alias_history(NAME, "production")
    assert history["action"].tolist() == ["promote"] * 3 + ["rollback"] * 2
    assert history[["from", "to"]].iloc[-2:].values.tolist() == [[v3, v2], [v2, v1]]
    assert history["reason"].iloc[-2:].tolist() == ["rollback", "v2 alerts"]
    with pytest.raises(RegistryError, match="no earlier holder of alias 'production'"):
        manager.rollback_model(NAME)
    assert _holder(manager) == v1

    manager.promote_model(NAME, v3)  # promoting after rollbacks stacks on the rolled-back state
    assert str(manager.rollback_model(NAME).version) == v1
    assert _holder(manager, "Staging") == v2  # other aliases are untouched


def test_rollback_without_history_is_a_clear_error(manager):
    (v1,) = _register_many(manager, [0.8])
    message = r"no earlier holder .* \(0 moves recorded\); pass to_version="
    with pytest.raises(RegistryError, match=message):
        manager.rollback_model(NAME)
    manager.promote_model(NAME, v1)
    with pytest.raises(RegistryError, match=r"\(1 moves recorded\)"):
        manager.rollback_model(NAME)
    assert _holder(manager) == v1


def test_rollback_to_version(manager):
    v1, v2, v3 = _register_many(manager, [0.80, 0.82, 0.84])
    for version in (v1, v2, v3):
        manager.promote_model(NAME, version)
    assert str(manager.rollback_model(NAME, to_version=int(v1)).version) == v1
    last = manager.alias_history(NAME).iloc[-1]
    assert (last["from"], last["to"], last["action"]) == (v3, v1, "rollback")
    with pytest.raises(RegistryError, match="no earlier holder"):
        manager.rollback_model(NAME)  # v1 was the first holder
    with pytest.raises(RegistryError, match=r"has no version '9'; its versions: 1, 2, 3"):
        manager.rollback_model(NAME, to_version="9")
    assert _holder(manager) == v1


def test_rollback_skips_deleted_versions_and_unrecorded_moves_are_undone(manager, monkeypatch):
    v1, v2, v3 = _register_many(manager, [0.80, 0.82, 0.84])
    for version in (v1, v2, v3):
        manager.promote_model(NAME, version)
    manager.client.delete_model_version(NAME, v2)
    assert str(manager.rollback_model(NAME).version) == v1
    moves = len(manager.alias_history(NAME))

    def fail(*args, **kwargs):
        raise ConnectionError("store went away")

    with monkeypatch.context() as patch, pytest.raises(ConnectionError):
        patch.setattr(manager.client, "set_registered_model_tag", fail)
        manager.promote_model(NAME, v3)
    assert _holder(manager) == v1  # the alias was put back: no move without a record
    assert len(manager.alias_history(NAME)) == moves


def test_compare_model_versions(manager):
    v1 = _register(
        manager, {"average_precision": 0.80, "roc_auc": 0.90}, params={"model_type": "lr"}
    )
    v2 = _register(
        manager,
        {"average_precision": 0.85, "roc_auc": 0.88, "fraud_f1": 0.7},
        params={"model_type": "hgb", "max_iter": 50},
    )
    manager.promote_model(NAME, v1)
    with pytest.raises(RegistryError, match=r"no 'staging' alias yet.*versions=\[\.\.\.\]"):
        manager.compare_model_versions(NAME, stages=["Production", "Staging"])

    table = manager.compare_model_versions(NAME, versions=[v1, int(v2)])
    assert table.index.tolist() == ["v1", "v2", "difference"]
    assert table.loc["difference", "average_precision"] == pytest.approx(0.05)
    assert table.loc["difference", "roc_auc"] == pytest.approx(-0.02)
    assert pd.isna(table.loc["difference", "fraud_f1"])  # logged for v2 only
    assert table.loc[["v1", "v2"], "model_type"].tolist() == ["lr", "hgb"]
    assert table.loc["v2", "param.max_iter"] == "50"
    assert table.loc[["v1", "v2"], "alias"].tolist() == ["production", ""]
    assert table["version"].tolist()[:2] == [1, 2]
    run_v1 = manager.client.get_model_version(NAME, v1).run_id
    assert table.loc["v1", "run_id"] == run_v1
    assert table.loc["v1", "created"] <= table.loc["v2", "created"]

    manager.promote_model(NAME, v2, "Staging")
    by_stage = manager.compare_model_versions(NAME)  # the seed's call
    assert by_stage.index.tolist() == ["production", "staging", "difference"]
    assert by_stage.loc["difference", "average_precision"] == pytest.approx(0.05)
    with pytest.raises(RegistryError, match="versions= is empty"):
        manager.compare_model_versions(NAME, versions=[])


def test_one_builder_per_answer_from_version_records():
    # No store: the rows both paths' answers come from, built from records alone.
    lr = VersionRecord(NAME, 1, 0, "READY", "r1", ("production",), {}, None)
    lr = lr._replace(run=SourceRun({"average_precision": 0.8}, {"model_type": "lr"}))
    bare = VersionRecord(NAME, 2, 1000, "READY", None, (), {"fraudkit.model_type": "hgb"}, None)
    other = VersionRecord("another", 1, None, "READY", None, ("staging", "champion"), {}, None)
    rows = registry_rows([bare, lr, other])
    assert [(r["model"], r["version"]) for r in rows] == [("another", 1), (NAME, 1), (NAME, 2)]
    assert rows[0]["aliases"] == "champion,staging" and rows[0]["roc_auc"] is None
    assert [r["model_type"] for r in rows] == [None, "lr", "hgb"]

    found = comparison_rows([("v1", lr), ("v2", bare)])
    fixed = ["label", "alias", "version", "run_id", "created", "model_type"]
    assert found.columns == [*fixed, "average_precision", "param.model_type"]
    assert found.rows[-1]["label"] == "difference"
    assert math.isnan(found.rows[-1]["average_precision"])  # v2 has no run
    frame = comparison_frame([("v1", lr), ("v2", bare)])
    assert frame.index.tolist() == ["v1", "v2", "difference"]
    assert str(frame["version"].dtype) == "Int64"
    assert frame.loc["v2", "created"] == pd.Timestamp(1000, unit="ms", tz="UTC")
    assert len(comparison_rows([("v1", lr)]).rows) == 1  # no difference without a pair


def test_history_covers_versions_and_monitoring_steps(manager):
    v1 = _register(manager, {"average_precision": 0.80, "roc_auc": 0.90})
    v2 = _register(manager, {"average_precision": 0.85, "roc_auc": 0.91})
    monitor_v1 = _monitor(manager, v1, [0.79, 0.77, 0.74, 0.70], recall=0.6)
    monitor_v2 = _monitor(manager, v2, [0.84, 0.83])
    _register(manager, {"average_precision": 0.5}, name="other_model")
    _monitor(manager, "1", [0.1], name="other_model")  # another model's measurement
    with manager.start_monitoring_run(NAME):  # not linked: not part of the history
        manager.log_metrics({"average_precision": 0.0})

    history = manager.get_model_performance_history(NAME)
    assert history.columns.tolist() == HISTORY_COLUMNS
    assert str(history["timestamp"].dt.tz) == "UTC"
    assert set(history["value"]) >= {0.79, 0.84} and 0.1 not in set(history["value"])
    assert 0.0 not in set(history["value"])
    ap = history[history["metric"] == "average_precision"]
    series = {
        (version, source): group["value"].tolist()
        for (version, source), group in ap.groupby(["version", "source"])
    }
    assert series == {
        (1, "training"): [0.80],
        (1, "monitoring"): [0.79, 0.77, 0.74, 0.70],
        (2, "training"): [0.85],
        (2, "monitoring"): [0.84, 0.83],
    }
    monitored = ap[ap["run_id"] == monitor_v1]
    assert monitored["step"].tolist() == [0, 1, 2, 3]
    assert set(history.loc[history["run_id"] == monitor_v2, "version"]) == {2}
    assert set(history.loc[history["version"] == 1, "metric"]) == {
        "average_precision",
        "roc_auc",
        "recall",
    }
    # AUPRC over time per version falls out directly.
    wide = ap.pivot_table(index="step", columns=["version", "source"], values="value")
    assert wide.loc[3, (1, "monitoring")] == pytest.approx(0.70)

    only = manager.get_model_performance_history(NAME, metrics=["roc_auc"])
    assert set(only["metric"]) == {"roc_auc"} and len(only) == 2


def test_link_run_to_version_validates(manager):
    (v1,) = _register_many(manager, [0.8])
    with manager.start_monitoring_run(NAME) as run:
        pass
    with pytest.raises(RegistryError, match="has no version '7'"):
        manager.link_run_to_version(run.info.run_id, NAME, 7)
    with pytest.raises(RegistryError, match=r"run '0+' not found"):
        manager.link_run_to_version("0" * 32, NAME, v1)
    manager.link_run_to_version(run.info.run_id, NAME, int(v1))
    tags = manager.client.get_run(run.info.run_id).data.tags
    assert (tags[registry.MODEL_NAME_TAG], tags[registry.MODEL_VERSION_TAG]) == (NAME, v1)


def test_detect_performance_degradation(manager):
    v1 = _register(manager, {"average_precision": 0.80, "expected_cost": 10.0})
    v2 = _register(manager, {"average_precision": 0.85})
    manager.promote_model(NAME, v1)
    run = _monitor(manager, v1, [0.80, 0.79, 0.60, 0.58], expected_cost=15.0)

    result = manager.detect_performance_degradation(NAME, window=2, tolerance=0.1)
    assert result.degraded and result.version == v1
    assert result.baseline == pytest.approx(0.80) and result.recent == pytest.approx(0.59)
    assert result.drop == pytest.approx(0.21)
    assert result.relative_drop == pytest.approx(0.2625)
    assert result.runs == (run,) and result.n_measurements == 2
    assert result.baseline_run_id == manager.client.get_model_version(NAME, v1).run_id
    assert result.to_dict()["runs"] == run

    lenient = manager.detect_performance_degradation(NAME, window=4, tolerance=0.3)
    assert not lenient.degraded and lenient.recent == pytest.approx(0.6925)
    cost = manager.detect_performance_degradation(
        NAME, "expected_cost", tolerance=0.2, higher_is_better=False
    )
    assert cost.degraded and cost.drop == pytest.approx(5.0)

    unmeasured = manager.detect_performance_degradation(NAME, version=v2)
    assert not unmeasured.degraded and unmeasured.n_measurements == 0
    assert math.isnan(unmeasured.recent) and unmeasured.runs == ()

    with pytest.raises(RegistryError, match="no 'staging' alias"):
        manager.detect_performance_degradation(NAME, stage="Staging")
    with pytest.raises(RegistryError, match="no 'roc_auc' logged on its training run"):
        manager.detect_performance_degradation(NAME, "roc_auc")
    with pytest.raises(ConfigurationError, match="window=0"):
        manager.detect_performance_degradation(NAME, window=0)


def test_registry_overview(manager):
    quoted = "fraud o'model"  # filter strings must quote it with double quotes
    v1, v2 = _register_many(manager, [0.80, 0.85])
    _register(
        manager,
        {"average_precision": 0.6, "roc_auc": 0.7},
        name=quoted,
        params={"model_type": "hgb"},
    )
    manager.promote_model(NAME, v1)
    manager.promote_model(NAME, v2, "Staging")
    overview = manager.get_registry_overview()
    assert overview[["model", "version", "aliases"]].values.tolist() == [
        [quoted, 1, ""],  # sorted by name: " " < "_"
        [NAME, 1, "production"],
        [NAME, 2, "staging"],
    ]
    assert overview["average_precision"].tolist() == [0.6, 0.80, 0.85]
    assert overview["model_type"].tolist() == ["hgb", "lr", "lr"]
    assert set(overview["status"]) == {"READY"}
    assert len(manager.get_model_performance_history(quoted)) == 2


def test_queries_page_through_search_results(manager, monkeypatch):
    monkeypatch.setattr(store, "PAGE_SIZE", 2)
    versions = _register_many(manager, [0.70, 0.71, 0.72, 0.73, 0.74])
    for name in ("m_a", "m_b"):
        _register(manager, {"average_precision": 0.5}, name=name)
    runs = [_monitor(manager, v, [0.6]) for v in versions[:3]]
    manager.promote_model(NAME, versions[-1])

    client = manager.client
    calls: list[tuple[str, int]] = []
    for method in ("search_model_versions", "search_registered_models", "search_runs"):
        original = getattr(client, method)

        def spy(*args, _original=original, _method=method, **kwargs):
            calls.append((_method, kwargs["max_results"]))
            return _original(*args, **kwargs)

        monkeypatch.setattr(client, method, spy)

    overview = manager.get_registry_overview()
    assert len(overview) == 7 and overview["version"].max() == 5
    assert overview.loc[overview["model"] == NAME, "aliases"].tolist() == [""] * 4 + ["production"]
    history = manager.get_model_performance_history(NAME)
    assert set(history["run_id"]) >= set(runs) and set(history["version"]) == {1, 2, 3, 4, 5}
    with pytest.raises(RegistryError, match="its versions: 1, 2, 3, 4, 5"):
        manager.rollback_model(NAME, to_version=6)
    counts = pd.Series([m for m, _ in calls]).value_counts()
    assert {size for _, size in calls} == {2}
    assert counts["search_registered_models"] >= 2  # 3 models
    assert counts["search_runs"] >= 2  # 3 linked runs
    assert counts["search_model_versions"] >= 3 + 1 + 1  # 5 versions: 3 pages per query


def test_unknown_model_version_and_stage_errors(manager):
    _register_many(manager, [0.8])
    unknown_model = [
        lambda: manager.promote_model("nope", 1),
        lambda: manager.rollback_model("nope"),
        lambda: manager.compare_model_versions("nope"),
        lambda: manager.get_model_performance_history("nope"),
        lambda: manager.detect_performance_degradation("nope"),
        lambda: manager.alias_history("nope"),
        lambda: manager.get_version_by_alias("nope", "production"),
    ]
    for call in unknown_model:
        with pytest.raises(RegistryError, match="registered model 'nope' not found"):
            call()
    for version in (2, "abc", "-1"):
        with pytest.raises(RegistryError, match=f"has no version '?{version}'?; its versions: 1"):
            manager.promote_model(NAME, version)
        with pytest.raises(RegistryError, match="its versions: 1"):
            manager.compare_model_versions(NAME, versions=[1, version])
    with pytest.raises(ConfigurationError, match="unknown stage 'Archived'"):
        manager.promote_model(NAME, 1, "Archived")
    assert manager.get_version_by_alias(NAME, "Production") is None
    assert manager.alias_history(NAME).empty


# -- loading by URI ------------------------------------------------------------------------


def test_load_model_returns_the_served_model_and_refuses_other_strings(manager, fitted, toy_data):
    frame, _ = toy_data
    version = manager.log_model_with_metadata(fitted, NAME, stage="Staging", input_example=frame)
    for uri in (f"models:/{NAME}@staging", f"models:/{NAME}/{version.version}"):
        loaded = registry.load_model(uri, client=manager.client)
        np.testing.assert_allclose(predict_scores(loaded, frame), fitted.predict_proba(frame)[:, 1])
    runs_uri = f"runs:/{version.run_id}/model"
    assert predict_scores(registry.load_model(runs_uri), frame).shape == (len(frame),)
    for text in ("model.pkl", "/tmp/model", "s3://bucket/model"):
        with pytest.raises(ConfigurationError, match="starting with models:/ or runs:/"):
            registry.load_model(text)


def test_load_model_names_the_uri_it_cannot_load(manager, fitted, toy_data):
    manager.log_model_with_metadata(fitted, NAME, input_example=toy_data[0])
    for uri in (f"models:/{NAME}/9", f"models:/{NAME}@champion", "models:/no_such_model/1"):
        with pytest.raises(ModelError, match=f"could not load model '{uri}'"):
            registry.load_model(uri)
