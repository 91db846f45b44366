"""Sweeps: grids of notebook runs on Dask (spec, worker side, run, results)."""

__all__: list[str] = []
