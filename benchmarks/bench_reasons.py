"""Benchmark the reasons behind a score: faithful, exactly additive, and fast.

For each model type, trains a calibrated model on simulated Kaggle-schema transactions,
chooses its threshold on a later validation window (precision 0.9, the training notebook's
default rule) and explains a fresh test window of 100,000 rows:

* **faithfulness**: for every alert, the top reason's feature is set to its training
  median; the share of alerts whose score then falls. Target at least 0.95;
* **additivity**: the largest gap between ``base_value + contributions`` and the log-odds
  of the model's fraud probability, over the rows whose probability float64 holds to that
  precision (within 1e-9 of neither 0 nor 1: a forest's surest rows reach log-odds of 40,
  where ``1 - p`` underflows). Target at most 1e-6. All rows are compared as probabilities
  too (``prob_gap``);
* **speed**: milliseconds a row to score with no reasons (``predict_proba``) and with three
  (:meth:`ReasonExplainer.reasons`), side by side with shap's ``KernelExplainer`` on a
  sample of rows (the usual fallback for a calibrated model, which TreeExplainer cannot
  open). Targets: at most 0.5 ms a row with three reasons, at least 100x faster than
  ``KernelExplainer``.

Usage: ``python benchmarks/bench_reasons.py [--quick] [--models a,b] [--rows N]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from fraudkit.core.schema import FEATURE_COLUMNS, LABEL_COLUMN
from fraudkit.science.models import MODEL_TYPES, train_model
from fraudkit.science.reasons import ReasonExplainer
from fraudkit.science.simulate import TransactionSimulator
from fraudkit.science.thresholds import choose_threshold

TRAIN_ROWS = 200_000
VALIDATION_ROWS = 80_000
TEST_ROWS = 100_000
KERNEL_ROWS = 20  # KernelExplainer costs seconds a row: a sample is enough for its rate
KERNEL_BACKGROUND = 50
TARGET_FAITHFUL = 0.95
# Probabilities this close to 0 or 1 do not hold their log-odds to 1e-6 in float64.
PRECISION_EDGE = 1e-9
TARGET_ADDITIVITY = 1e-6
TARGET_MS_PER_ROW = 0.5
TARGET_SPEEDUP = 100.0


def _faithfulness(
    model, explainer: ReasonExplainer, alerts: pd.DataFrame, medians: pd.Series
) -> float:
    """Share of alerts whose score falls when their top reason's feature is set to its median."""
    top = explainer.reasons(alerts, 1)["reason_1"].to_numpy()
    changed = alerts.copy()
    for feature in np.unique(top):
        rows = np.flatnonzero(top == feature)
        changed.loc[changed.index[rows], feature] = medians[feature]
    before = model.predict_proba(alerts)[:, 1]
    after = model.predict_proba(changed)[:, 1]
    return float(np.mean(after < before))


def _kernel_ms_per_row(model, train: pd.DataFrame, test: pd.DataFrame, rows: int) -> float:
    """Milliseconds a row for shap's KernelExplainer on the calibrated model's probability."""
    import shap

    background = shap.sample(train[FEATURE_COLUMNS], KERNEL_BACKGROUND, random_state=0)

    def fraud_probability(values: np.ndarray) -> np.ndarray:
        return model.predict_proba(pd.DataFrame(values, columns=FEATURE_COLUMNS))[:, 1]

    explainer = shap.KernelExplainer(fraud_probability, background)
    sample = test[FEATURE_COLUMNS].head(rows)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer.shap_values(sample, silent=True)
    return (time.perf_counter() - start) * 1e3 / rows


def _timed_ms_per_row(action, rows: int) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1e3 / rows


def _measure(model_type: str, frames: dict[str, pd.DataFrame], kernel_rows: int) -> dict:
    train, validation, test = frames["train"], frames["validation"], frames["test"]
    model = train_model(train, model_type, calibration_df=validation)
    threshold = choose_threshold(
        validation[LABEL_COLUMN], model.predict_proba(validation)[:, 1]
    ).threshold
    explainer = ReasonExplainer(model, train)
    plain_ms = _timed_ms_per_row(lambda: model.predict_proba(test), len(test))
    reasons_ms = _timed_ms_per_row(lambda: explainer.reasons(test, 3), len(test))
    explained = explainer.explain(test)
    probability = model.predict_proba(test)[:, 1]
    held = (probability > PRECISION_EDGE) & (probability < 1 - PRECISION_EDGE)
    additivity = float(np.abs(explained.score - logit(probability))[held].max())
    alerts = test[probability >= threshold]
    medians = train[FEATURE_COLUMNS].median()
    kernel_ms = _kernel_ms_per_row(model, train, test, kernel_rows)
    return {
        "model": model_type,
        "alerts": len(alerts),
        "faithful": _faithfulness(model, explainer, alerts, medians),
        "additivity": additivity,
        "prob_gap": float(np.abs(expit(explained.score) - probability).max()),
        "rows_held": int(held.sum()),
        "plain_ms": plain_ms,
        "reasons_ms": reasons_ms,
        "kernel_ms": kernel_ms,
        "speedup": kernel_ms / reasons_ms,
    }


def _verdicts(table: pd.DataFrame) -> list[str]:
    checks = [
        ("faithful", lambda v: v >= TARGET_FAITHFUL, f">= {TARGET_FAITHFUL}"),
        ("additivity", lambda v: v <= TARGET_ADDITIVITY, f"<= {TARGET_ADDITIVITY:g}"),
        ("reasons_ms", lambda v: v <= TARGET_MS_PER_ROW, f"<= {TARGET_MS_PER_ROW} ms"),
        ("speedup", lambda v: v >= TARGET_SPEEDUP, f">= {TARGET_SPEEDUP:g}x"),
    ]
    lines = []
    for row in table.itertuples():
        for column, passes, target in checks:
            value = getattr(row, column)
            verdict = "PASS" if passes(value) else "FAIL"
            lines.append(f"{row.model:>22} {column:<11} {value:.3g} (target {target}): {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small frames, smoke test only")
    parser.add_argument("--models", default=",".join(MODEL_TYPES), help="comma-separated")
    parser.add_argument("--rows", type=int, default=None, help="test rows (default 100,000)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    scale = 10 if args.quick else 1
    simulator = TransactionSimulator(seed=args.seed)
    # In time order: training, then validation (calibration and threshold), then test.
    frames = {
        "train": simulator.sample(TRAIN_ROWS // scale),
        "validation": simulator.sample(VALIDATION_ROWS // scale),
        "test": simulator.sample(args.rows or TEST_ROWS // scale),
    }
    kernel_rows = max(2, KERNEL_ROWS // scale)
    rows = []
    for model_type in args.models.split(","):
        rows.append(_measure(model_type, frames, kernel_rows))
        print(f"{model_type}: done", flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{len(frames['test']):,} test rows; KernelExplainer on {kernel_rows} rows")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\n".join(_verdicts(table)))


if __name__ == "__main__":
    main()
