"""Throwaway servers and worker processes for the team-server, concurrency and fault tests.

* :func:`postgres_cluster` runs a private PostgreSQL cluster (``initdb`` + ``pg_ctl``) on a
  free loopback port and yields its SQLAlchemy URL.
* :class:`MlflowServer` runs ``mlflow server`` on 127.0.0.1 in its own process group, and
  can be killed and started again on the same port and store.
* :class:`WorkerPool` starts this file as worker processes (``python pg_server.py notebook
  ...``), each with its own environment, and kills whatever is left on exit.

Plain context managers and classes, not fixtures: each test module wraps them in fixtures
of the scope it needs.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system_packages import ensure_debian_package

# The server's background job workers (a dozen processes) serve GenAI features fraudkit
# does not use; on 2 cores they only slow the tests down.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- PostgreSQL ------------------------------------------------------------------------------


def _find_postgres_bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def postgres_bindir() -> Path:
    """Directory of the PostgreSQL server programs (initdb, pg_ctl), newest version first.

    The machine image ships PostgreSQL 15; apt installs the ``postgresql`` package only
    when no server programs are found.
    """
    return ensure_debian_package("postgresql", _find_postgres_bindir)


def _postgres_user() -> str | None:
    # PostgreSQL refuses to run as root; as root we run it as the `postgres` account.
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        raise RuntimeError(
            "running as root but there is no `postgres` user to run PostgreSQL as; "
            "install the postgresql package (it creates the user)"
        ) from None


def _run_as(user: str | None, command: list[str], timeout: float = 120) -> None:
    completed = subprocess.run(
        command, user=user, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {completed.stderr or completed.stdout}")


@contextlib.contextmanager
def postgres_cluster(database: str = "mlflow") -> Iterator[str]:
    """Run a throwaway PostgreSQL cluster; yield ``postgresql+psycopg2://mlflow@.../<database>``.

    The cluster lives in a fresh directory under the system temp folder (pytest's own temp
    folders are private to root, and the server runs as ``postgres``), listens on a free
    loopback port only, trusts local connections and skips fsync: it holds test data for
    a few minutes, then is stopped and deleted.
    """
    bindir = postgres_bindir()
    user = _postgres_user()
    root = Path(tempfile.mkdtemp(prefix="fraudkit-pg-"))
    if user:
        shutil.chown(root, user=user)
    data, port = root / "data", free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "mlflow", "-A", "trust"]
    createdb = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow"]
    started = False
    try:
        _run_as(user, [*initdb, "-E", "UTF8", "--locale=C", "--no-sync"])
        started = True  # stop it even if `pg_ctl start` gives up waiting
        _run_as(user, [*ctl, "-l", str(root / "server.log"), "-o", options, "-w", "start"])
        _run_as(user, [*createdb, database])
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/{database}"
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _run_as(user, [*ctl, "-m", "immediate", "-w", "stop"], timeout=60)
        shutil.rmtree(root, ignore_errors=True)


# -- MLflow server ---------------------------------------------------------------------------


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with proxied artifacts, in its own process group.

    Parameters
    ----------
    backend_store_uri : str
        ``postgresql+psycopg2://...`` or ``sqlite:////abs/path.db``.
    root : Path
        Folder for the artifacts (``root/artifacts``) and the server log.
    workers : int
        Server worker processes.
    """

    def __init__(self, backend_store_uri: str, root: Path, *, workers: int = 1) -> None:
        self.backend_store_uri = backend_store_uri
        self.root = root
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The ``mlflow server`` command line (as documented in the README)."""
        return [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", self.backend_store_uri),
            "--serve-artifacts",
            *("--artifacts-destination", str(self.root / "artifacts")),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--workers", str(self.workers)),
        ]

    def start(self, timeout: float = 180) -> None:
        """Start the server and wait until ``/health`` answers."""
        with self.log.open("a") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, **SERVER_ENV},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"mlflow server did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def healthy(self) -> bool:
        """Whether the server answers ``/health`` now."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group (server and its workers), as a crash would."""
        self._signal(signal.SIGKILL, wait=10)

    def stop(self) -> None:
        """Terminate the server, killing it if it does not stop within 15 s."""
        if not self._signal(signal.SIGTERM, wait=15):
            self.kill()

    def _signal(self, signum: int, wait: float) -> bool:
        process, self._process = self._process, None
        if process is None:
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self._process = process
            return False
        return True

    def __enter__(self) -> MlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- worker processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerResult:
    """What a worker printed as its last stdout line (JSON), with its exit code."""

    name: str
    returncode: int
    output: Any
    log: str


