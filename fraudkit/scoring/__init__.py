"""Batch scoring: ``fraudkit score`` (:func:`fraudkit.scoring.batch.score_file`).

A registered version's decisions on every row of a CSV or Parquet file, a chunk at a time
or on Dask, written as Parquet parts and logged as a scoring run. Kept lazy: importing
the package loads no MLflow.
"""

__all__: list[str] = []
