"""Settings resolution (the packaging files' agreement: tests/packaging)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fraudkit.core import config
from fraudkit.core.config import ExperimentType, stage_to_alias
from fraudkit.core.exceptions import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def test_seed_experiment_names():
    assert config.MLFLOW_EXPERIMENTS == {
        "training": "credit_card_fraud_detection",
        "ab_testing": "credit_card_fraud_ab_testing",
        "model_comparison": "credit_card_fraud_model_comparison",
        "monitoring": "credit_card_fraud_monitoring",
        "retraining": "credit_card_fraud_retraining",
    }
    assert [t.experiment_name for t in ExperimentType] == list(config.MLFLOW_EXPERIMENTS.values())


@pytest.mark.parametrize(
    ("stage", "alias"),
    [
        ("Staging", "staging"),
        ("Production", "production"),
        ("PRODUCTION", "production"),
        (" staging ", "staging"),
    ],
)
def test_stage_maps_to_alias(stage, alias):
    assert stage_to_alias(stage) == alias


@pytest.mark.parametrize("stage", ["Archived", "None", "prod", ""])
def test_unknown_stage_lists_the_allowed_ones(stage):
    with pytest.raises(ConfigurationError, match="use one of: Staging, Production"):
        stage_to_alias(stage)


def test_default_store_is_absolute_sqlite_under_home(fraudkit_home, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert config.tracking_uri() == f"sqlite:///{fraudkit_home}/mlflow.db"
    assert config.artifact_root() == (fraudkit_home / "mlartifacts").as_uri()
    assert config.reports_dir() == fraudkit_home / "reports"


def test_home_defaults_to_the_checkout_then_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("FRAUDKIT_HOME")
    monkeypatch.chdir(ROOT / "fraudkit")
    assert config.fraudkit_home() == ROOT
    monkeypatch.chdir(tmp_path)
    assert config.fraudkit_home() == tmp_path.resolve()


def test_notebooks_are_the_checkouts_else_the_packaged_ones_unless_configured(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("FRAUDKIT_NOTEBOOKS_DIR", raising=False)
    assert config.notebooks_dir() == config.kit_notebooks_dir() == ROOT / "notebooks"
    # An installed wheel has them in fraudkit/notebooks/ (and no checkout around).
    packaged = tmp_path / "site-packages" / "fraudkit" / "notebooks"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(config, "_NOTEBOOK_FOLDERS", (packaged, tmp_path / "site-packages"))
    assert config.notebooks_dir() == packaged
    monkeypatch.setenv("FRAUDKIT_NOTEBOOKS_DIR", str(tmp_path / "mine"))
    assert config.notebooks_dir() == tmp_path / "mine"
    assert config.kit_notebooks_dir() == packaged


def test_relative_sqlite_uri_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///store/mlflow.db")
    assert config.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/store/mlflow.db"


def test_remote_server_keeps_its_uri_and_chooses_its_artifacts(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert config.tracking_uri() == "http://127.0.0.1:5000"
    assert config.is_remote(config.tracking_uri())
    assert config.artifact_root() is None


@pytest.mark.parametrize("uri", ["ftp://host/x", "mlflow.db"])
def test_unusable_tracking_uri_is_a_configuration_error(monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ConfigurationError, match="MLFLOW_TRACKING_URI"):
        config.tracking_uri()


def test_redact_uri_hides_passwords():
    uri = "postgresql+psycopg2://mlflow:s3cret@db.internal:5432/mlflow"
    redacted = config.redact_uri(uri)
    assert "s3cret" not in redacted
    assert redacted == "postgresql+psycopg2://mlflow:***@db.internal:5432/mlflow"
    assert config.redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_pre_commit_hooks_are_local():
    # A hook fetched from a repository needs the network at first use; CI has none.
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"] for hook in config["repos"][0]["hooks"]}
    assert {"ruff-check", "ruff-format", "notebooks-without-outputs", "import-contracts"} <= hooks
