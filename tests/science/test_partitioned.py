"""Features past one machine: Dask, one partitioning per entity, equal to the in-memory path."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from fraudkit.core.exceptions import DataValidationError
from fraudkit.science.entities import EntitySimulator
from fraudkit.science.features import FeatureSpec, build_features
from fraudkit.science.partitioned import build_features_partitioned
from fraudkit.science.schema import PRESETS

SCHEMA = PRESETS["handbook"]


@pytest.mark.cluster
def test_a_two_worker_cluster_gives_the_in_memory_values_bit_for_bit() -> None:
    simulator = EntitySimulator(n_customers=300, n_terminals=600, n_days=40, seed=4)
    frame = SCHEMA.validate(simulator.sample()).frame
    expected = build_features(frame, SCHEMA)
    spread = dd.from_pandas(frame, npartitions=6, sort=False)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        got = build_features_partitioned(spread, SCHEMA).compute().sort_index()
    assert len(got) == len(frame)
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_array_equal(
        got.to_numpy().view(np.int64), expected.to_numpy(dtype=np.float64).view(np.int64)
    )


def test_the_entities_must_be_in_the_frame() -> None:
    frame = pd.DataFrame({"TX_DATETIME": pd.to_datetime(["2026-01-01"]), "TX_AMOUNT": [1.0]})
    with pytest.raises(DataValidationError, match="CUSTOMER_ID, TERMINAL_ID not in the frame"):
        build_features_partitioned(dd.from_pandas(frame, npartitions=1), SCHEMA, FeatureSpec())
