"""fraudkit.tracking.ui and ``fraudkit ui``: machine-learning-view links, lean server, clean stop.

The last tests start the real console script on a throwaway SQLite store, as a user does,
and stop it with SIGTERM as a supervisor or ``kill`` does: nothing it started may be left
behind, and no MLflow job runner (huey workers) may have started. The browser test opens
the banner's link in Debian's Chromium (as tests/reports/test_browser.py does) and checks that
MLflow shows the "Model training" view; its screenshot is kept at
``/tmp/ui_screenshot.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner
from support import system_packages
from support.servers import free_port

from fraudkit import MLFLOW_EXPERIMENTS
from fraudkit.core.exceptions import ConfigurationError
from fraudkit.tracking.links import ML_WORKFLOW, experiment_url, run_url
from fraudkit.tracking.ui import JOB_EXECUTION_ENV, ServerExit, server_command, server_url

SECRET = "s3cret-Pa55"
FRAUDKIT = Path(sys.executable).parent / "fraudkit"
SCREENSHOT = Path("/tmp/ui_screenshot.png")
# MLflow's job runner and its huey consumers (`mlflow.server.jobs._job_runner`, ...).
JOB_PROCESS = re.compile(r"huey|mlflow\.server\.jobs")


# -- links -----------------------------------------------------------------------------------


def test_experiment_url_opens_the_machine_learning_view() -> None:
    assert ML_WORKFLOW == "machine_learning"
    assert (
        experiment_url("http://127.0.0.1:5000", "3")
        == "http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    )
    assert (
        run_url("http://127.0.0.1:5000/", "3", "ab12")
        == experiment_url("http://127.0.0.1:5000", "3", run_id="ab12")
        == "http://127.0.0.1:5000/#/experiments/3/runs/ab12?workflowType=machine_learning"
    )


def test_experiment_url_drops_credentials_and_keeps_a_path_prefix() -> None:
    url = experiment_url(f"https://alice:{SECRET}@mlflow.example.org/team/?x=1#old", "7")
    assert url == "https://mlflow.example.org/team/#/experiments/7?workflowType=machine_learning"
    assert experiment_url("http://[::1]:5000", "1").startswith("http://[::1]:5000/#/")


@pytest.mark.parametrize(
    ("base", "experiment_id", "message"),
    [
        ("sqlite:////tmp/mlflow.db", "1", "not an http"),
        ("127.0.0.1:5000", "1", "not an http"),
        ("http://127.0.0.1:5000", " ", "experiment id is empty"),
    ],
)
def test_experiment_url_refuses_what_is_no_ui_link(base, experiment_id, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        experiment_url(base, experiment_id)


def test_server_url_is_what_a_local_browser_opens() -> None:
    assert server_url("0.0.0.0", 5000) == "http://127.0.0.1:5000"
    assert server_url("::", 5000) == "http://[::1]:5000"
    assert server_url("192.168.1.4", 80) == "http://192.168.1.4:80"


# -- the server command -------------------------------------------------------------------------


def test_server_command_keeps_the_password_off_argv_and_the_job_runner_off() -> None:
    uri = f"postgresql://fraud:{SECRET}@127.0.0.1:5432/mlflow"
    command, env = server_command("127.0.0.1", 5055, uri, "file:///art", environ={"A": "1"})
    assert command[1:4] == ["-m", "mlflow", "server"]
    assert not any(SECRET in part for part in command)  # `ps` shows argv to every user
    assert command[command.index("--port") + 1] == "5055"
    assert command[command.index("--workers") + 1] == "1"
    assert env == {
        "A": "1",
        "MLFLOW_BACKEND_STORE_URI": uri,
        "MLFLOW_DEFAULT_ARTIFACT_ROOT": "file:///art",
        JOB_EXECUTION_ENV: "false",
    }
    # A user who asked for MLflow's job runner keeps it.
    _, env = server_command("127.0.0.1", 5055, uri, environ={JOB_EXECUTION_ENV: "true"})
    assert env[JOB_EXECUTION_ENV] == "true"
    with pytest.raises(ConfigurationError, match="out of range"):
        server_command("127.0.0.1", 70000, uri)


def test_mlflow_server_reads_the_variables_fraudkit_sets() -> None:
    from mlflow.cli import server
    from mlflow.environment_variables import MLFLOW_SERVER_ENABLE_JOB_EXECUTION

    envvars = {param.name: param.envvar for param in server.params}
    assert envvars["backend_store_uri"] == "MLFLOW_BACKEND_STORE_URI"
    assert envvars["default_artifact_root"] == "MLFLOW_DEFAULT_ARTIFACT_ROOT"
    assert MLFLOW_SERVER_ENABLE_JOB_EXECUTION.name == JOB_EXECUTION_ENV


def test_exit_code_of_a_requested_stop_is_zero() -> None:
    assert ServerExit(returncode=-15, stop_signal=signal.SIGTERM, forced=False).exit_code == 0
    assert ServerExit(returncode=3, stop_signal=None, forced=False).exit_code == 3
    assert ServerExit(returncode=-9, stop_signal=None, forced=True).exit_code == 137


def test_ui_command_prints_ml_view_links_and_runs_the_lean_server(
    monkeypatch: pytest.MonkeyPatch, fraudkit_home: Path
) -> None:
    import fraudkit.tracking.ui
    from fraudkit.cli import cli

    started = []

    def fake_run_server(command, env, **_):
        started.append((command, env))
        return ServerExit(returncode=0, stop_signal=signal.SIGTERM, forced=False)

    monkeypatch.setattr(fraudkit.tracking.ui, "run_server", fake_run_server)
    result = CliRunner().invoke(cli, ["ui", "--port", "5055"])
    assert result.exit_code == 0, result.output
    ((command, env),) = started
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{fraudkit_home / 'mlflow.db'}"
    assert env[JOB_EXECUTION_ENV] == "false"
    links = re.findall(r"^  (\S+)\s+(http://\S+)$", result.output, re.MULTILINE)
    assert {name for name, _ in links} == set(MLFLOW_EXPERIMENTS.values())
    for _, link in links:
        assert re.fullmatch(
            r"http://127\.0\.0\.1:5055/#/experiments/\d+\?workflowType=machine_learning", link
        )


# -- supervision --------------------------------------------------------------------------------

# A "server" whose worker ignores SIGTERM, supervised by run_server in a child process.
_STUBBORN = textwrap.dedent(
    """
    import subprocess, sys
    from fraudkit.tracking.ui import run_server
    worker = (
        "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).write_text('up'); time.sleep(600)"
    )
    server = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', 'import sys; ' + {worker!r}, sys.argv[1]]); "
        "time.sleep(600)"
    )
    outcome = run_server([sys.executable, "-c", server, sys.argv[1]], grace=2)
    print(outcome.to_dict(), flush=True)
    sys.exit(outcome.exit_code)
    """
)


def test_sigterm_stops_the_whole_group_and_kills_what_ignores_it(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", _STUBBORN, str(ready)], stdout=subprocess.PIPE, text=True
    )
    try:
        _wait_for(ready.exists, 60, supervisor)
        tree = psutil.Process(supervisor.pid).children(recursive=True)
        assert len(tree) == 2  # the server and its worker
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=30)
    finally:
        supervisor.kill()
    assert supervisor.returncode == 0, out
    assert "'stop_signal': 15" in out and "'forced': True" in out
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


# -- the real console script ---------------------------------------------------------------------


@dataclass
class UiProcess:
    """``fraudkit ui`` started as a user starts it; its log and the link it printed."""

    process: subprocess.Popen
    log: Path
    url: str
    experiment_id: str
    run_id: str
    run_name: str

    def banner_links(self) -> list[str]:
        return re.findall(r"^  \S+\s+(http://\S+)$", self.log.read_text(), re.MULTILINE)


def _wait_for(condition, timeout: float, process: subprocess.Popen, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log else ""
            raise AssertionError(f"gave up waiting (exit {process.poll()}):\n{tail}")
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _port_free(port: int) -> bool:
    """Whether a new server can listen on ``port`` (with SO_REUSEADDR, as uvicorn binds:
    the connections the test itself made may linger in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


@pytest.fixture
def ui(fraudkit_home: Path, _template_db: Path, tmp_path: Path) -> Iterator[UiProcess]:
    """``fraudkit ui`` on a free port over a SQLite store holding one training run."""
    from fraudkit.tracking.manager import mlflow_manager

    shutil.copy(_template_db, fraudkit_home / "mlflow.db")
    with mlflow_manager.start_training_run("ui_check") as run:
        mlflow_manager.log_metrics({"average_precision": 0.8})
    mlflow_manager.reset()
    port = free_port()
    log = tmp_path / "ui.log"
    env = {k: v for k, v in os.environ.items() if k != JOB_EXECUTION_ENV}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(FRAUDKIT), "ui", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=fraudkit_home,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _answers(url), 180, process, log)
        info = run.info
        yield UiProcess(process, log, url, info.experiment_id, info.run_id, info.run_name)
    finally:
        # Whatever a failed test left running goes, by the pids seen, never by name.
        if process.poll() is None:
            tree = psutil.Process(process.pid).children(recursive=True)
            process.kill()
            for child in tree:
                child.kill()
            process.wait(timeout=30)


