"""Fold tasks on the sweep machinery's Dask cluster: a ``map_fn`` for prequential validation.

:func:`fraudkit.science.prequential.run_prequential` runs its folds through a ``map_fn``
(one after another in-process by default). :func:`cluster_map` gives one that runs them
as Dask tasks on the cluster the sweeps use (:func:`fraudkit.runner.cluster.dask_client`): a
local cluster of one-thread worker processes, or an existing scheduler. Each task's data
are scattered to the workers first, so the task graph stays small whatever the folds
hold. The results come back in the order of the tasks, identical to a sequential run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from fraudkit.core.exceptions import ConfigurationError
from fraudkit.runner.cluster import dask_client
from fraudkit.science.prequential import MapFn, sequential_map

__all__ = ["cluster_map"]


@contextlib.contextmanager
def cluster_map(workers: int = 0, scheduler: str | None = None) -> Iterator[MapFn]:
    """A ``map_fn`` that runs tasks on a Dask cluster while the context is open.

    Parameters
    ----------
    workers : int, default 0
        Worker processes of a local cluster started for the context (one thread each).
        0 without ``scheduler``: no cluster, the tasks run one after another in this
        process (:func:`~fraudkit.science.prequential.sequential_map`).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); ``workers`` is then
        ignored. Its workers need fraudkit installed.

    Yields
    ------
    callable
        ``map_fn(function, items) -> list``, results in the order of ``items``.

    Raises
    ------
    ConfigurationError
        ``workers`` is negative.

    Examples
    --------
    >>> with cluster_map(workers=2) as map_fn:  # doctest: +SKIP
    ...     result = run_prequential(data, "logistic_regression", train_days=7,
    ...                              test_days=7, map_fn=map_fn)
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigurationError(
            f"workers = {workers!r} must be a whole number >= 0 (0 runs the folds in this process)"
        )
    if not scheduler and workers == 0:
        yield sequential_map
        return
    with dask_client(scheduler or None, workers) as client:
        yield _client_map(client)


def _client_map(client: Any) -> MapFn:
    def map_fn(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if not items:
            return []
        # Scattered, not embedded in the graph: a fold's frames are megabytes, and Dask
        # warns on (and slowly ships) graphs that large. hash=False: no tokenising them.
        scattered = client.scatter(list(items), hash=False)
        return client.gather(client.map(function, scattered, pure=False))

    return map_fn
