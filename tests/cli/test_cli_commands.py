"""fraudkit.cli.commands: ``fraudkit ui`` keeps the store's password off the command line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fraudkit.cli import cli

SECRET = "s3cret-Pa55"


def test_ui_passes_the_store_uri_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import fraudkit.tracking.ui

    uri = f"postgresql://fraud:{SECRET}@127.0.0.1:5432/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = []
    monkeypatch.setattr(
        fraudkit.tracking.ui,
        "run_server",
        lambda command, env: (
            started.append((command, env)) or fraudkit.tracking.ui.ServerExit(0, None, False)
        ),
    )
    # The banner's links read the store, which has no PostgreSQL server behind it here.
    monkeypatch.setattr(
        fraudkit.tracking.ui,
        "kit_experiment_urls",
        lambda base: {"training": f"{base}/#/experiments/1"},
    )
    result = CliRunner().invoke(cli, ["ui", "--port", "5055"])
    assert result.exit_code == 0, result.output
    ((command, env),) = started
    assert command[1:4] == ["-m", "mlflow", "server"]
    assert not any(SECRET in part for part in command)  # `ps` shows argv to every user
    assert "--backend-store-uri" not in command
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri
    assert env["MLFLOW_DEFAULT_ARTIFACT_ROOT"].startswith("file://")
    assert SECRET not in result.output and "http://127.0.0.1:5055" in result.output


def test_mlflow_ui_reads_the_variables_fraudkit_sets() -> None:
    from mlflow.cli import server

    envvars = {param.name: param.envvar for param in server.params}
    assert envvars["backend_store_uri"] == "MLFLOW_BACKEND_STORE_URI"
    assert envvars["default_artifact_root"] == "MLFLOW_DEFAULT_ARTIFACT_ROOT"
