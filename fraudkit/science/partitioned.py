"""Behavioural features of a file larger than memory, on Dask.

Every feature of an entity reads only that entity's own rows, so the work splits by
entity key: for each entity column, the rows are shuffled so that each partition holds
whole entities (one partitioning per entity), :func:`build_features` runs on each
partition for that entity alone, and the feature sets meet again on the row number.
The values equal the in-memory path bit for bit: within a partition the rows keep their
global order, and the window sums are exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import DataValidationError
from fraudkit.science.features import FeatureSpec, build_features
from fraudkit.science.schema import TransactionSchema

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["ROW_COLUMN", "build_features_partitioned"]

# The global row number (time order, ties in file order) the feature sets are joined on.
ROW_COLUMN = "_fraudkit_row"


def build_features_partitioned(
    frame: dd.DataFrame, schema: TransactionSchema, spec: FeatureSpec | None = None
) -> dd.DataFrame:
    """:func:`build_features` of a Dask DataFrame, partitioned by each entity key.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        Checked transactions (each partition as :meth:`TransactionSchema.validate`
        returns it) whose partitions follow each other in time.
    schema : TransactionSchema
        Their schema.
    spec : FeatureSpec, optional
        As for :func:`build_features`.

    Returns
    -------
    dask.dataframe.DataFrame
        Indexed by the row number in time order (``ROW_COLUMN``), the columns of
        ``spec.names()``; ``.compute()`` gives the in-memory path's values.
    """
    spec = (spec or FeatureSpec()).for_schema(schema)
    missing = [c for c in spec.entities if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"entity column(s) {', '.join(missing)} not in the frame; the columns are "
            f"{', '.join(map(str, frame.columns))}"
        )
    numbered = frame.assign(**{ROW_COLUMN: 1})
    numbered[ROW_COLUMN] = numbered[ROW_COLUMN].cumsum() - 1
    parts = []
    for entity in spec.entities:
        one = FeatureSpec((entity,), spec.windows, spec.label_windows, spec.label_delay)
        meta = pd.DataFrame({name: pd.Series(dtype=np.float64) for name in one.names()})
        meta.index = pd.Index([], dtype=np.int64, name=ROW_COLUMN)
        shuffled = numbered.shuffle(on=entity)
        parts.append(shuffled.map_partitions(_entity_features, schema, one, meta=meta))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, how="inner")
    return joined[spec.names()]


def _entity_features(
    part: pd.DataFrame, schema: TransactionSchema, spec: FeatureSpec
) -> pd.DataFrame:
    """One partition's rows (whole entities) in their global order, then the features."""
    ordered = part.sort_values(ROW_COLUMN, kind="stable")
    features = build_features(ordered.reset_index(drop=True), schema, spec)
    return features.set_axis(pd.Index(ordered[ROW_COLUMN].to_numpy(), name=ROW_COLUMN))
