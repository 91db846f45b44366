"""Coverage of prequential validation's fold interval for the next period's Card Precision@k.

Design (stated so the figures can be read):

* **Worlds.** ``--futures`` (default 100) handbook worlds of the entity simulator, one per
  seed (1, 2, ...): ``HandbookWorld`` sized to about 500 customers (1,000 terminals,
  about 970 transactions a day), simulated for 107 days only. Behavioural features are
  computed once over each world (point in time, so a day's features are those its
  history gives, whatever comes after it).
* **History and future.** The last 7 days are the future; the days before are the
  history: a 30-day warm-up (the features' longest window), then the folds.
* **Prequential on the history.** ``run_prequential`` with the Handbook's blocks: train
  7 days, a gap of 7 days (the label delay), test 7 days, the latest 8 folds; each model
  type (``--models``: logistic regression and gradient boosting by default) trained and
  calibrated on the latest part of each train block (``evaluate_fold``). The alert budget
  is ``k = 10`` cards a day (the Handbook's 100 for 5,000 customers, scaled). Each model's
  fold interval for the next period is the 90 % prediction interval of
  ``PrequentialResult.summary``.
* **The future.** The same design rolled on by 7 days: trained on the latest train block
  (ending 7 days before the future), tested on the future's 7 days. Its realised daily
  CP@k (mean over the 7 days) either falls in the interval or not.

Printed per model: the coverage of the CP@k interval over the futures with its binomial
standard error (target: at least 0.85), the mean interval width, the mean fold CP@k and
the mean realised CP@k; the same for AUPRC, for information; and the run time. The
futures run on a local Dask cluster of ``--workers`` processes (the sweeps' machinery,
``fraudkit.sweeps.folds.cluster_map``); 0 runs them one after another.

Run ``python benchmarks/bench_evaluation.py`` (about five minutes on two cores) or
``--quick`` (8 futures, logistic regression).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
import warnings
from typing import Any

import pandas as pd

from fraudkit.core.exceptions import SmallSampleWarning
from fraudkit.science.entities import (
    HANDBOOK_DAYS,
    TX_PER_CUSTOMER_DAY,
    HandbookWorld,
    simulated_days,
)
from fraudkit.science.features import FeatureSpec, build_features
from fraudkit.science.fold_summary import DEFAULT_CONFIDENCE as CONFIDENCE
from fraudkit.science.fold_summary import METRICS
from fraudkit.science.prequential import (
    evaluate_fold,
    fold_tasks,
    prequential_folds,
    run_prequential,
)
from fraudkit.science.schema import PRESETS
from fraudkit.science.transactions import Transactions
from fraudkit.sweeps.folds import cluster_map

CUSTOMERS = 500
WARM_UP_DAYS = 30
TRAIN_DAYS, GAP_DAYS, TEST_DAYS, N_FOLDS = 7, 7, 7, 8
K = round(100 * CUSTOMERS / 5_000)
TARGET = 0.85
DEFAULT_MODELS = "logistic_regression,hist_gradient_boosting"


def _world(seed: int) -> Transactions:
    """One handbook world of :data:`CUSTOMERS` customers over the days the design needs."""
    days = WARM_UP_DAYS + TRAIN_DAYS + GAP_DAYS + (N_FOLDS + 1) * TEST_DAYS
    world = HandbookWorld(round(CUSTOMERS * TX_PER_CUSTOMER_DAY * HANDBOOK_DAYS), seed=seed)
    simulator = dataclasses.replace(world.simulator(), n_days=days)
    schema = PRESETS["handbook"]
    spec = FeatureSpec().for_schema(schema)
    frame = simulated_days(simulator, 0, days)
    frame = pd.concat([frame, build_features(frame, schema, spec)], axis=1)
    return Transactions(frame, schema, spec, simulator)


def one_future(seed: int, models: str) -> list[dict[str, Any]]:
    """Prequential on one world's history, then each model's realised metrics on its future."""
    warnings.simplefilter("ignore", SmallSampleWarning)
    data = _world(seed)
    days, _ = data.schema.review_keys(data.frame)
    history = dataclasses.replace(data, frame=data.frame[days <= days.max() - TEST_DAYS])
    design = {"train_days": TRAIN_DAYS, "test_days": TEST_DAYS, "k": K}
    result = run_prequential(
        history, models, **design, gap_days=GAP_DAYS, n_folds=N_FOLDS, confidence=CONFIDENCE
    )
    summary = result.summary()
    # The next fold of the same design: its test block is the future, its train block the
    # latest one the history allows.
    (future,) = prequential_folds(
        days, train_days=TRAIN_DAYS, test_days=TEST_DAYS, gap_days=GAP_DAYS, n_folds=1
    )
    card = data.schema.card
    tasks = fold_tasks(data, [future], list(summary.index), days=days, k=K, card_column=card)
    rows = []
    for task in tasks:
        realised = evaluate_fold(task)
        row: dict[str, Any] = {"seed": seed, "model": task.model_type}
        for metric in METRICS:
            low, high = summary.loc[task.model_type, [f"{metric}_low", f"{metric}_high"]]
            row |= {
                f"{metric}_fold_mean": summary.loc[task.model_type, f"{metric}_mean"],
                f"{metric}_low": low,
                f"{metric}_high": high,
                f"{metric}_realised": realised[metric],
                f"{metric}_covered": bool(low <= realised[metric] <= high),
            }
        rows.append(row)
    return rows


def _report(records: pd.DataFrame) -> pd.DataFrame:
    """Per model and metric: coverage, its standard error, widths and means."""
    table = {}
    for model, group in records.groupby("model", sort=False):
        for metric in METRICS:
            valid = group.dropna(subset=[f"{metric}_low", f"{metric}_realised"])
            covered = valid[f"{metric}_covered"].mean()
            table[(model, metric)] = {
                "futures": len(valid),
                "coverage": covered,
                "coverage_se": math.sqrt(covered * (1 - covered) / len(valid)),
                "mean_width": (valid[f"{metric}_high"] - valid[f"{metric}_low"]).mean(),
                "mean_fold_mean": valid[f"{metric}_fold_mean"].mean(),
                "mean_realised": valid[f"{metric}_realised"].mean(),
            }
    return pd.DataFrame.from_dict(table, orient="index").rename_axis(["model", "metric"])


def run(n_futures: int, models: str, workers: int) -> None:
    """Run the futures, print the coverage table and the targets."""
    start = time.perf_counter()
    print(
        f"{n_futures} futures: handbook worlds of {CUSTOMERS} customers; folds of train "
        f"{TRAIN_DAYS} d, gap {GAP_DAYS} d, test {TEST_DAYS} d, {N_FOLDS} folds; CP@{K} a day; "
        f"{CONFIDENCE:.0%} prediction intervals; {workers or 'no'} Dask workers"
    )
    with cluster_map(workers=workers) as map_fn:
        futures = map_fn(
            functools.partial(one_future, models=models), list(range(1, n_futures + 1))
        )
    records = pd.DataFrame([row for rows in futures for row in rows])
    table = _report(records)
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"\nTargets (CP@{K} interval holds the next period's realised value):")
    for model in table.index.get_level_values("model").unique():
        row = table.loc[(model, "card_precision_at_k")]
        passed = row["coverage"] >= TARGET
        print(
            f"  {'PASS' if passed else 'FAIL'}  {model}: coverage {row['coverage']:.3f} "
            f"+- {row['coverage_se']:.3f} >= {TARGET} (mean width {row['mean_width']:.3f})"
        )
    print(f"\n(took {time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 8 futures, LR only")
    parser.add_argument("--futures", type=int, default=None, help="simulated futures (100)")
    parser.add_argument("--models", default=None, help=f"model types ({DEFAULT_MODELS})")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (2; 0: none)")
    args = parser.parse_args()
    n_futures = args.futures or (8 if args.quick else 100)
    models = args.models or ("logistic_regression" if args.quick else DEFAULT_MODELS)
    run(n_futures, models, args.workers)


if __name__ == "__main__":
    main()
