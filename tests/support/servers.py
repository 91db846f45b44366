"""Throwaway servers for the tests: ``mlflow server``, ``mlflow models serve``, PostgreSQL.

Every server process goes through :class:`ServerProcess`: started in its own process
group on a free loopback port, ready when its health URL answers, and stopped (or killed,
as a crash would) with everything it spawned. Plain context managers and classes, not
fixtures: each test module wraps them in fixtures of the scope it needs.
"""

from __future__ import annotations

import contextlib
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
from pathlib import Path
from typing import Self

from support.system_packages import postgres_bindir

__all__ = [
    "SERVER_ENV",
    "MlflowServer",
    "ModelServer",
    "ServerProcess",
    "free_port",
    "postgres_cluster",
]

# The server's background job workers (a dozen processes) serve GenAI features fraudkit
# does not use; on 2 cores they only slow the tests down.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server command on 127.0.0.1 in its own process group, ready when ``health`` answers.

    Subclasses give the command line (:meth:`command`), the health path and any
    environment of their own; the port stays the same across restarts.

    Parameters
    ----------
    root : Path
        Working directory of the server; its log is ``root/<log_name>``.
    """

    title = "server"
    health_path = "/health"
    log_name = "server.log"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / self.log_name
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The server's command line."""
        raise NotImplementedError

    def environment(self) -> Mapping[str, str]:
        """Variables added to this process's environment for the server."""
        return {}

    def start(self, timeout: float = 180) -> None:
        """Start the server and wait until its health URL answers.

        Raises
        ------
        RuntimeError
            The server exited or did not answer within ``timeout`` seconds; the message
            holds the end of its log.
        """
        with self.log.open("a") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, **self.environment()},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.title} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def healthy(self) -> bool:
        """Whether the server answers its health URL now."""
        try:
            with urllib.request.urlopen(f"{self.url}{self.health_path}", timeout=2) as response:
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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MlflowServer(ServerProcess):
    """``mlflow server`` with proxied artifacts (``root/artifacts``).

    Parameters
    ----------
    backend_store_uri : str
        ``postgresql+psycopg2://...`` or ``sqlite:////abs/path.db``.
    root : Path
        Folder for the artifacts and the server log.
    workers : int
        Server worker processes.
    """

    title = "mlflow server"

    def __init__(self, backend_store_uri: str, root: Path, *, workers: int = 1) -> None:
        super().__init__(root)
        self.backend_store_uri = backend_store_uri
        self.workers = workers

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

    def environment(self) -> Mapping[str, str]:
        """No background job workers (see :data:`SERVER_ENV`)."""
        return SERVER_ENV


class ModelServer(ServerProcess):
    """``mlflow models serve`` of ``model_uri`` in this environment (``--env-manager local``).

    Parameters
    ----------
    model_uri : str
        ``models:/<name>@<alias>`` or ``runs:/...``.
    tracking_uri : str
        The store the model URI resolves against.
    root : Path
        Working directory of the server and its log (``serve.log``).
    """

    title = "mlflow models serve"
    health_path = "/ping"
    log_name = "serve.log"

    def __init__(self, model_uri: str, tracking_uri: str, root: Path) -> None:
        super().__init__(root)
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self._bin = Path(sys.executable).parent

    def command(self) -> list[str]:
        """The ``mlflow models serve`` command line."""
        return [
            *(str(self._bin / "mlflow"), "models", "serve", "-m", self.model_uri),
            *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(self.port)),
        ]

    def environment(self) -> Mapping[str, str]:
        """The tracking store, and the venv first on PATH: the server runs uvicorn from it."""
        path = f"{self._bin}{os.pathsep}{os.environ.get('PATH', '')}"
        return {"PATH": path, "MLFLOW_TRACKING_URI": self.tracking_uri}


# -- PostgreSQL ------------------------------------------------------------------------------


def _postgres_user() -> str | None:
    # PostgreSQL refuses to run as root; as root we run it as the `postgres` account.
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        raise RuntimeError(
            "running as root but there is no `postgres` user to run PostgreSQL as; "
            "run `make system-packages` (the postgresql package creates the user)"
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
