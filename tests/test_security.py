"""Security basics: local binding, no leaked credentials, models loaded only via skops.

* Servers and the UI bind to 127.0.0.1 unless told otherwise (CLI, Makefile, test
  fixtures, the compose file's published port).
* A password or token, in the tracking URI or in the environment, never appears in error
  messages, logged params and tags, the store, the artifacts or ``reports/index.html``.
* Models are stored with skops and an explicit trusted-type list: a model holding other
  code is refused at logging, and a model file swapped afterwards is refused at loading,
  even when its ``MLmodel`` is changed to trust it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import mlflow
import pytest
import skops.io
import yaml
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import ViewType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skops.io.exceptions import UntrustedTypesFoundException

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.core.exceptions import ConfigurationError, ModelError, TrackingError
from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraudkit.reports.index import build_report_index
from fraudkit.science.models import train_model
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.tracking.registry import load_model

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-Pa55"
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def traffic():
    return TransactionSimulator(seed=5, fraud_rate=0.05).sample(1_500)


def _log_model(model, name: str, traffic):
    """Log ``model`` as a new staging version of ``name``, the way the notebooks do."""
    return mlflow_manager.log_model_with_metadata(
        model, name, stage="Staging", input_example=traffic[FEATURE_COLUMNS].head(5)
    )


# -- binding -------------------------------------------------------------------------------


def test_ui_binds_to_localhost_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "[default: 127.0.0.1]" in CliRunner().invoke(cli, ["ui", "--help"]).output
    import fraudkit.tracking.ui

    started = []
    monkeypatch.setattr(
        fraudkit.tracking.ui,
        "run_server",
        lambda command, env: (
            started.append(command) or fraudkit.tracking.ui.ServerExit(0, None, False)
        ),
    )
    monkeypatch.setattr(
        fraudkit.tracking.ui,
        "kit_experiment_urls",
        lambda base: {"training": f"{base}/#/experiments/1"},
    )
    result = CliRunner().invoke(cli, ["ui"])
    assert result.exit_code == 0, result.output
    (command,) = started
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "http://127.0.0.1:5000" in result.output


def test_make_targets_fixtures_and_compose_bind_to_localhost_by_default() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", makefile, re.MULTILINE)
    assert "fraudkit ui --host $(HOST)" in makefile and "jupyter lab --ip $(HOST)" in makefile
    assert "0.0.0.0" not in makefile
    # Every server the tests start (mlflow, PostgreSQL) listens on 127.0.0.1 only.
    hosts = [
        host
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for host in re.findall(r'"--host",\s*"([^"]+)"', path.read_text())
    ]
    assert hosts and set(hosts) == {"127.0.0.1"}
    # The containers listen on all their interfaces, but the host publishes the MLflow
    # server and the Dask scheduler (and its dashboard) on 127.0.0.1; the workers not at all.
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    published = {name: s.get("ports", []) for name, s in compose["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"mlflow", "dask-scheduler"}
    for mapping in published["mlflow"]:
        assert mapping.startswith("${MLFLOW_BIND:-127.0.0.1}:"), mapping
    for mapping in published["dask-scheduler"]:
        assert mapping.startswith("${DASK_BIND:-127.0.0.1}:"), mapping


# -- credentials in the tracking URI -------------------------------------------------------


def _fail_cli(args: list[str], uri: str, code: int) -> str:
    result = CliRunner().invoke(cli, args, env={"MLFLOW_TRACKING_URI": uri, **QUICK_HTTP})
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("Error: ")
    return result.output


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (f"http://alice:{SECRET}@127.0.0.1:9", "http://alice:***@127.0.0.1:9"),
        (f"https://{SECRET}@127.0.0.1:9", "https://***@127.0.0.1:9"),
        ("http://alice:s3cret%40Pa55@127.0.0.1:9", "http://alice:***@127.0.0.1:9"),
    ],
)
def test_unreachable_server_error_shows_the_uri_redacted(
    uri: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for args in (["dashboard", "summary"], ["run", "training", "-p", "n_transactions", "900"]):
        output = _fail_cli(args, uri, 2)
        assert f"cannot reach the MLflow tracking store {shown}" in output
        assert SECRET not in output and "s3cret@Pa55" not in output and "s3cret%40" not in output
    # `fraudkit ui` on a server store points the user at the server, redacted.
    output = _fail_cli(["ui"], uri, 1)
    assert shown in output and "s3cret" not in output
    for name, value in {"MLFLOW_TRACKING_URI": uri, **QUICK_HTTP}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TrackingError) as caught:
        mlflow_manager.start_training_run("leak_check")
    assert shown in str(caught.value) and "s3cret" not in str(caught.value)


def test_unreachable_postgresql_error_shows_the_uri_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MLflow retries opening a database for ~100 s; one attempt shows the same error.
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 1)
    uri = f"postgresql+psycopg2://mlflow:{SECRET}@127.0.0.1:9/mlflow"
    output = _fail_cli(["dashboard", "summary"], uri, 2)
    assert "cannot reach the MLflow tracking store postgresql+psycopg2://mlflow:***@" in output
    assert SECRET not in output


def test_configuration_errors_never_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # no MySQL driver installed
    output = _fail_cli(["report"], f"mysql://alice:{SECRET}@127.0.0.1:9/mlflow", 1)
    assert "mysql://alice:***@127.0.0.1:9/mlflow needs a database driver" in output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"ftp://alice:{SECRET}@files.internal/mlflow")
    with pytest.raises(ConfigurationError) as caught:
        mlflow_manager.setup_experiments()
    for message in (output, str(caught.value)):
        assert SECRET not in message


# -- secrets in the environment --------------------------------------------------------------

ENV_SECRETS = {
    "MLFLOW_TRACKING_PASSWORD": "env-secret-password-1",
    "MLFLOW_TRACKING_TOKEN": "env-secret-token-2",
    "AWS_SECRET_ACCESS_KEY": "env-secret-aws-3",
    "DATABASE_URL": "postgresql://app:env-secret-db-4@db.internal/app",
}


def _files_containing(folder: Path, secrets: list[str]) -> list[str]:
    needles = [s.encode() for s in secrets]
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and any(n in path.read_bytes() for n in needles)
    ]


def test_environment_secrets_never_reach_the_store_artifacts_or_reports(
    fraudkit_home: Path, monkeypatch: pytest.MonkeyPatch, traffic
) -> None:
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    model = train_model(traffic, "logistic_regression")
    with mlflow_manager.start_training_run("secret_check"):
        mlflow_manager.log_params({"model_type": "logistic_regression", "data": {"rows": 1500}})
        mlflow_manager.log_dataset(traffic, name="transactions")
        mlflow_manager.log_experiment_summary({"average_precision": 0.8, "winner": "A"})
        version = _log_model(model, "secret_check_model", traffic)
    mlflow_manager.promote_model("secret_check_model", version.version, "Production")
    build_report_index()
    client = mlflow_manager.client
    run = client.get_run(version.run_id)
    logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
    assert logged and not any(s in logged for s in ENV_SECRETS.values())
    # The whole home folder: the SQLite store, every artifact, reports/index.html.
    secrets = [*ENV_SECRETS.values(), "env-secret-db-4"]
    assert (fraudkit_home / "reports" / "index.html").is_file()
    assert _files_containing(fraudkit_home, secrets) == []


@pytest.mark.server
def test_runs_registry_and_report_index_on_a_server_show_no_password(
    mlflow_server: str, fraudkit_home: Path, monkeypatch: pytest.MonkeyPatch, traffic
) -> None:
    with_password = mlflow_server.replace("http://", f"http://alice:{SECRET}@")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", with_password)
    model = train_model(traffic, "logistic_regression")
    with mlflow_manager.start_training_run("server_secret_check"):
        mlflow_manager.log_params({"model_type": "logistic_regression"})
        version = _log_model(model, "server_secret_check_model", traffic)
    page = build_report_index().read_text()
    assert mlflow_server.replace("http://", "http://alice:***@") in page
    assert SECRET not in page
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    for run in client.search_runs(experiments, run_view_type=ViewType.ALL):
        recorded = [*run.data.params.values(), *run.data.tags.values(), run.info.artifact_uri]
        assert not any(SECRET in value for value in recorded)
    registered = client.get_registered_model("server_secret_check_model")
    stored = client.get_model_version(registered.name, version.version)
    assert SECRET not in str(registered.tags) + str(stored.tags) + str(stored.source)
    assert _files_containing(fraudkit_home, [SECRET]) == []


# -- skops and trusted types -----------------------------------------------------------------


def _double_features(frame):
    """Custom code in a model: skops must not run it unless someone trusts it."""
    return frame * 2


def _logged_model_dir(fraudkit_home: Path) -> Path:
    (mlmodel,) = (fraudkit_home / "mlartifacts").rglob("MLmodel")
    return mlmodel.parent


def test_models_are_logged_with_skops_and_an_explicit_trusted_type_list(
    fraudkit_home: Path, traffic
) -> None:
    model = train_model(traffic, "random_forest")
    version = _log_model(model, "skops_check", traffic)
    folder = _logged_model_dir(fraudkit_home)
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert flavor["pickled_model"] == "model.skops"
    # Exactly the non-default types this model holds (the trees and the calibration around
    # them), nothing broader.
    assert flavor["skops_trusted_types"] == [
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.tree._tree.Tree",
    ]
    assert not [p for p in folder.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    loaded = mlflow.pyfunc.load_model(f"models:/skops_check/{version.version}")
    # The served flavor is fraudkit's loader over the same skops file: no pickle.
    pyfunc = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "fraudkit.tracking.served"
    assert pyfunc["model_path"] == "model.skops"
    scores = loaded.predict(traffic[FEATURE_COLUMNS].head(20))["fraud_probability"]
    assert scores.shape == (20,) and ((scores >= 0) & (scores <= 1)).all()


def test_a_model_file_swapped_after_logging_is_refused_on_load(
    fraudkit_home: Path, traffic
) -> None:
    model = train_model(traffic, "logistic_regression")
    _log_model(model, "swap_check", traffic)
    # An attacker with write access to the artifact store replaces the model file with one
    # that calls os.system on predict; its MLmodel still lists the original trusted types.
    hostile = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    skops.io.dump(hostile, _logged_model_dir(fraudkit_home) / "model.skops")
    hostile_type = f"{os.system.__module__}.system"
    with pytest.raises(UntrustedTypesFoundException, match=re.escape(hostile_type)):
        mlflow.pyfunc.load_model("models:/swap_check@staging")
    with pytest.raises(ModelError) as caught:
        load_model("models:/swap_check@staging")
    assert "refusing to load model 'models:/swap_check@staging'" in str(caught.value)
    assert hostile_type in str(caught.value)


def test_a_model_tampered_in_both_files_is_refused_on_load(fraudkit_home: Path, traffic) -> None:
    model = train_model(traffic, "logistic_regression")
    _log_model(model, "double_swap_check", traffic)
    # The attacker also rewrites MLmodel so that it trusts the hostile type: MLflow (and
    # skops) would then load it and run os.system; the kit's own allow-list refuses it.
    folder = _logged_model_dir(fraudkit_home)
    hostile = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    skops.io.dump(hostile, folder / "model.skops")
    hostile_type = f"{os.system.__module__}.system"
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    trusted = [str(t) for t in skops.io.get_untrusted_types(file=folder / "model.skops")]
    spec["flavors"]["sklearn"]["skops_trusted_types"] = trusted
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))
    assert hostile_type in trusted
    with pytest.raises(ModelError) as caught:
        load_model("models:/double_swap_check@staging")
    message = str(caught.value)
    assert "refusing to load model 'models:/double_swap_check@staging'" in message
    assert hostile_type in message and "scikit-learn, numpy and scipy" in message


def test_a_pickled_model_is_refused_on_load(fraudkit_home: Path, traffic) -> None:
    model = train_model(traffic, "logistic_regression")
    with mlflow_manager.start_training_run("pickle_check"):
        mlflow_manager.activate()
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    with pytest.raises(ModelError, match="not a scikit-learn model serialised with skops"):
        load_model(info.model_uri)


def test_a_model_holding_custom_code_is_refused_before_anything_is_logged(traffic) -> None:
    features, labels = traffic[FEATURE_COLUMNS], traffic[LABEL_COLUMN]
    custom = make_pipeline(FunctionTransformer(_double_features), LogisticRegression())
    custom.fit(features, labels)
    # skops itself refuses it unless its type is trusted...
    with pytest.raises(UntrustedTypesFoundException, match="_double_features"):
        skops.io.loads(skops.io.dumps(custom))
    # ...and fraudkit refuses to log it, because it would have to log that trust itself.
    with pytest.raises(TrackingError) as caught:
        mlflow_manager.log_model_with_metadata(
            custom, "custom_code", stage="Staging", input_example=features.head(5)
        )
    assert f"{__name__}._double_features" in str(caught.value)
    assert "only scikit-learn, numpy and scipy types are trusted" in str(caught.value)
    client = mlflow_manager.client
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    assert client.search_runs(experiments, run_view_type=ViewType.ALL) == []
    assert client.search_registered_models() == []
