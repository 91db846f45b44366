"""The entity simulator's ceiling against Monte Carlo frequencies, and a model against it.

Design (stated so the figures can be read):

* **Ceiling check.** ``--seeds`` simulations (default 3) of ``EntitySimulator`` at its
  defaults: 5,000 customers, 10,000 terminals, 183 days, about 1.77M transactions each.
  Every transaction's ceiling (``fraud_probability``) is set beside its label. Printed:
  the expected over the realised number of frauds, and per score band the mean ceiling,
  the realised fraud rate and its standard error. An exact posterior matches in every
  band; the gap is that of the terminal approximation (``terminal_compromise``).
* **Model against ceiling**, on one simulation sized to about 1M transactions (2,800
  customers, 5,600 terminals: the same density), split by time: training on days 0-119,
  a gap of 7 days, test on days 127-182. The kit's default classifier (the
  ``HistGradientBoostingClassifier`` of ``build_model("hist_gradient_boosting")``, its
  settings as they are) twice: on the transaction alone (amount, hour, weekday) and with
  the behavioural features of ``build_features`` for the customer and the terminal (the
  default windows, labels counted once known). The average precision of each and of the
  ceiling on the test days; the target is 0.85 of the ceiling with the features.

Run ``python benchmarks/bench_entities.py`` (several minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import average_precision_score

from fraudkit.science.entities import EntitySimulator
from fraudkit.science.features import build_features
from fraudkit.science.models import build_model
from fraudkit.science.schema import PRESETS

SCHEMA = PRESETS["handbook"]
BANDS = [0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.99, 1.01]


def ceiling_check(seeds: int, size: dict[str, int]) -> None:
    scores, labels = [], []
    started = time.perf_counter()
    for seed in range(seeds):
        simulator = EntitySimulator(**size, seed=seed)
        frame = simulator.sample()
        scores.append(simulator.fraud_probability(frame))
        labels.append(frame["TX_FRAUD"].to_numpy())
    score, label = np.concatenate(scores), np.concatenate(labels)
    seconds = time.perf_counter() - started
    print(
        f"Ceiling check: {seeds} simulations, {len(score):,} transactions, "
        f"{int(label.sum()):,} frauds ({seconds:.0f} s)"
    )
    print(f"  expected / realised frauds: {score.sum() / label.sum():.3f}")
    print(f"  {'band':>14} {'rows':>10} {'ceiling':>9} {'realised':>9} {'s.e.':>8}")
    band = np.digitize(score, BANDS) - 1
    for b in range(len(BANDS) - 1):
        inside = band == b
        if inside.sum() == 0:
            continue
        predicted, realised = score[inside].mean(), label[inside].mean()
        error = math.sqrt(predicted * (1 - predicted) / inside.sum())
        print(
            f"  [{BANDS[b]:.3f}, {min(BANDS[b + 1], 1):.3f}) {inside.sum():>10,} "
            f"{predicted:9.4f} {realised:9.4f} {error:8.4f}"
        )
    print(f"  ceiling average precision: {average_precision_score(label, score):.3f}")


def model_against_ceiling(size: dict[str, int]) -> None:
    simulator = EntitySimulator(**size, seed=11)
    frame = SCHEMA.validate(simulator.sample()).frame
    ceiling = simulator.fraud_probability(frame)
    started = time.perf_counter()
    behaviour = build_features(frame, SCHEMA)
    feature_seconds = time.perf_counter() - started
    when = frame["TX_DATETIME"]
    alone = pd.DataFrame(
        {
            "amount": frame["TX_AMOUNT"],
            "hour": when.dt.hour + when.dt.minute / 60,
            "weekday": when.dt.day_of_week,
        }
    )
    day = (when - when.iloc[0].normalize()).dt.days.to_numpy()
    train, test = day < 120, day >= 127
    label = frame["TX_FRAUD"].to_numpy()
    print(
        f"\nModel against ceiling: {len(frame):,} transactions, {int(label.sum()):,} frauds; "
        f"features in {feature_seconds:.1f} s; test days 127-182 "
        f"({int(test.sum()):,} rows, {int(label[test].sum()):,} frauds)"
    )
    best = average_precision_score(label[test], ceiling[test])
    print(f"  {'':38}{'AUPRC':>8}{'of ceiling':>12}")
    print(f"  {'ceiling (Bayes, exact up to terminals)':38}{best:8.3f}{1:12.2f}")
    for name, columns in (
        ("HGB, the transaction alone", alone),
        ("HGB, with behavioural features", pd.concat([alone, behaviour], axis=1)),
    ):
        model = clone(build_model("hist_gradient_boosting").named_steps["classifier"])
        model.fit(columns[train], label[train])
        precision = average_precision_score(label[test], model.predict_proba(columns[test])[:, 1])
        print(f"  {name:38}{precision:8.3f}{precision / best:12.2f}")
    print("  target: with the features, at least 0.85 of the ceiling")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one small simulation of each")
    args = parser.parse_args()
    if args.quick:
        small = {"n_customers": 1_000, "n_terminals": 2_000, "n_days": 183}
        ceiling_check(1, small)
        model_against_ceiling(small)
        return
    ceiling_check(args.seeds, {})
    model_against_ceiling({"n_customers": 2_800, "n_terminals": 5_600})


if __name__ == "__main__":
    main()
