"""fraudkit.cli.dashboard (``fraudkit dashboard ...``) through click's CliRunner, on SQLite
and a real mlflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from support import dashboard_store
from support.dashboard_store import Store, sqlite_only

from fraudkit.cli import cli
from fraudkit.cli import dashboard as dashboard_cli
from fraudkit.core.config import DEFAULT_MODEL_NAME
from fraudkit.dashboard.records import MODEL_COLUMNS, REGISTRY_COLUMNS

# The populated store of the dashboard tests (built once per module, copied per test).
populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    # CliRunner's stdout is not a terminal: tables come as tab-separated lines. A wide
    # virtual terminal keeps the tests that fake one (see _terminal) readable.
    return CliRunner().invoke(cli, ["dashboard", *args], env={"COLUMNS": "250", **(env or {})})


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the dashboard believe stdout is a terminal: rich tables."""
    monkeypatch.setattr(dashboard_cli, "stdout_is_terminal", lambda: True)


def _lines(text: str) -> list[list[str]]:
    """The tab-separated lines of a piped table."""
    return [line.split("\t") for line in text.splitlines()]


def _ok(*args: str) -> str:
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _json(*args: str) -> object:
    return json.loads(_ok(*args, "--json"))


def _fails(code: int, *args: str, env: dict[str, str] | None = None) -> str:
    result = _invoke(*args, env=env)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    return result.stderr


def test_every_command_on_both_backends(store: Store, backend, tmp_path):
    t = store.training
    summary = _json("summary")
    training = next(e for e in summary["experiments"] if e["experiment_type"] == "training")
    assert (training["total"], training["latest_run_id"]) == (6, t[0])
    assert summary["models"][0]["aliases"] == "production=1,staging=2"
    rows = _lines(_ok("summary"))
    header = rows[1]
    monitoring = dict(zip(header, next(r for r in rows if r[0] == "monitoring"), strict=True))
    assert (monitoring["finished"], monitoring["failed"], monitoring["total"]) == ("1", "1", "2")

    registry = _json("registry")
    assert [(r["version"], r["aliases"]) for r in registry] == [(1, "production"), (2, "staging")]
    assert t[4] in _ok("registry")

    compared = _json("compare")
    assert [row["label"] for row in compared["versions"]] == ["production", "staging", "difference"]
    assert _lines(_ok("compare"))[0] == ["field", "production", "staging", "difference"]

    exported = _json("export", "--output-file", str(tmp_path / "runs.csv"))
    assert exported["rows"] == 8
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 8

    history = _json("history", "--model-name", DEFAULT_MODEL_NAME)
    assert {row["version"] for row in history["history"]} == {1, 2}

    plan = _json("cleanup", "--experiment-type", "training", "--keep-last-n", "1")
    assert plan["dry_run"] and plan["to_delete"] == [t[2], t[3]]
    done = _json("cleanup", "--experiment-type", "training", "--keep-last-n", "1", "--yes")
    assert done["deleted"] == [t[2], t[3]]
    assert {p["run_id"] for p in done["protected"]} == {t[1], t[4], t[5]}
    assert _json("summary")["experiments"][0]["total"] == 4
    if backend == "server":
        message = _fails(
            1, "cleanup", "--experiment-type", "training", "--keep-last-n", "0", "--permanent"
        )
        assert "mlflow gc" in message


@sqlite_only
def test_summary_and_registry_tables_on_a_terminal(store: Store, terminal):
    text = _ok("summary")
    assert "Experiments" in text and "Registered models" in text
    assert "training" in text and "t0" in text and "0.7500" in text  # best average precision
    text = _ok("registry")
    assert store.backing in text and "production" in text


@sqlite_only
def test_compare_on_a_terminal_signs_the_differences(store: Store, terminal):
    text = _ok("compare")
    assert "production vs staging" in text and "+0.0500" in text
    assert store.backing in text and store.staging in text  # COLUMNS=250: ids fit


@sqlite_only
def test_compare_versions_option(store: Store):
    compared = _json("compare", "--versions", "2", "1", "--model-name", DEFAULT_MODEL_NAME)
    rows = {row["label"]: row for row in compared["versions"]}
    assert rows["v2"]["run_id"] == store.staging
    assert rows["difference"]["average_precision"] == pytest.approx(-0.05)
    assert _lines(_ok("compare", "--versions", "2", "1"))[0] == ["field", "v2", "v1", "difference"]


@sqlite_only
def test_compare_errors(store: Store):
    store.manager.client.delete_registered_model_alias(DEFAULT_MODEL_NAME, "staging")
    assert "no 'staging' alias" in _fails(1, "compare")
    assert "not found" in _fails(1, "compare", "--model-name", "nope")
    assert "no version '9'" in _fails(1, "compare", "--versions", "1", "9")
    _fails(1, "compare", "--versions", "1")  # needs two


@sqlite_only
@pytest.mark.parametrize(("name", "fmt"), [("a.parquet", None), ("a.out", "json"), ("a.CSV", None)])
def test_export_formats_and_filter(store: Store, tmp_path, name, fmt):
    args = ["export", "--experiment-type", "training", "--output-file", str(tmp_path / name)]
    args += ["--format", fmt] if fmt else []
    args += ["--filter", "metrics.average_precision > 0.62"]
    result = _json(*args)
    assert result["rows"] == 3 and result["format"] == (fmt or Path(name).suffix[1:].lower())
    text = _ok(*args)
    assert text.startswith("Exported 3 runs") and name in text


