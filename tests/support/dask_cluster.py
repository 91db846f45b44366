"""A real Dask cluster for the tests: a ``dask scheduler`` and ``dask worker`` processes.

Each process is a :class:`support.servers.ServerProcess`: its own process group (as on a
machine of its own), free loopback ports, ready when the ``/health`` URL of its HTTP
server answers (Dask serves it without the bokeh dashboard), stopped or SIGKILLed with
everything in its group. :class:`DaskCluster` starts a scheduler and named workers, waits
until the scheduler lists them, kills one as a crashed machine would and adds replacements.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from support.servers import ServerProcess, free_port

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DASK", "MARK_ENV", "DaskCluster", "DaskScheduler", "DaskWorker"]

DASK = Path(sys.executable).parent / "dask"
# Set on each worker and inherited by every process it starts, whatever their session:
# Jupyter kernels start sessions of their own, outside the worker's process group, so the
# group alone does not say what a worker left behind.
MARK_ENV = "FRAUDKIT_TEST_DASK_WORKER"


class DaskScheduler(ServerProcess):
    """``dask scheduler`` on 127.0.0.1; :attr:`address` is what clients and workers dial.

    Parameters
    ----------
    root : Path
        Working directory of the scheduler and its log (``scheduler.log``).
    """

    title = "dask scheduler"
    log_name = "scheduler.log"

    def __init__(self, root: Path) -> None:
        super().__init__(root)  # `port` serves HTTP (`/health`); the scheduler gets its own
        self.address = f"tcp://127.0.0.1:{free_port()}"

    def command(self) -> list[str]:
        """The ``dask scheduler`` command line."""
        return [
            *(str(DASK), "scheduler", "--host", "127.0.0.1"),
            *("--port", self.address.rsplit(":", 1)[1]),
            *("--dashboard-address", f"127.0.0.1:{self.port}"),
        ]


class DaskWorker(ServerProcess):
    """One ``dask worker`` (a nanny and its worker process, one thread) named ``name``.

    Its FRAUDKIT_HOME is ``root/<name>/home``: each worker has a disk of its own, as on
    separate machines, so nothing reaches the client but through the tracking store.

    Parameters
    ----------
    scheduler : str
        The scheduler's address, ``tcp://host:port``.
    name : str
        The worker's name on the scheduler.
    root : Path
        Parent of the worker's folder (``root/<name>``: its log and home).
    env : mapping
        Variables added to this process's environment for the worker.
    """

    title = "dask worker"
    log_name = "worker.log"

    def __init__(self, scheduler: str, name: str, root: Path, env: Mapping[str, str]) -> None:
        folder = root / name
        (folder / "home").mkdir(parents=True, exist_ok=True)
        super().__init__(folder)
        self.scheduler = scheduler
        self.name = name
        self.home = folder / "home"
        self.env = dict(env)
        self.mark = f"{name}-{uuid.uuid4().hex}"

    def command(self) -> list[str]:
        """The ``dask worker`` command line: one worker process of one thread."""
        return [
            *(str(DASK), "worker", self.scheduler, "--name", self.name),
            *("--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1"),
            *("--dashboard-address", f"127.0.0.1:{self.port}"),
        ]

    def environment(self) -> Mapping[str, str]:
        """``env``, the worker's own FRAUDKIT_HOME and the mark its processes inherit."""
        return {
            "OMP_WAIT_POLICY": "PASSIVE",
            **self.env,
            "FRAUDKIT_HOME": str(self.home),
            MARK_ENV: self.mark,
        }

    def processes(self) -> list[int]:
        """Ids of the live processes this worker started, in any process group or session."""
        mark = f"{MARK_ENV}={self.mark}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found

    def wait_until_gone(self, timeout: float) -> list[int]:
        """Wait up to ``timeout`` seconds for every process of this worker to end.

        Returns the ids of those still alive at the deadline (empty when all ended).
        """
        deadline = time.monotonic() + timeout
        while (alive := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return alive

    def stop(self) -> None:
        """Stop the worker, then kill whatever it started outside its group (a kernel)."""
        super().stop()
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class DaskCluster:
    """A scheduler and named workers on 127.0.0.1, stopped with everything they started.

    Parameters
    ----------
    root : Path
        Folder for the logs and the workers' homes.
    workers : sequence of str
        Names of the workers started with the cluster.
    env : mapping, optional
        Variables added to the environment of every worker (the tracking URI, say).
    """

    def __init__(
        self,
        root: Path,
        workers: Sequence[str] = ("w1", "w2"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.scheduler = DaskScheduler(root)
        self.address = self.scheduler.address
        self.workers: dict[str, DaskWorker] = {}
        self._names = tuple(workers)
        self._env = dict(env or {})
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """A client of the scheduler for watching it (never the default client)."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout=60, set_as_default=False)
        return self._client

    def registered(self) -> dict[str, str]:
        """The workers the scheduler lists now: name -> address."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {str(info["name"]): address for address, info in workers.items()}

    def executing(self, name: str) -> list[str]:
        """Keys of the tasks worker ``name`` is executing now, as the worker itself says.

        The scheduler's ``processing`` also counts tasks queued on a worker behind the
        running one, so only the worker knows which job a kill interrupts.
        """
        address = self.registered().get(name)
        if address is None:
            return []

        # Nested, so that it travels by value: the worker cannot import the test support.
        def executing_keys(dask_worker: Any) -> list[str]:
            return [str(task.key) for task in dask_worker.state.executing]

        return self.client.run(executing_keys, workers=[address]).get(address, [])

    def add_worker(self, name: str, timeout: float = 120) -> DaskWorker:
        """Start worker ``name`` and wait until the scheduler lists it.

        Raises
        ------
        RuntimeError
            The worker did not start, or did not join within ``timeout`` seconds.
        """
        worker = DaskWorker(self.address, name, self.root, self._env)
        self.workers[name] = worker
        worker.start(timeout=timeout)
        deadline = time.monotonic() + timeout
        while name not in self.registered():
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not join:\n{worker.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return worker

    def kill_worker(self, name: str) -> DaskWorker:
        """SIGKILL worker ``name``'s process group (nanny and worker), as a crash would."""
        worker = self.workers[name]
        worker.kill()
        return worker

    def __enter__(self) -> Self:
        try:
            self.scheduler.start()
            for name in self._names:
                self.add_worker(name)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # the scheduler may be gone already
                self._client.close(timeout=10)
            self._client = None
        for worker in self.workers.values():
            worker.stop()
        self.scheduler.stop()