class WorkerPool:
    """Start workers (this file as a script) and collect their JSON results.

    Every worker runs in its own process group; leaving the ``with`` block kills the
    groups still alive, so a failing test leaves no process behind.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._workers: dict[str, tuple[subprocess.Popen, Path, Path]] = {}

    def spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> None:
        """Start worker ``name`` running ``pg_server.py <args>`` with ``env`` added."""
        stdout, stderr = self.folder / f"{name}.out", self.folder / f"{name}.err"
        with stdout.open("w") as out, stderr.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, __file__, *args],
                stdout=out,
                stderr=err,
                env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **env},
                cwd=self.folder,
                start_new_session=True,
            )
        self._workers[name] = (process, stdout, stderr)

    def wait(self, timeout: float, *, check: bool = True) -> dict[str, WorkerResult]:
        """Wait for every worker (``timeout`` seconds in all) and return their results.

        Raises
        ------
        TimeoutError
            A worker was still running at the deadline (all are then killed).
        AssertionError
            With ``check``, a worker exited non-zero (its stderr is in the message).
        """
        deadline = time.monotonic() + timeout
        results = {}
        for name, (process, stdout, stderr) in self._workers.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill_all()
                raise TimeoutError(
                    f"worker {name} still running after {timeout:.0f} s:\n"
                    f"{stderr.read_text()[-3000:]}"
                ) from None
            lines = stdout.read_text().strip().splitlines()
            output = json.loads(lines[-1]) if lines and process.returncode == 0 else None
            results[name] = WorkerResult(name, process.returncode, output, stderr.read_text())
        failed = [f"{r.name}: {r.log[-2000:]}" for r in results.values() if r.returncode]
        assert not (check and failed), "\n".join(failed)
        return results

    def kill_all(self) -> None:
        """SIGKILL the process group of every worker still running."""
        for process, _, _ in self._workers.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()


def _notebook_worker(parameters: str) -> dict[str, Any]:
    from fraudkit.exceptions import FraudkitError
    from fraudkit.notebooks import run_notebook

    try:
        result = run_notebook("training", json.loads(parameters), progress=False)
    except FraudkitError as exc:
        return {
            "run_id": getattr(exc, "run_id", None),
            "status": "FAILED",
            "error_type": type(exc).__name__,
            "error": str(exc),
        }
    return {"run_id": result.run_id, "status": result.status, "seconds": result.duration_s}


def _runs_worker(label: str, count: str) -> dict[str, Any]:
    from fraudkit import mlflow_manager

    run_ids = []
    for index in range(int(count)):
        with mlflow_manager.start_training_run(f"{label}-{index}") as run:
            mlflow_manager.log_params({"worker": label, "index": index})
            mlflow_manager.log_metrics({"index": index, "square": index * index})
            mlflow_manager.client.log_dict(run.info.run_id, {"index": index}, "worker.json")
            run_ids.append(run.info.run_id)
    return {"run_ids": run_ids}


def _model_worker(model_name: str, seed: str) -> dict[str, Any]:
    from fraudkit import mlflow_manager
    from fraudkit.data import FEATURE_COLUMNS, TransactionSimulator
    from fraudkit.models import train_model

    data = TransactionSimulator(seed=int(seed), fraud_rate=0.05).sample(2_000)
    model = train_model(data, "logistic_regression")
    version = mlflow_manager.log_model_with_metadata(
        model,
        model_name,
        metrics={"seed": int(seed)},
        params={"model_type": "logistic_regression", "seed": seed},
        stage="Staging",
        input_example=data[FEATURE_COLUMNS].head(5),
    )
    return {"version": str(version.version), "run_id": version.run_id}


_WORKERS = {"notebook": _notebook_worker, "runs": _runs_worker, "model": _model_worker}

if __name__ == "__main__":
    # Worker entry point: `python pg_server.py <kind> <args...>`; the result is the last
    # line of stdout, as JSON.
    print(json.dumps(_WORKERS[sys.argv[1]](*sys.argv[2:])))
