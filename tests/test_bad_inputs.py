"""Bad inputs: each is refused with a one-line, actionable error and changes nothing.

Every case ends in a :class:`FraudkitError` (library) or exit code 1/2 with one ``Error:``
line (CLI), leaves no RUNNING run, creates no run (bar the one notebook that fails) and
leaves the model registry as it was. The cases share one small SQLite store holding two
versions of a model (v1 production, v2 staging): since a refused input must change nothing,
sharing it is part of the check. The README's "Errors" table lists the same cases.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.entities import ViewType

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.core.config import DEFAULT_MODEL_NAME as NAME
from fraudkit.core.exceptions import (
    ConfigurationError,
    DataValidationError,
    FraudkitError,
    ModelError,
    NotebookExecutionError,
    NotebookParameterError,
    PromotionRefused,
    RegistryError,
    SchemaError,
    TrackingError,
)
from fraudkit.core.schema import FEATURE_COLUMNS
from fraudkit.runner.execution import run_notebook
from fraudkit.science.data import load_transactions
from fraudkit.science.models import build_model, train_model
from fraudkit.science.schema import read_transactions
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.tracking.manager import MlflowManager
from fraudkit.tracking.registry import load_model

OTHER_DATA_NAME = "fraud_detector_measured_apart"

UNREACHABLE = {
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
}


@dataclass(frozen=True)
class Store:
    """The shared store, a folder of bad input files and labelled traffic."""

    uri: str
    files: Path
    traffic: pd.DataFrame
    model: object  # fitted, as logged in both versions


def _write_bad_files(folder: Path, sample: pd.DataFrame) -> None:
    sample.drop(columns="V5").to_csv(folder / "missing_column.csv", index=False)
    text = sample.astype({"V3": object})
    text.loc[7, "V3"] = "abc"
    text.to_csv(folder / "text_value.csv", index=False)
    sample.assign(Class=sample["Class"].mask(sample.index == 3, 2)).to_csv(
        folder / "bad_label.csv", index=False
    )
    sample.assign(Amount=sample["Amount"].mask(sample.index == 4, -5.0)).to_csv(
        folder / "negative_amount.csv", index=False
    )
    sample.assign(Class=0).to_csv(folder / "one_class.csv", index=False)
    sample.to_csv(folder / "transactions.txt", index=False)
    (folder / "corrupt.parquet").write_bytes(b"these bytes are not parquet")
    (folder / "not_yaml.yaml").write_text("n_transactions: [5000\n")
    _write_own_data(folder)


def _write_own_data(folder: Path) -> None:
    """An IEEE-CIS-shaped file, its schema, and the ways both go wrong."""
    own = pd.DataFrame(
        {
            "TransactionID": range(1, 7),
            "TransactionDT": [0, 60, 120, 180, 240, 300],
            "TransactionAmt": [5.0, 12.5, 3.0, 80.0, 9.99, 1.0],
            "card1": [11, 12, 11, 13, 12, 11],
            "isFraud": [0, 0, 1, 0, 0, 0],
            "reported": [9000, 30, 3000, 4000, 5000, 6000],
        }
    )
    own.to_csv(folder / "own.csv", index=False)
    own.drop(columns="card1").to_csv(folder / "own_no_card.csv", index=False)
    own.assign(TransactionID=[1, 2, 3, 3, 5, 6]).to_csv(folder / "own_dup_id.csv", index=False)
    schema = (
        "time: TransactionDT\ntime_unit: s\nlabel: isFraud\namount: TransactionAmt\n"
        "id: TransactionID\nentities: [card1]\nlabel_time: reported\n"
    )
    (folder / "schema.yaml").write_text(schema)
    (folder / "misspelt_schema.yaml").write_text(schema.replace("entities", "entites"))
    (folder / "list.yaml").write_text("- n_transactions\n- 5000\n")
    (folder / "unknown_notebook.yaml").write_text("scoring: {n_transactions: 5000}\n")
    (folder / "a_file").write_text("a file, not a folder\n")


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("bad-inputs")
    files = root / "files"
    files.mkdir()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    traffic = TransactionSimulator(seed=3, fraud_rate=0.05).sample(1_500)
    _write_bad_files(files, traffic.head(50))
    model = train_model(traffic, "logistic_regression")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAUDKIT_HOME", str(root))
        manager = MlflowManager(uri)
        for stage, precision in (("Production", 0.8), ("Staging", 0.7)):
            manager.log_model_with_metadata(
                model,
                NAME,
                metrics={"average_precision": precision},
                params={"model_type": "logistic_regression"},
                stage=stage,
                input_example=traffic[FEATURE_COLUMNS].head(5),
                evaluation_dataset=traffic,  # the gate compares numbers on the same data only
            )
        # Two versions measured on different halves of the traffic: no gate can compare them.
        for stage, half in (("Production", traffic.head(750)), ("Staging", traffic.tail(750))):
            manager.log_model_with_metadata(
                model,
                OTHER_DATA_NAME,
                metrics={"average_precision": 0.5},
                stage=stage,
                input_example=traffic[FEATURE_COLUMNS].head(5),
                evaluation_dataset=half,
            )
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    yield Store(uri, files, traffic, model)


@pytest.fixture
def store(populated: Store, fraudkit_home: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", populated.uri)
    return populated


def _state(store: Store) -> tuple[dict[str, str], dict[str, tuple]]:
    """Every run's status, and every registered model's aliases, tags and versions."""
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000)
    registry = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        registry[model.name] = (
            dict(model.aliases),
            dict(model.tags),
            sorted((v.version, v.status, tuple(sorted(v.tags.items()))) for v in versions),
        )
    return {r.info.run_id: r.info.status for r in runs}, registry


def _assert_untouched(store: Store, before: tuple[dict[str, str], dict[str, tuple]]) -> None:
    runs, registry = _state(store)
    assert "RUNNING" not in runs.values()
    assert runs == before[0], "a refused input created or changed a run"
    assert registry == before[1], "a refused input changed the registry"


def _assert_one_line(message: str, fragments: list[str]) -> None:
    assert message.strip() and "\n" not in message.strip(), message
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message


def _file(name: str):
    return lambda s: load_transactions(s.files / name)


def _own(name: str, schema: str = "schema.yaml"):
    return lambda s: read_transactions(s.files / name, s.files / schema)


LIBRARY_CASES = [
    # data files
    pytest.param(
        _file("absent.csv"),
        DataValidationError,
        ["absent.csv: no such file; check the path"],
        id="data-missing-file",
    ),
    pytest.param(
        _file("transactions.txt"),
        DataValidationError,
        ["unknown file type '.txt'", "use .csv"],
        id="data-unknown-suffix",
    ),
    pytest.param(
        _file("missing_column.csv"),
        DataValidationError,
        ["missing column(s) V5", "expected the creditcard.csv columns"],
        id="data-missing-column",
    ),
    pytest.param(
        _file("text_value.csv"),
        DataValidationError,
        ["column V3, data row 8: non-numeric value 'abc'", "fix or drop those rows"],
        id="data-text-value",
    ),
    pytest.param(
        _file("bad_label.csv"),
        DataValidationError,
        ["column Class, data row 4: label 2", "labels must be 0 (legit) or 1 (fraud)"],
        id="data-bad-label",
    ),
    pytest.param(
        _file("negative_amount.csv"),
        DataValidationError,
        ["column Amount, data row 5: negative amount", "amounts must be >= 0"],
        id="data-negative-amount",
    ),
    pytest.param(
        _file("corrupt.parquet"),
        DataValidationError,
        ["corrupt.parquet: cannot read the file", "not a parquet file"],
        id="data-corrupt-parquet",
    ),
    pytest.param(
        lambda s: load_transactions(s.files / "one_class.csv", require_both_classes=True),
        DataValidationError,
        ["holds only class 0", "need rows of both classes 0 and 1"],
        id="data-one-class",
    ),
    # own columns: a schema file or preset (docs: Your own data)
    pytest.param(
        _own("own.csv", "misspelt_schema.yaml"),
        SchemaError,
        ["unknown key 'entites'; did you mean 'entities'?"],
        id="schema-misspelt-key",
    ),
    pytest.param(
        lambda s: read_transactions(s.files / "own.csv", "kagle"),
        SchemaError,
        ["schema 'kagle' is neither a preset (kaggle, handbook)", "name a preset or the path"],
        id="schema-unknown-preset",
    ),
    pytest.param(
        _own("own_no_card.csv"),
        DataValidationError,
        ["missing column(s) card1 (entity)", "Rename the columns or fix the schema file"],
        id="schema-missing-entity",
    ),
    pytest.param(
        _own("own_dup_id.csv"),
        DataValidationError,
        ["column TransactionID (id), row 4: id '3' appears more than once", "must be unique"],
        id="schema-duplicate-id",
    ),
    pytest.param(
        _own("own.csv"),
        DataValidationError,
        ["column reported, row 2: a label known before its transaction happened"],
        id="schema-label-before-transaction",
    ),
    # notebook parameters (refused before any run is created)
    pytest.param(
        lambda s: run_notebook("training", {"n_rows": 10}),
        NotebookParameterError,
        ["has no parameter 'n_rows'", "its parameters are: n_transactions"],
        id="param-unknown-name",
    ),
    pytest.param(
        lambda s: run_notebook("training", {"n_transactions": "many"}),
        NotebookParameterError,
        ["'n_transactions' of notebook 'training' must be int, got 'many'"],
        id="param-wrong-type",
    ),
    pytest.param(
        lambda s: run_notebook("ab_testing", {"promote_winner": "maybe"}),
        NotebookParameterError,
        ["'promote_winner' of notebook 'ab_testing' must be bool"],
        id="param-not-a-bool",
    ),
    pytest.param(
        lambda s: run_notebook("training", {"mlflow_run_id": "abc"}),
        NotebookParameterError,
        ["mlflow_run_id is set by the runner; do not pass it"],
        id="param-run-id",
    ),
    pytest.param(
        lambda s: run_notebook("scoring"),
        ConfigurationError,
        ["unknown experiment type 'scoring'; use one of: training"],
        id="param-unknown-notebook",
    ),
    # model names and URIs
    pytest.param(
        lambda s: mlflow_manager.promote_model("fraud_detector_v9", 1),
        RegistryError,
        ["registered model 'fraud_detector_v9' not found", "get_registry_overview() lists"],
        id="model-unknown-name",
    ),
    pytest.param(
        lambda s: mlflow_manager.promote_model(NAME, 7, "Production"),
        RegistryError,
        ["has no version '7'; its versions: 1, 2"],
        id="model-unknown-version",
    ),
    pytest.param(
        lambda s: mlflow_manager.promote_model(NAME, 2, "Production", min_improvement=0.05),
        PromotionRefused,
        ["version 2 of", "refused for 'production'", "difference -0.1000 < required +0.0500"],
        id="model-gate-refused",
    ),
    pytest.param(
        lambda s: mlflow_manager.promote_model(OTHER_DATA_NAME, 2, min_improvement=0.0),
        PromotionRefused,
        [
            "no average_precision of versions 2 and 1 measured on the same data",
            "pass evaluation_data=",
        ],
        id="model-gate-different-data",
    ),
    pytest.param(
        lambda s: mlflow_manager.rollback_model(NAME, "Staging"),
        RegistryError,
        ["no earlier holder of alias 'staging'", "pass to_version= to choose one"],
        id="model-nothing-to-roll-back",
    ),
    pytest.param(
        lambda s: mlflow_manager.resolve_model_uri(f"models:/{NAME}@champion"),
        RegistryError,
        ["has no alias 'champion'; its aliases: production, staging"],
        id="uri-unknown-alias",
    ),
    pytest.param(
        lambda s: mlflow_manager.resolve_model_uri(f"models:/{NAME}"),
        RegistryError,
        ["use models:/NAME@ALIAS or models:/NAME/VERSION"],
        id="uri-unreadable",
    ),
    pytest.param(
        lambda s: load_model("model.pkl"),
        ConfigurationError,
        ["'model.pkl' is not a model URI", "starting with models:/ or runs:/"],
        id="uri-not-a-model-uri",
    ),
    pytest.param(
        lambda s: load_model(f"models:/{NAME}/7"),
        ModelError,
        ["could not load model 'models:/", "check the name, version or alias"],
        id="uri-unknown-version",
    ),
    pytest.param(
        lambda s: mlflow_manager.log_model_with_metadata(s.model, 'fraud\'s "detector"'),
        RegistryError,
        ["holds both quote characters"],
        id="model-name-unsearchable",
    ),
    pytest.param(
        lambda s: mlflow_manager.log_model_with_metadata(build_model("logistic_regression"), NAME),
        TrackingError,
        ["is not a fitted scikit-learn estimator", "fit it"],
        id="model-not-fitted",
    ),
    pytest.param(
        lambda s: train_model(s.traffic, "svm"),
        ModelError,
        ["unknown model type 'svm'; choose one of: logistic_regression"],
        id="model-unknown-type",
    ),
    # stages
    pytest.param(
        lambda s: mlflow_manager.log_model_with_metadata(s.model, NAME, stage="Archived"),
        ConfigurationError,
        ["unknown stage 'Archived'; use one of: Staging, Production"],
        id="stage-log-model",
    ),
    pytest.param(
        lambda s: mlflow_manager.promote_model(NAME, 2, "Archived"),
        ConfigurationError,
        ["unknown stage 'Archived'"],
        id="stage-promote",
    ),
    pytest.param(
        lambda s: mlflow_manager.compare_model_versions(NAME, stages=["Production", "Canary"]),
        ConfigurationError,
        ["unknown stage 'Canary'; use one of: Staging, Production"],
        id="stage-compare",
    ),
    pytest.param(
        lambda s: mlflow_manager.rollback_model(NAME, "Dev"),
        ConfigurationError,
        ["unknown stage 'Dev'"],
        id="stage-rollback",
    ),
    # tracking
    pytest.param(
        lambda s: mlflow_manager.start_training_run(run_id="0" * 32),
        TrackingError,
        [f"run '{'0' * 32}' not found"],
        id="tracking-unknown-run-id",
    ),
    pytest.param(
        lambda s: mlflow_manager.end_run("DONE"),
        ConfigurationError,
        ["unknown run status 'DONE'; use FINISHED, FAILED or KILLED"],
        id="tracking-unknown-status",
    ),
]


@pytest.mark.parametrize(("call", "error", "fragments"), LIBRARY_CASES)
def test_library_refuses_bad_input(store: Store, call, error, fragments) -> None:
    before = _state(store)
    with pytest.raises(FraudkitError) as caught:
        call(store)
    assert type(caught.value) is error
    _assert_one_line(str(caught.value), fragments)
    _assert_untouched(store, before)


CLI_CASES = [
    # CLI arguments
    pytest.param(
        ["run", "training", "-p", "n_transactions", "lots"],
        {},
        1,
        ["must be int, got 'lots'"],
        id="cli-parameter-type",
    ),
    pytest.param(
        ["run", "training", "-f", "{files}/not_yaml.yaml"],
        {},
        1,
        ["--parameters-file", "not valid YAML"],
        id="cli-parameters-file-not-yaml",
    ),
    pytest.param(
        ["run", "training", "-f", "{files}/list.yaml"],
        {},
        1,
        ["must hold a mapping of parameter names to values"],
        id="cli-parameters-file-list",
    ),
    pytest.param(
        ["run", "training", "-f", "{files}/absent.yaml"],
        {},
        1,
        ["does not exist"],
        id="cli-parameters-file-missing",
    ),
    pytest.param(
        ["run", "training", "--timeout", "soon"],
        {},
        1,
        ["'soon' is not a valid float"],
        id="cli-timeout",
    ),
    pytest.param(
        ["pipeline", "-f", "{files}/unknown_notebook.yaml"],
        {},
        1,
        ["names unknown notebooks ['scoring']; use: training"],
        id="cli-pipeline-unknown-notebook",
    ),
    pytest.param(
        ["pipeline", "-f", "{files}/not_yaml.yaml"],
        {},
        1,
        ["cannot read pipeline file", "expected ',' or ']'"],
        id="cli-pipeline-not-yaml",
    ),
    pytest.param(
        ["ui", "--port", "http"], {}, 1, ["'http' is not a valid integer"], id="cli-ui-port"
    ),
    pytest.param(["train"], {}, 1, ["No such command 'train'"], id="cli-unknown-command"),
    # dashboard options
    pytest.param(
        ["dashboard", "export", "--experiment-type", "scoring", "--output-file", "{files}/o.csv"],
        {},
        1,
        ["unknown experiment type 'scoring'; use one of"],
        id="dash-export-type",
    ),
    pytest.param(
        ["dashboard", "export", "--output-file", "{files}/runs.txt"],
        {},
        1,
        ["cannot tell the export format", "or pass --format"],
        id="dash-export-suffix",
    ),
    pytest.param(
        ["dashboard", "export", "--output-file", "{files}/o.csv", "--format", "xml"],
        {},
        1,
        ["'xml' is not one of 'csv', 'parquet', 'json'"],
        id="dash-export-format",
    ),
    pytest.param(
        ["dashboard", "cleanup", "--experiment-type", "training", "--keep-last-n", "-1"],
        {},
        1,
        ["-1 is not in the range x>=0"],
        id="dash-cleanup-negative",
    ),
    pytest.param(
        ["dashboard", "cleanup", "--experiment-type", "training"],
        {},
        1,
        ["give --keep-last-n N, --older-than AGE"],
        id="dash-cleanup-no-rule",
    ),
    pytest.param(
        ["dashboard", "cleanup", "--experiment-type", "training", "--older-than", "3"],
        {},
        1,
        ["cannot read age '3'; use a number and a unit"],
        id="dash-cleanup-age",
    ),
    pytest.param(
        ["dashboard", "history", "--model-name", "missing_model"],
        {},
        1,
        ["registered model 'missing_model' not found", "dashboard registry` lists"],
        id="dash-history-model",
    ),
    pytest.param(
        ["dashboard", "compare", "--versions", "1", "7"],
        {},
        1,
        ["has no version '7'; its versions: 1, 2"],
        id="dash-compare-version",
    ),
    # tracking URIs
    pytest.param(
        ["dashboard", "summary"],
        {"MLFLOW_TRACKING_URI": "ftp://files.internal/mlflow"},
        1,
        ["unsupported scheme 'ftp'; use http(s)://"],
        id="uri-unsupported-scheme",
    ),
    pytest.param(
        ["dashboard", "summary"],
        {"MLFLOW_TRACKING_URI": "mlflow.db"},
        1,
        ["has no scheme; use e.g. http://127.0.0.1:5000"],
        id="uri-no-scheme",
    ),
    pytest.param(
        ["dashboard", "summary"],
        {"MLFLOW_TRACKING_URI": "sqlite:///{files}/a_file/mlflow.db"},
        1,
        ["cannot open the tracking store", "writable folder"],
        id="uri-sqlite-under-a-file",
    ),
    pytest.param(
        ["dashboard", "summary"],
        UNREACHABLE,
        2,
        ["cannot reach the MLflow tracking store http://127.0.0.1:9", "start the server"],
        id="uri-unreachable-dashboard",
    ),
    pytest.param(
        ["run", "training", "-p", "n_transactions", "2000"],
        UNREACHABLE,
        2,
        ["cannot reach the MLflow tracking store"],
        id="uri-unreachable-run",
    ),
    pytest.param(
        ["ui"],
        {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
        1,
        ["the store is a tracking server already; open http://127.0.0.1:9 in a browser"],
        id="uri-ui-on-server",
    ),
]


@pytest.mark.parametrize(("args", "env", "code", "fragments"), CLI_CASES)
def test_cli_refuses_bad_input(store: Store, args, env, code, fragments) -> None:
    before = _state(store)
    args = [a.format(files=store.files) for a in args]
    env = {k: v.format(files=store.files) for k, v in env.items()}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ") and not result.stdout
    _assert_one_line(result.stderr, fragments)
    _assert_untouched(store, before)


def test_missing_database_driver_is_a_configuration_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(store)
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # as if mysqlclient were not installed
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mysql://fraud@127.0.0.1:9/mlflow")
    with pytest.raises(ConfigurationError) as caught:
        mlflow_manager.setup_experiments()
    _assert_one_line(str(caught.value), ["needs a database driver", "MySQLdb", "pip install"])
    _assert_untouched(store, before)


@pytest.mark.notebook
def test_notebook_with_an_unknown_model_alias_fails_its_run_and_moves_nothing(
    store: Store,
) -> None:
    """The one bad input found only while a notebook runs: its run ends FAILED, not RUNNING."""
    runs, registry = _state(store)
    parameters = {"model_b": f"models:/{NAME}@champion", "n_transactions": 2_000}
    with pytest.raises(NotebookExecutionError) as caught:
        run_notebook("ab_testing", parameters, progress=False)
    error = caught.value
    _assert_one_line(str(error), ["notebook 'ab_testing' failed in cell", "'champion'"])
    assert "its aliases: production, staging" in error.error
    after_runs, after_registry = _state(store)
    assert after_registry == registry
    assert {k: v for k, v in after_runs.items() if k not in runs} == {error.run_id: "FAILED"}
