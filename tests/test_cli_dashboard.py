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
from fraudkit.config import DEFAULT_MODEL_NAME

# The populated store of the dashboard tests (built once per module, copied per test).
populated_sqlite = dashboard_store.populated_sqlite
store = dashboard_store.store


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    # A wide virtual terminal keeps ids unwrapped in tables.
    return CliRunner().invoke(cli, ["dashboard", *args], env={"COLUMNS": "250", **(env or {})})


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
    assert "1 finished, 1 failed" in _ok("summary")  # the monitoring row

    registry = _json("registry")
    assert [(r["version"], r["aliases"]) for r in registry] == [(1, "production"), (2, "staging")]
    assert t[4] in _ok("registry")

    compared = _json("compare")
    assert [row["label"] for row in compared["versions"]] == ["production", "staging", "difference"]
    assert "production vs staging" in _ok("compare")

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
def test_summary_and_registry_tables(store: Store):
    text = _ok("summary")
    assert "Experiments" in text and "Registered models" in text
    assert "training" in text and "t0" in text and "0.7500" in text  # best average precision
    text = _ok("registry")
    assert store.backing in text and "production" in text


@sqlite_only
def test_compare_versions_option(store: Store):
    compared = _json("compare", "--versions", "2", "1", "--model-name", DEFAULT_MODEL_NAME)
    rows = {row["label"]: row for row in compared["versions"]}
    assert rows["v2"]["run_id"] == store.staging
    assert rows["difference"]["average_precision"] == pytest.approx(-0.05)
    assert "v2 vs v1" in _ok("compare", "--versions", "2", "1")


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
def test_history_table_metric_and_plot(store: Store, tmp_path):
    text = _ok("history")
    assert "performance history" in text and "roc_auc" in text
    only = _json("history", "--metric", "roc_auc")
    assert {row["metric"] for row in only["history"]} == {"roc_auc"}
    plot = tmp_path / "history.png"
    text = _ok("history", "--plot", str(plot))
    assert plot.read_bytes()[:4] == b"\x89PNG" and f"Wrote {plot}" in text
    assert "drift" in _fails(1, "history", "--plot", str(tmp_path / "x.png"), "--metric", "drift")
    assert "not found" in _fails(1, "history", "--model-name", "nope")


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
