"""The notebook runner and the training / model-comparison notebooks, executed for real."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

# Jupyter reads sys.prefix into its search path once, at import: imported here, before the
# kernel tests patch sys.prefix, the path stays the real one for every other test.
import jupyter_core.paths  # noqa: F401
import nbformat
import pytest
from click.testing import CliRunner

from fraudkit import mlflow_manager
from fraudkit.cli import cli
from fraudkit.core.config import kit_notebooks_dir, notebooks_dir
from fraudkit.core.exceptions import (
    ConfigurationError,
    NotebookExecutionError,
    NotebookParameterError,
)
from fraudkit.runner import execution as notebooks
from fraudkit.runner.execution import KERNEL_NAME, run_notebook
from fraudkit.runner.parameters import (
    NOTEBOOKS,
    log_parameters,
    notebook_parameters,
    parameter_values,
    validate_parameters,
)
from fraudkit.runner.pipeline import run_pipeline

pytestmark = pytest.mark.notebook

SMALL = {"n_transactions": 20_000, "fraud_rate": 0.01}
MODEL = "credit_card_fraud_detector"


@pytest.fixture
def store(backend):
    """The default manager; notebook tests run on the embedded store only."""
    return mlflow_manager


def _artifacts(run_id: str, path: str) -> set[str]:
    return {a.path for a in mlflow_manager.client.list_artifacts(run_id, path)}


def _user_python3_kernel_without_fraudkit(folder: Path) -> Path:
    """A user-level `python3` kernelspec whose kernel cannot even start; return the data dir."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", "raise SystemExit('not the kit kernel')", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    return folder


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_training_notebook_headless(store, fraudkit_home, tmp_path, monkeypatch, capfd):
    data_dir = _user_python3_kernel_without_fraudkit(tmp_path / "jupyter-data")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    capfd.readouterr()
    result = run_notebook("training", SMALL, pipeline_id="pipe-1", progress=False)
    # The kit's own kernel ran it (the user's python3 would have died), over IPC sockets
    # kept out of the working directory: no TCP port, so no "without encryption" warning.
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err
    assert not list(Path.cwd().glob("kernel-ipc*"))
    run = store.client.get_run(result.run_id)
    assert result.status == run.info.status == "FINISHED"
    assert run.info.run_name.startswith("training-01_training-")
    tags = run.data.tags
    assert tags["fraudkit.notebook"] == "01_training.ipynb"
    assert tags["fraudkit.pipeline_id"] == "pipe-1"
    assert tags["fraudkit.experiment_type"] == "training"
    assert len(tags["fraudkit.data_fingerprint"]) >= 16
    # The runner logged every parameter of the notebook, defaults included.
    assert run.data.params["model_type"] == "hist_gradient_boosting"
    assert run.data.params["n_transactions"] == "20000"
    assert run.data.params["fraud_rate"] == "0.01"
    assert run.data.params["data_path"] == "None"
    assert set(notebook_parameters("training")) - {"mlflow_run_id"} <= set(run.data.params)
    metrics = run.data.metrics
    assert 0 < metrics["average_precision"] <= metrics["bayes_average_precision"] + 0.05
    assert "val_average_precision" in metrics
    assert {
        "notebook/notebook.ipynb",
        "notebook/report.html",
        "notebook/notebook.html",
    } <= _artifacts(result.run_id, "notebook")
    assert {"plots/precision_recall.png", "plots/reliability.png"} <= _artifacts(
        result.run_id, "plots"
    )
    # Calibrated probabilities: the expected fraud count on test is near the actual one
    # (about 40 frauds here, so +-35 % is more than two standard deviations).
    assert 0.65 < metrics["expected_to_actual_fraud"] < 1.35
    assert metrics["brier_score"] < 0.01 and metrics["expected_calibration_error"] < 0.01
    assert 0.02 < metrics["threshold"] < 0.98
    assert tags["fraudkit.summary.small_sample_warnings"] == "none"
    # The first model ever registered is both staging and production.
    version = store.client.get_model_version_by_alias(MODEL, "production")
    assert version.run_id == result.run_id
    assert sorted(version.aliases) == ["production", "staging"]
    # Its test metrics are linked to the logged model and to the test period's digest.
    logged = store.client.get_logged_model(version.tags["fraudkit.model_id"])
    linked = {m.key: m for m in logged.metrics}
    assert linked["average_precision"].dataset_name == "test"
    assert linked["average_precision"].dataset_digest == tags["fraudkit.data_fingerprint.test"]
    # The monitoring reference is the validation and test periods with the model's scores
    # on them; the fraud count of all the data goes with it.
    reference, scores = store.load_reference(result.run_id)
    n_rows = int(run.data.params["n_transactions"])
    assert len(reference) == len(scores) == 2 * n_rows // 5
    assert metrics["base_rate_rows"] == n_rows
    assert metrics["base_rate_frauds"] >= reference["Class"].sum() > 0
    # The report hides code; the full rendering keeps it.
    report = re.sub(r"<[^>]+>", "", result.html_report.read_text())
    full = re.sub(r"<[^>]+>", "", result.html_full.read_text())
    assert "train_model(" in full and "train_model(" not in report
    assert "data:image/png;base64" in result.html_report.read_text()
    executed = nbformat.read(result.executed_notebook, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_comparison_notebook_nested_runs_and_staging(store):
    first = run_notebook("training", SMALL, progress=False)
    result = run_notebook(
        "model_comparison",
        {**SMALL, "model_types": "logistic_regression,hist_gradient_boosting"},
        progress=False,
    )
    children = store.client.search_runs(
        [store.experiment_id("model_comparison")],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )
    assert sorted(c.data.params["model_type"] for c in children) == [
        "hist_gradient_boosting",
        "logistic_regression",
    ]
    assert all(c.info.status == "FINISHED" for c in children)
    assert all("average_precision" in c.data.metrics for c in children)
    staging = store.client.get_model_version_by_alias(MODEL, "staging")
    production = store.client.get_model_version_by_alias(MODEL, "production")
    assert staging.run_id == result.run_id
    assert production.run_id == first.run_id  # production stays with the first model
    summary = store.client.get_run(result.run_id).data.tags
    assert summary["fraudkit.summary.registered_version"] == str(staging.version)
    # Each candidate's Card Precision@k at the alert budget, rows standing in for cards.
    assert all(0 <= c.data.metrics["card_precision_at_k"] <= 1 for c in children)
    assert all(c.data.metrics["alert_budget_k"] == 100 for c in children)
    # The Kaggle schema spans a day or two: no rolling folds, and the report says why.
    assert summary["fraudkit.summary.prequential_n_folds"] == "0"
    report = re.sub(r"<[^>]+>", "", result.html_report.read_text())
    assert "prequential validation asked for 4 folds" in report and "skipped" in report


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_notebook_runs_like_jupyterlab_without_run_id(store, tmp_path):
    # No parameter injection at all: the committed defaults, and the notebook starts its run.
    import papermill

    output = tmp_path / "interactive.ipynb"
    papermill.execute_notebook(
        str(notebooks_dir() / NOTEBOOKS["training"]), str(output), progress_bar=False
    )
    runs = store.client.search_runs([store.experiment_id("training")])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["n_transactions"] == "150000"
    # log_parameters logs the same params the runner would have.
    expected = {k: str(v) for k, v in parameter_values("training").items()}
    assert {k: run.data.params[k] for k in expected} == expected
    assert "fraudkit.notebook" not in run.data.tags  # not started by the runner
    assert store.client.get_model_version_by_alias(MODEL, "production").run_id == run.info.run_id


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_failed_notebook_is_recorded_and_reported(store, tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(NotebookExecutionError) as caught:
        run_notebook("training", {"data_path": str(missing)}, progress=False)
    error = caught.value
    assert error.cell_index is not None
    assert "DataValidationError" in error.error and "missing.csv" in error.error
    assert f"cell {error.cell_index}" in str(error)
    run = store.client.get_run(error.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["fraudkit.failed_cell"] == str(error.cell_index)
    assert "missing.csv" in run.data.tags["fraudkit.error"]
    assert {"notebook/notebook.ipynb", "notebook/report.html", "notebook/error.txt"} <= _artifacts(
        error.run_id, "notebook"
    )
    executed = nbformat.read(error.output_path, as_version=4)
    failing = executed.cells[error.cell_index]
    assert "load_or_simulate" in failing.source
    assert any(o.get("output_type") == "error" for o in failing.outputs)
    # The CLI exits non-zero and names the cell, without a traceback.
    result = CliRunner().invoke(
        cli, ["run", "training", "-p", "data_path", str(missing), "--quiet"]
    )
    assert result.exit_code == 1
    assert re.search(r"Error: notebook 'training' failed in cell \d+", result.output)
    assert "Traceback" not in result.output
    statuses = {r.info.status for r in store.client.search_runs([store.experiment_id("training")])}
    assert statuses == {"FAILED"}  # nothing left RUNNING


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bad_parameters_are_refused_before_any_run(store):
    with pytest.raises(NotebookParameterError, match="no parameter 'n_rows'"):
        run_notebook("training", {"n_rows": 10}, progress=False)
    with pytest.raises(NotebookParameterError, match="must be int"):
        run_notebook("training", {"n_transactions": "many"}, progress=False)
    with pytest.raises(NotebookParameterError, match="set by the runner"):
        validate_parameters("training", {"mlflow_run_id": "abc"})
    result = CliRunner().invoke(cli, ["run", "training", "-p", "n_rows", "10"])
    assert result.exit_code == 1 and "no parameter 'n_rows'" in result.output
    assert store.client.search_runs([store.experiment_id("training")]) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_missing_kit_kernel_is_refused_before_any_run(store, monkeypatch, tmp_path):
    monkeypatch.setattr(notebooks, "KERNEL_NAME", "fraudkit-not-installed")
    # A prefix the first-use registration cannot write to (a file where kernels/ would be).
    prefix = tmp_path / "read-only"
    (prefix / "share" / "jupyter").mkdir(parents=True)
    (prefix / "share" / "jupyter" / "kernels").write_text("")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    with pytest.raises(ConfigurationError) as caught:
        run_notebook("training", SMALL, progress=False)
    message = str(caught.value)
    assert "'fraudkit-not-installed'" in message and "make install" in message
    assert "ipykernel install --sys-prefix --name fraudkit-not-installed" in message
    assert store.client.search_runs([store.experiment_id("training")]) == []


def test_missing_kit_kernel_is_registered_in_this_pythons_prefix(monkeypatch, tmp_path):
    # An editable install (make install aside, environment.yml) has no kernelspec of its own.
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setattr(notebooks, "KERNEL_NAME", "fraudkit-first-use")
    notebooks.ensure_kernel()
    spec = json.loads((prefix / "share/jupyter/kernels/fraudkit-first-use/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and "ipykernel_launcher" in spec["argv"]
    assert spec["display_name"] == notebooks.KERNEL_DISPLAY_NAME
    assert [p.name for p in (prefix / "share/jupyter/kernels").iterdir()] == ["fraudkit-first-use"]
    notebooks.ensure_kernel()  # found, not registered again


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_user_level_fraudkit_kernel_of_another_python_is_refused(store, monkeypatch, tmp_path):
    # Outside a virtualenv (or with JUPYTER_PREFER_ENV_PATH=0) Jupyter finds a user-level
    # spec before the one installed with fraudkit.
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    spec = tmp_path / "jupyter-data" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = ["/opt/another-env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "old"}))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    with pytest.raises(ConfigurationError) as caught:
        run_notebook("training", SMALL, progress=False)
    message = str(caught.value)
    assert f"found at {spec}" in message and "/opt/another-env/bin/python" in message
    assert store.client.search_runs([store.experiment_id("training")]) == []


def test_copied_notebooks_are_the_ones_run_when_named(tmp_path, monkeypatch):
    # Set, then unset: monkeypatch then restores "unset" after the CLI has set it.
    monkeypatch.setenv("FRAUDKIT_NOTEBOOKS_DIR", str(notebooks_dir()))
    monkeypatch.delenv("FRAUDKIT_NOTEBOOKS_DIR")
    mine = tmp_path / "mine"
    result = CliRunner().invoke(cli, ["notebooks", "copy", str(mine)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in mine.iterdir()) == sorted(NOTEBOOKS.values())
    assert f"set FRAUDKIT_NOTEBOOKS_DIR={mine.resolve()}" in result.output
    again = CliRunner().invoke(cli, ["notebooks", "copy", str(mine)])
    assert again.exit_code == 1 and "pass --force" in again.output
    (mine / NOTEBOOKS["training"]).unlink()
    (mine / "notes.txt").write_text("kept")
    forced = CliRunner().invoke(cli, ["notebooks", "copy", str(mine), "--force"])
    assert forced.exit_code == 0 and (mine / "notes.txt").read_text() == "kept"
    # The runner reads the folder it is told of, so an edited copy is what runs.
    (mine / NOTEBOOKS["training"]).unlink()
    missing = CliRunner().invoke(cli, ["run", "training", "--notebooks-dir", str(mine)])
    assert missing.exit_code == 1
    assert str(mine.resolve() / NOTEBOOKS["training"]) in missing.output
    kit = CliRunner().invoke(cli, ["notebooks", "copy", str(kit_notebooks_dir())])
    assert kit.exit_code == 1 and "holds the kit's own notebooks" in kit.output


def test_parameter_values_are_defaults_overridden():
    values = parameter_values("training", {"n_transactions": "5000", "seed": 3})
    assert values["n_transactions"] == 5000 and values["seed"] == 3
    assert values["model_type"] == "hist_gradient_boosting" and values["data_path"] is None
    assert values["fraud_rate"] == pytest.approx(0.00172)
    assert set(values) == set(notebook_parameters("training")) - {"mlflow_run_id"}
    with pytest.raises(NotebookParameterError, match="no parameter 'n_rows'"):
        parameter_values("training", {"n_rows": 1})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_log_parameters_logs_only_when_the_runner_did_not(store):
    namespace = {**parameter_values("training"), "seed": 5, "unrelated": 1}
    with store.start_training_run("interactive") as run:
        logged = log_parameters("training", {**namespace, "mlflow_run_id": None})
    params = store.get_run(run.info.run_id).data.params
    assert logged["seed"] == 5 and "unrelated" not in logged and "mlflow_run_id" not in logged
    assert params["seed"] == "5" and params["data_path"] == "None" and "unrelated" not in params
    with store.start_training_run("headless") as run:
        log_parameters("training", {**namespace, "mlflow_run_id": run.info.run_id})
    assert store.get_run(run.info.run_id).data.params == {}


def _log_params_keys(source: str) -> set[str]:
    """Literal keys of the dicts passed to any `log_params(...)` call in a code cell."""
    code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
    keys: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "log_params":
            for argument in node.args:
                if isinstance(argument, ast.Dict):
                    keys |= {k.value for k in argument.keys if isinstance(k, ast.Constant)}
    return keys


def test_notebooks_are_narrative_and_committed_clean():
    for name, filename in NOTEBOOKS.items():
        notebook = nbformat.read(notebooks_dir() / filename, as_version=4)
        assert notebook.metadata.kernelspec.name == KERNEL_NAME, name
        declared = set(notebook_parameters(name))
        code = [c for c in notebook.cells if c.cell_type == "code"]
        calls = 0
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, (name, cell.id)
            if "parameters" in cell.metadata.get("tags", []):
                continue
            assert len(cell.source.splitlines()) <= 15, (name, cell.id)
            # The runner (or log_parameters) logs the parameters: no cell lists them again.
            assert not _log_params_keys(cell.source) & declared, (name, cell.id)
            calls += cell.source.count(f'log_parameters("{name}", globals())')
        assert calls == 1, name


def test_parameters_cell_declares_typed_defaults():
    for name in NOTEBOOKS:
        if not (notebooks_dir() / NOTEBOOKS[name]).exists():
            continue
        declared = notebook_parameters(name)
        assert declared["mlflow_run_id"]["type"] == "str | None"
        assert all(spec["type"] != "None" for spec in declared.values()), name
        assert all(spec["help"] for spec in declared.values()), name


def test_validate_parameters_coerces_command_line_text():
    checked = validate_parameters(
        "training", {"n_transactions": "5000", "threshold_target": "1", "data_path": "null"}
    )
    assert checked == {"n_transactions": 5000, "threshold_target": 1.0, "data_path": None}


def test_a_schema_is_checked_before_any_run_is_created(tmp_path):
    assert validate_parameters("training", {"schema": "handbook"}) == {"schema": "handbook"}
    with pytest.raises(NotebookParameterError, match=r"parameter 'schema'.*neither a preset"):
        validate_parameters("training", {"schema": "handbok"})
    with pytest.raises(NotebookParameterError, match="neither a preset"):
        validate_parameters("monitoring", {"schema": str(tmp_path / "missing.yaml")})


def test_the_pipeline_passes_data_and_schema_to_every_notebook_declaring_them(
    fraudkit_home, monkeypatch
):
    calls = []

    def record(name, parameters, **_):
        calls.append((name, dict(parameters)))
        folder = Path(name)
        return notebooks.NotebookRun(
            name, f"run-{name}", name, "FINISHED", folder, folder, folder, folder, 0.0
        )

    monkeypatch.setattr("fraudkit.runner.pipeline.run_notebook", record)
    monkeypatch.setattr("fraudkit.runner.pipeline._retraining_recommended", lambda *_: True)
    monkeypatch.setattr("fraudkit.runner.pipeline.build_report_index", lambda **_: Path("i"))
    run_pipeline(data_path="tx.csv", schema="schema.yaml", progress=False)
    assert [name for name, _ in calls] == list(NOTEBOOKS)
    for name, parameters in calls:
        assert parameters["data_path"] == "tx.csv", name
        assert parameters["schema"] == "schema.yaml", name


def test_papermill_cli_runs_a_notebook_directly(tmp_path, fraudkit_home):
    papermill = Path(sys.executable).with_name("papermill")
    output = tmp_path / "out.ipynb"
    completed = subprocess.run(
        [
            str(papermill),
            str(notebooks_dir() / NOTEBOOKS["training"]),
            str(output),
            "-p",
            "n_transactions",
            "20000",
            "-p",
            "fraud_rate",
            "0.01",
            "--no-progress-bar",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert (fraudkit_home / "mlflow.db").exists()  # the kit's store, not one in the cwd
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_ab_testing_notebook_promotes_a_significantly_better_challenger(store):
    champion = run_notebook(
        "training", {**SMALL, "model_type": "logistic_regression"}, progress=False
    )
    challenger = run_notebook("training", SMALL, progress=False)  # HGB, registered as staging
    result = run_notebook(
        "ab_testing",
        {"n_transactions": 40_000, "fraud_rate": 0.01, "n_resamples": 500},
        progress=False,
    )
    run = store.client.get_run(result.run_id)
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("ab_testing-03_ab_testing-")
    assert tags["fraudkit.summary.model_a_version"] == "1"
    assert tags["fraudkit.summary.model_b_version"] == "2"
    summary_keys = {key.removeprefix("fraudkit.summary.") for key in tags}
    assert {"winner", "relative_improvement", "p_value", "statistical_significance"} <= (
        summary_keys
    )
    assert "improvement" not in summary_keys  # relative, and named so
    result_metrics = run.data.metrics
    assert result_metrics["relative_improvement"] == pytest.approx(
        result_metrics["metric_b"] / result_metrics["metric_a"] - 1
    )
    assert "summary.json" in {a.path for a in store.client.list_artifacts(result.run_id)}
    assert tags["fraudkit.summary.winner"] == "B"
    assert tags["fraudkit.summary.statistical_significance"] == "True"
    assert tags["fraudkit.summary.promoted"] == "True"
    production = store.client.get_model_version_by_alias(MODEL, "production")
    assert production.run_id == challenger.run_id != champion.run_id
    moves = store.alias_history(MODEL, "production")
    assert moves.iloc[-1]["evidence_run_id"] == result.run_id
    power_names = {"power_observed", "power_at_min_difference", "required_transactions"}
    assert power_names | {"online_required_transactions"} <= set(result_metrics)
    assert tags["fraudkit.summary.verdict_note"].startswith("B won")

    # ~34 frauds at the default fraud rate: no winner, and too little power to call it
    # "no difference".
    small = run_notebook(
        "ab_testing",
        {
            "model_a": f"models:/{MODEL}/1",
            "model_b": f"models:/{MODEL}/2",
            "n_transactions": 20_000,
            "n_resamples": 500,
            "promote_winner": False,
        },
        progress=False,
    )
    small_run = store.client.get_run(small.run_id)
    note = small_run.data.tags["fraudkit.summary.verdict_note"]
    assert small_run.data.tags["fraudkit.summary.winner"] == "None"
    assert note.startswith("inconclusive: needs about ")
    required = int(small_run.data.metrics["required_transactions"])
    assert f"{required:,} transactions" in note and required > 20_000
    assert small_run.data.metrics["power_at_min_difference"] < 0.8
    report = re.sub(r"<[^>]+>", "", small.html_report.read_text())
    assert "Verdict: inconclusive: needs about" in report


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_training_on_too_little_data_finishes_and_says_so(store):
    # Seed 1 at 10,000 rows: 1 fraud in the validation period, so neither the calibration
    # nor a precision-0.8 threshold can be estimated; the run warns instead of failing.
    result = run_notebook("training", {"n_transactions": 10_000, "seed": 1}, progress=False)
    run = store.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    warnings = run.data.tags["fraudkit.summary.small_sample_warnings"]
    assert "the validation period holds only 1 fraud in 2,000 rows" in warnings
    assert "About 60,000 rows at its fraud rate" in warnings
    assert "no threshold reaches precision 0.8 on 1 frauds" in warnings
    assert run.data.tags["fraudkit.summary.threshold_fallback"] == "True"
    report = re.sub(r"<[^>]+>", "", result.html_report.read_text())
    assert "Warning: the test period holds only" in report
