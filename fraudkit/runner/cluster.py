"""The Dask cluster the kit's distributed work runs on: sweeps, folds and batch scoring."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["dask_client"]


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler``, else of a new local cluster.

    The local cluster has ``workers`` one-thread worker processes and no dashboard, and
    hands a worker its next task only when it is free; it is closed on exit.

    Parameters
    ----------
    scheduler : str or None
        Address of an existing scheduler (``tcp://host:8786``); None starts a local one.
    workers : int
        Worker processes of the local cluster (ignored with ``scheduler``).

    Yields
    ------
    distributed.Client
        Not set as the default client.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, set_as_default=False) as client:
            yield client
        return
    import dask.config

    # Not the default client (a context variable), so that the sweep can close it from the
    # thread that lets the workers stop while the results are logged.
    # Processes of one thread each: a notebook kernel per worker, no GIL shared between them.
    # No dashboard: its fixed port would clash between sweeps run side by side (None turns it
    # off, though the stubs ask for a string). A worker saturation of 1.0 hands a worker its
    # next point only when it is free: at the default 1.1 each one-thread worker holds a
    # second point in its own queue, and at the end of a sweep one worker can sit idle while
    # the other still has a point waiting behind the one it runs.
    with (
        dask.config.set({"distributed.scheduler.worker-saturation": 1.0}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # pyright: ignore[reportArgumentType]
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client
