"""fraudkit in separate processes, as on a team's laptops: a pool of workers and their jobs.

:class:`WorkerPool` starts this file as worker processes (``python workers.py <kind>
<args...>``), each with its own environment, and kills whatever is left on exit. A worker
prints its result as JSON on the last line of stdout. As a script this file imports only
the standard library and fraudkit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WORKERS", "WorkerPool", "WorkerResult"]


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
        """Start worker ``name`` running ``workers.py <args>`` with ``env`` added.

        ``args[0]`` is the kind of job, a key of :data:`WORKERS`.
        """
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


# -- the jobs (run in the worker process) ----------------------------------------------------


def _notebook_job(parameters: str) -> dict[str, Any]:
    """Run the training notebook with ``parameters`` (JSON); its run id and status."""
    from fraudkit.core.exceptions import FraudkitError
    from fraudkit.runner.execution import run_notebook

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


def _runs_job(label: str, count: str) -> dict[str, Any]:
    """Log ``count`` small training runs labelled ``<label>-<index>``; their run ids."""
    from fraudkit import mlflow_manager

    run_ids = []
    for index in range(int(count)):
        with mlflow_manager.start_training_run(f"{label}-{index}") as run:
            mlflow_manager.log_params({"worker": label, "index": index})
            mlflow_manager.log_metrics({"index": index, "square": index * index})
            mlflow_manager.client.log_dict(run.info.run_id, {"index": index}, "worker.json")
            run_ids.append(run.info.run_id)
    return {"run_ids": run_ids}


def _model_job(model_name: str, seed: str) -> dict[str, Any]:
    """Train a small model and register it as ``model_name`` at staging; its version."""
    from fraudkit import mlflow_manager
    from fraudkit.core.schema import FEATURE_COLUMNS
    from fraudkit.science.models import train_model
    from fraudkit.science.simulate import TransactionSimulator

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


# Kind of job (the first argument of WorkerPool.spawn) -> the function the worker runs.
WORKERS = {"notebook": _notebook_job, "runs": _runs_job, "model": _model_job}

if __name__ == "__main__":
    print(json.dumps(WORKERS[sys.argv[1]](*sys.argv[2:])))