@pytest.mark.server
@pytest.mark.slow
def test_sigterm_to_fraudkit_ui_leaves_no_process_and_frees_the_port(ui: UiProcess) -> None:
    port = int(ui.url.rsplit(":", 1)[1])
    tree = psutil.Process(ui.process.pid).children(recursive=True)
    commands = [" ".join(child.cmdline()) for child in tree]
    assert any("mlflow server" in c or "uvicorn" in c for c in commands), commands
    assert not [c for c in commands if JOB_PROCESS.search(c)], "MLflow's job runner started"
    links = ui.banner_links()
    assert len(links) == len(MLFLOW_EXPERIMENTS)
    assert all(link.endswith("?workflowType=machine_learning") for link in links)

    ui.process.send_signal(signal.SIGTERM)
    assert ui.process.wait(timeout=60) == 0, ui.log.read_text()[-3000:]
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == [], [p.pid for p in alive]
    assert len(gone) == len(tree)
    assert _port_free(port)
    assert not _answers(ui.url)


def _open(browser, url: str, wait_text: str):
    """Open ``url`` in a fresh context (no localStorage memory); return the page."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(url, wait_until="load")
    page.get_by_text(wait_text, exact=True).first.wait_for(timeout=90_000)
    return page


# What MLflow 3.17's side bar shows in each view (its "Runs" tab lists our run either way).
GENAI_ONLY = ("Evaluation runs", "Judges", "Prompts & versions")
ML_ONLY = ("Model registry",)


def _shown(page, texts) -> set[str]:
    return {t for t in texts if page.get_by_text(t, exact=True).first.is_visible()}


@pytest.mark.server
@pytest.mark.browser
@pytest.mark.slow
def test_banner_link_opens_the_model_training_view_in_chromium(ui: UiProcess) -> None:
    from playwright.sync_api import sync_playwright

    (link,) = [
        line.split()[1]
        for line in ui.log.read_text().splitlines()
        if line.split()[:1] == [MLFLOW_EXPERIMENTS["training"]]
    ]
    assert link == experiment_url(ui.url, ui.experiment_id)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(system_packages.chromium()),
            headless=True,
            args=system_packages.CHROMIUM_ARGS,
        )
        try:
            # Control: without the query a fresh browser gets MLflow's GenAI view, though
            # the experiment carries the machine-learning kind tag.
            page = _open(browser, link.split("?")[0], "Evaluation runs")
            assert _shown(page, GENAI_ONLY) == set(GENAI_ONLY)
            assert _shown(page, ML_ONLY) == set()
            page.context.close()
            # The banner's link: the "Model training" view with the run in its table.
            page = _open(browser, link, ui.run_name)
            page.screenshot(path=str(SCREENSHOT))
            assert "workflowType=machine_learning" in page.url
            assert _shown(page, ("Runs", "Models", *ML_ONLY)) == {"Runs", "Models", *ML_ONLY}
            assert _shown(page, GENAI_ONLY) == set()
            page.context.close()
            # A run link (as reports render them) opens the run's page in the same view.
            page = _open(browser, run_url(ui.url, ui.experiment_id, ui.run_id), "Overview")
            assert page.get_by_text(ui.run_name).first.is_visible()
            assert _shown(page, ML_ONLY) == set(ML_ONLY)
            assert _shown(page, GENAI_ONLY) == set()
        finally:
            browser.close()
