"""Settings resolution and the packaging files that must agree with each other."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from fraudkit.core import config
from fraudkit.core.config import ExperimentType, stage_to_alias
from fraudkit.core.exceptions import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    listed = sorted(r for r in pip_section if not r.startswith("-e"))
    assert listed == sorted(project["dependencies"])
    assert "-e .[dev]" in pip_section
    assert "python=3.11" in environment["dependencies"]


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


def test_every_subpackage_and_the_templates_are_packaged():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["packages"]["find"]["include"]
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in ROOT.glob("fraudkit/**/__init__.py")
    }
    assert "fraudkit" in packages
    unpackaged = [p for p in packages if not any(fnmatch.fnmatchcase(p, g) for g in patterns)]
    assert not unpackaged
    data = setuptools["package-data"]["fraudkit"]
    templates = [f.relative_to(ROOT / "fraudkit") for f in ROOT.glob("fraudkit/**/templates/*")]
    assert templates
    assert all(any(fnmatch.fnmatchcase(str(f), g) for g in data) for f in templates)


def test_pre_commit_hooks_are_local():
    # A hook fetched from a repository needs the network at first use; CI has none.
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"] for hook in config["repos"][0]["hooks"]}
    assert {"ruff-check", "ruff-format", "notebooks-without-outputs", "import-contracts"} <= hooks
