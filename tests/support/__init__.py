"""Test support: throwaway servers, worker processes and the system packages they need.

* :mod:`support.servers` runs ``mlflow server`` and ``mlflow models serve`` (one start-up
  routine for both) and a private PostgreSQL cluster.
* :mod:`support.workers` runs fraudkit in separate processes and collects their results.
* :mod:`support.dask_cluster` runs a real Dask cluster (``dask scheduler`` and named
  ``dask worker`` processes) and kills a worker as a crashed machine would.
* :mod:`support.system_packages` says where PostgreSQL and Chromium are; ``make
  system-packages`` installs them, the tests only check that they are there.
* :mod:`support.dashboard_store` fills a store with runs for the dashboard tests.
* :mod:`support.served` registers a served model (a calibrated logistic model).
* :mod:`support.oracle` gives exactly known inputs to the statistics tests: a model that
  scores with the simulator's own posterior, and cheap normal frames.
"""

__all__: list[str] = []