@sqlite_only
def test_export_errors(store: Store, tmp_path):
    assert "unknown experiment type" in _fails(
        1, "export", "--experiment-type", "nope", "--output-file", str(tmp_path / "a.csv")
    )
    assert "cannot tell" in _fails(1, "export", "--output-file", str(tmp_path / "a.txt"))
    _fails(1, "export", "--output-file", str(tmp_path / "a.csv"), "--format", "xlsx")
    _fails(1, "export")  # --output-file is required
    bad_filter = _fails(1, "export", "--output-file", str(tmp_path / "a.csv"), "--filter", "x ==")
    assert "x ==" in bad_filter or "filter" in bad_filter.lower()


@sqlite_only
def test_cleanup_dry_run_then_yes(store: Store):
    t = store.training
    args = ["cleanup", "--experiment-type", "training", "--keep-last-n", "1"]
    text = _ok(*args)
    assert text.startswith("Dry run: would delete 2 of 6 runs")
    assert t[2] in text and "Protected" in text and "running" in text
    assert _json("summary")["experiments"][0]["total"] == 6  # nothing deleted
    text = _ok(*args, "--yes")
    assert text.startswith("Deleted 2 runs") and "protected 3" in text
    assert _json("summary")["experiments"][0]["total"] == 4


@sqlite_only
def test_cleanup_older_than_and_permanent(store: Store):
    t = store.training
    args = ["cleanup", "--experiment-type", "training", "--older-than", "36h", "--keep-last-n"]
    plan = _json(*args, "3", "--permanent")
    assert plan["permanent"] and plan["to_delete"] == [t[3]]
    assert "would permanently delete 1" in _ok(*args, "3", "--permanent")
    assert _ok(*args, "3", "--permanent", "--yes").startswith("Permanently deleted 1 runs")
    with pytest.raises(Exception, match="not found"):
        store.manager.client.get_run(t[3])


@sqlite_only
def test_cleanup_progress_bar_on_large_deletions(store: Store, monkeypatch):
    monkeypatch.setattr(dashboard_cli, "PROGRESS_MIN", 2)
    result = _invoke("cleanup", "--experiment-type", "training", "--keep-last-n", "0", "--yes")
    assert result.exit_code == 0, result.output
    assert "Deleting 3 runs" in result.stderr and "Deleting" not in result.stdout


@sqlite_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment-type", "nope", "--keep-last-n", "1"], "unknown experiment type"),
        (["--experiment-type", "training"], "--keep-last-n"),
        (["--experiment-type", "training", "--keep-last-n", "-1"], "-1"),
        (["--experiment-type", "training", "--older-than", "soon"], "cannot read age"),
        (["--keep-last-n", "1"], "--experiment-type"),
    ],
)
def test_cleanup_errors(store: Store, args, message):
    assert message in _fails(1, "cleanup", *args)


@sqlite_only
def test_history_one_metric_all_metrics_and_plot(store: Store, tmp_path):
    rows = _lines(_ok("history"))  # average_precision: one row per version and run
    assert rows[0] == ["version", "source", "run_id", "logged", "w0"]
    assert [(r[0], r[1], r[2], float(r[4])) for r in rows[1:]] == [
        ("1", "training", store.backing, 0.7),
        ("2", "training", store.staging, 0.75),
    ]
    long = _lines(_ok("history", "--metric", "all"))
    assert long[0] == ["version", "source", "metric", "step", "timestamp", "value", "run_id"]
    assert {r[2] for r in long[1:]} == {"average_precision", "roc_auc"} and len(long) == 5
    only = _json("history", "--metric", "roc_auc")
    assert only["metric"] == "roc_auc"
    assert {row["metric"] for row in only["history"]} == {"roc_auc"}
    plot = tmp_path / "history.png"
    result = _invoke("history", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:4] == b"\x89PNG" and f"Wrote {plot}" in result.stderr
    assert "Wrote" not in result.stdout  # a pipe gets the table only
    message = _fails(1, "history", "--plot", str(tmp_path / "x.png"), "--metric", "drift")
    assert "'drift'" in message and "average_precision, roc_auc" in message
    assert not (tmp_path / "x.png").exists()
    assert "not found" in _fails(1, "history", "--model-name", "nope")


@sqlite_only
def test_history_on_a_terminal(store: Store, terminal):
    text = _ok("history")
    assert "average_precision by version and window" in text and "0.7500" in text
    assert "roc_auc" in _ok("history", "--metric", "all")


@pytest.mark.parametrize(
    "args",
    [
        ["summary"],
        ["registry"],
        ["compare"],
        ["export", "--output-file", "out.csv"],
        ["cleanup", "--experiment-type", "training", "--keep-last-n", "1"],
        ["history"],
    ],
)
def test_unreachable_server_exits_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
    }
    assert "cannot reach" in _fails(2, *args, env=env)


def test_an_empty_registry_pipes_only_its_header():
    # No store yet: MLflow creates one; a pipe gets the header, the person a note.
    result = _invoke("registry")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["\t".join(REGISTRY_COLUMNS)]
    assert "No registered models yet." in result.stderr
    summary = _ok("summary").splitlines()
    assert summary[-2:] == ["# Registered models", "\t".join(MODEL_COLUMNS)]


def test_unknown_option_is_a_usage_error():
    assert "--nope" in _fails(1, "summary", "--nope")


@sqlite_only
def test_python_m_fraudkit_dashboard(store: Store, fraudkit_home):
    env = {**os.environ, "FRAUDKIT_HOME": str(fraudkit_home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "fraudkit.dashboard", "summary", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["experiments"][0]["total"] == 6
    # The group `python -m fraudkit.dashboard` calls maps errors like the top-level one.
    failed = CliRunner().invoke(dashboard_cli.dashboard, ["history", "--model-name", "nope"])
    assert failed.exit_code == 1 and failed.stderr.startswith("Error: registered model 'nope'")
