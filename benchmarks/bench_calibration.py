"""Benchmark the calibration of fraudkit's models: are the scores fraud probabilities?

For each model type, data size and seed, follows the training notebook's recipe: simulate
``n`` transactions (0.172 % fraud), split them by time 60/20/20, fit on the training
period, calibrate on the validation period (``train_model(..., calibration_df=...)``) and
choose the threshold for precision 0.8 on the validation period. Every model then scores
a fresh 100,000-row window drawn after the data, where it reports:

- expected / actual fraud count: the sum of the predicted probabilities over the number
  of frauds that happened (1.0 for calibrated probabilities);
- the precision-0.8 threshold, which should read as a probability, not sit at 0.998;
- AUPRC uncalibrated, with the default (sigmoid) calibration and with isotonic, so the
  AUPRC change from calibration is measured on the same fitted pipeline;
- Brier score and expected calibration error of the default.

Targets: median expected/actual within [0.85, 1.15] and every precision-0.8 threshold
strictly inside (0.02, 0.98), for each model type and size; the default calibration moves
AUPRC by at most 0.005.

Usage: ``python benchmarks/bench_calibration.py [--quick] [--models a,b] [--sizes n,m]
[--seeds k]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from fraudkit.core.schema import LABEL_COLUMN
from fraudkit.science.data import time_split
from fraudkit.science.metrics import calibration_metrics, evaluate
from fraudkit.science.models import MODEL_TYPES, base_model, predict_scores, train_model
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.science.thresholds import choose_threshold

FULL_SIZES = (150_000, 284_807)
QUICK_SIZES = (60_000,)
FRESH_ROWS = 100_000
QUICK_FRESH_ROWS = 50_000
RATIO_BAND = (0.85, 1.15)
THRESHOLD_BAND = (0.02, 0.98)
MAX_AUPRC_CHANGE = 0.005


def _one(model_type: str, size: int, seed: int, fresh_rows: int) -> dict[str, float]:
    simulator = TransactionSimulator(seed=seed)
    split = time_split(simulator.sample(size))
    fresh = simulator.sample(fresh_rows)  # later in time than every training row
    y = fresh[LABEL_COLUMN].to_numpy()
    start = time.perf_counter()
    model = train_model(split.train, model_type, calibration_df=split.validation)
    fit_seconds = time.perf_counter() - start
    threshold = choose_threshold(
        split.validation[LABEL_COLUMN], predict_scores(model, split.validation), target=0.8
    )
    pipeline = base_model(model)
    # The alternative method on the same frozen pipeline: what the default is chosen over.
    isotonic = CalibratedClassifierCV(FrozenEstimator(pipeline), method="isotonic", cv=2)
    isotonic.fit(split.validation, split.validation[LABEL_COLUMN])
    scores = predict_scores(model, fresh)
    raw_scores = predict_scores(pipeline, fresh)
    calibration = calibration_metrics(y, scores)
    return {
        "model": model_type,
        "rows": size,
        "seed": seed,
        "calibration_frauds": int(split.validation[LABEL_COLUMN].sum()),
        "fresh_frauds": int(y.sum()),
        "ratio_uncalibrated": raw_scores.sum() / y.sum(),
        "ratio": calibration["expected_to_actual_fraud"],
        "threshold": threshold.threshold,
        "threshold_fallback": threshold.fallback,
        "auprc_uncalibrated": evaluate(y, raw_scores)["average_precision"],
        "auprc": evaluate(y, scores)["average_precision"],
        "auprc_isotonic": evaluate(y, predict_scores(isotonic, fresh))["average_precision"],
        "brier": calibration["brier_score"],
        "ece": calibration["expected_calibration_error"],
        "fit_s": fit_seconds,
    }


def _summary(table: pd.DataFrame) -> pd.DataFrame:
    table = table.assign(
        auprc_change=table["auprc"] - table["auprc_uncalibrated"],
        isotonic_change=table["auprc_isotonic"] - table["auprc_uncalibrated"],
    )
    grouped = table.groupby(["model", "rows"], sort=False)
    return pd.DataFrame(
        {
            "median_ratio_uncal": grouped["ratio_uncalibrated"].median(),
            "median_ratio": grouped["ratio"].median(),
            "ratio_min": grouped["ratio"].min(),
            "ratio_max": grouped["ratio"].max(),
            "threshold_min": grouped["threshold"].min(),
            "threshold_max": grouped["threshold"].max(),
            "fallbacks": grouped["threshold_fallback"].sum(),
            "auprc": grouped["auprc"].mean(),
            "max_abs_auprc_change": grouped["auprc_change"].agg(lambda c: c.abs().max()),
            "isotonic_change": grouped["isotonic_change"].mean(),
            "brier": grouped["brier"].mean(),
            "ece": grouped["ece"].mean(),
        }
    ).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, smoke test only")
    parser.add_argument("--models", default=",".join(MODEL_TYPES), help="comma-separated")
    parser.add_argument("--sizes", default=None, help="comma-separated data sizes")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..k-1")
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else list(QUICK_SIZES if args.quick else FULL_SIZES)
    )
    fresh_rows = QUICK_FRESH_ROWS if args.quick else FRESH_ROWS
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"fresh window: {fresh_rows:,} rows; seeds 0..{args.seeds - 1}; "
        f"load average {load}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}\n"
    )
    rows = []
    for model_type in args.models.split(","):
        for size in sizes:
            for seed in range(args.seeds):
                row = _one(model_type, size, seed, fresh_rows)
                rows.append(row)
                print(
                    f"{model_type:>22} {size:>8,} rows seed {seed}: expected/actual "
                    f"{row['ratio']:.3f} (uncalibrated {row['ratio_uncalibrated']:.2f}), "
                    f"threshold {row['threshold']:.4f}, fit {row['fit_s']:.1f} s",
                    flush=True,
                )
    summary = _summary(pd.DataFrame(rows))
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print("\n" + summary.to_string(index=False))

    ratio_ok = summary["median_ratio"].between(*RATIO_BAND)
    threshold_ok = (summary["threshold_min"] > THRESHOLD_BAND[0]) & (
        summary["threshold_max"] < THRESHOLD_BAND[1]
    )
    auprc_ok = summary["max_abs_auprc_change"] <= MAX_AUPRC_CHANGE
    print()
    for name, ok in (
        (f"median expected/actual fraud count in {list(RATIO_BAND)}", ratio_ok),
        (f"precision-0.8 threshold strictly inside {THRESHOLD_BAND}", threshold_ok),
        (f"|AUPRC change| from the default calibration <= {MAX_AUPRC_CHANGE}", auprc_ok),
    ):
        failing = summary.loc[~ok, ["model", "rows"]].to_records(index=False).tolist()
        verdict = "PASS" if bool(np.all(ok)) else f"FAIL for {failing}"
        print(f"target: {name}: {verdict}")


if __name__ == "__main__":
    main()
