"""Two processes moving the same new alias at once: the loser of the INSERT race retries.

A sweep's points register versions and set ``staging`` concurrently. On SQLite, MLflow
sets an alias with a read, then an INSERT; the first time an alias is set, two writers
both INSERT and one failed with a UNIQUE constraint error (seen in CI under load).
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from mlflow import MlflowClient

from fraudkit.tracking.registry import move_alias

ROUNDS = 25


def _mover(uri: str, barrier, version: str, failures) -> None:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for round_number in range(ROUNDS):
        barrier.wait(timeout=60)
        try:
            move_alias(client, f"model_{round_number}", "Staging", version, reason="race")
        except Exception as error:  # any failure is what the test counts
            failures.put(f"{type(error).__name__}: {error}")


@pytest.mark.slow
def test_two_processes_setting_a_new_alias_at_once_both_succeed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for round_number in range(ROUNDS):
        name = f"model_{round_number}"
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source=str(tmp_path))
    context = multiprocessing.get_context("spawn")
    barrier, failures = context.Barrier(2), context.Queue()
    movers = [
        context.Process(target=_mover, args=(uri, barrier, version, failures))
        for version in ("1", "2")
    ]
    for mover in movers:
        mover.start()
    for mover in movers:
        mover.join(timeout=300)
    assert [mover.exitcode for mover in movers] == [0, 0]
    errors = [failures.get() for _ in range(failures.qsize())]
    assert errors == []
    for round_number in range(ROUNDS):
        model = client.get_registered_model(f"model_{round_number}")
        assert str(model.aliases["staging"]) in ("1", "2")
