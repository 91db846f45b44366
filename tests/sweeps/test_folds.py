"""Prequential folds on the sweep machinery's Dask cluster equal the sequential run."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from fraudkit.core.exceptions import ConfigurationError, SmallSampleWarning
from fraudkit.science.prequential import run_prequential, sequential_map
from fraudkit.science.transactions import load_or_simulate
from fraudkit.sweeps.folds import cluster_map


def test_without_workers_or_scheduler_the_folds_run_in_this_process() -> None:
    with cluster_map() as map_fn:
        assert map_fn is sequential_map


def test_negative_workers_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="workers = -1"), cluster_map(workers=-1):
        pass


@pytest.mark.cluster
@pytest.mark.slow
def test_folds_on_a_two_worker_local_cluster_equal_the_sequential_run() -> None:
    data = load_or_simulate(None, "handbook", n_transactions=40_000, seed=5)
    design = {"train_days": 14, "test_days": 7, "n_folds": 3, "k": 10}
    models = ["logistic_regression", "hist_gradient_boosting"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        sequential = run_prequential(data, models, **design)
        with cluster_map(workers=2) as map_fn:
            clustered = run_prequential(data, models, **design, map_fn=map_fn)
    assert len(clustered.folds) == 6
    pd.testing.assert_frame_equal(
        sequential.folds.drop(columns="fit_seconds"), clustered.folds.drop(columns="fit_seconds")
    )
    pd.testing.assert_frame_equal(sequential.summary(), clustered.summary())
