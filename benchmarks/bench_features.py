"""Speed and peak memory of ``fraudkit.science.features.build_features`` against a plain
pandas ``groupby().rolling()`` implementation of the same features, side by side.

Design (stated so the figures can be read):

* Data: ``--rows`` transactions (default 1,000,000) over ``--cards`` cards (100,000),
  183 days, times in whole seconds, gamma-distributed amounts in cents, 1 % fraud.
* Features: the default set for one entity (the card): count, amount sum, mean and
  amount-to-mean over 1 h, 1 d, 7 d and 30 d; seconds since the previous transaction;
  fraud rate and known labels over 7 d and 30 d with labels known 7 d after their
  transaction.
* Baseline: pandas, one ``groupby(card).rolling(window, on=time)`` per window for the
  count and sum (the current row included), ``groupby().diff()`` for the gap; the label
  rate of labels known in ``(t - w, t]`` as the rolling label sum over ``w + 7d`` minus
  that over ``7d``. Its values are compared with the kit's (largest absolute
  difference printed; rows at the very same second differ in definition, the kit counting
  only those before in file order for labels, so they are left out of the comparison).
* One core: the script sets the BLAS/OpenMP thread counts to 1 before numpy loads.
  Peak memory is the largest traced allocation (``tracemalloc``) of a second, untimed
  run of each.

Targets: at least 5M transactions per minute on one core, and at least 3x the baseline.
Run ``python benchmarks/bench_features.py`` (a few minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fraudkit.science.features import FeatureSpec, build_features  # noqa: E402
from fraudkit.science.schema import TransactionSchema  # noqa: E402

SCHEMA = TransactionSchema(
    time="when", label="fraud", amount="amount", entities=("card",), name="benchmark"
)
SPEC = FeatureSpec().for_schema(SCHEMA)
DAY = pd.Timedelta("1D")


def simulate(rows: int, cards: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, 183 * 86_400, rows))
    frame = pd.DataFrame(
        {
            "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(seconds, unit="s"),
            "card": rng.integers(0, cards, rows),
            "amount": rng.gamma(2.0, 30.0, rows).round(2),
            "fraud": (rng.random(rows) < 0.01).astype(np.int64),
        }
    )
    return SCHEMA.validate(frame).frame


def _timedelta(window: str) -> pd.Timedelta:
    return pd.Timedelta(window.replace("d", "D"))


def pandas_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    """The same features with pandas' own rolling windows, the way one writes them."""
    grouped = frame.groupby("card", sort=False)
    # groupby().rolling() returns the rows group by group, in order of first appearance.
    rows = np.argsort(pd.factorize(frame["card"])[0], kind="stable")
    amounts = frame["amount"].to_numpy()[rows]
    out: dict[str, np.ndarray] = {}

    def put(name: str, values: np.ndarray) -> None:
        out[name] = np.empty(len(frame))
        out[name][rows] = values

    for window in SPEC.windows:
        rolled = grouped.rolling(_timedelta(window), on="when")["amount"]
        count, total = rolled.count().to_numpy(), rolled.sum().to_numpy()
        put(f"card_count_{window}", count)
        put(f"card_amount_sum_{window}", total)
        put(f"card_amount_mean_{window}", total / count)
        ratio = np.divide(amounts, total / count, out=np.ones(len(count)), where=total > 0)
        put(f"card_amount_to_mean_{window}", ratio)
    out["card_seconds_since_previous"] = grouped["when"].diff().dt.total_seconds().to_numpy()
    delay = _timedelta(SPEC.label_delay)
    for window in SPEC.label_windows:
        # Labels known in (t - w, t] belong to transactions in (t - w - delay, t - delay].
        outer = grouped.rolling(_timedelta(window) + delay, on="when")["fraud"]
        inner = grouped.rolling(delay, on="when")["fraud"]
        known = (outer.count().fillna(0) - inner.count().fillna(0)).to_numpy()
        frauds = (outer.sum().fillna(0) - inner.sum().fillna(0)).to_numpy()
        put(
            f"card_fraud_rate_{window}",
            np.divide(frauds, known, out=np.zeros(len(known)), where=known > 0),
        )
        put(f"card_known_labels_{window}", known)
    return pd.DataFrame(out, index=frame.index)[SPEC.names()]


def measure(function, frame: pd.DataFrame) -> tuple[pd.DataFrame, float, float]:
    """Result, seconds and peak MiB. Timed without tracemalloc, which slows pandas'
    per-group Python objects many times over; the memory pass runs apart."""
    started = time.perf_counter()
    result = function(frame)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    function(frame)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 10,000 cards")
    args = parser.parse_args()
    rows, cards = (100_000, 10_000) if args.quick else (args.rows, args.cards)
    frame = simulate(rows, cards)
    kit, kit_seconds, kit_peak = measure(lambda f: build_features(f, SCHEMA, SPEC), frame)
    base, base_seconds, base_peak = measure(pandas_baseline, frame)
    print(f"{rows:,} transactions over {cards:,} cards; {len(SPEC.names())} features")
    print(f"{'':24}{'seconds':>10}{'tx/minute':>14}{'peak MiB':>11}")
    for name, seconds, peak in (
        ("fraudkit build_features", kit_seconds, kit_peak),
        ("pandas groupby.rolling", base_seconds, base_peak),
    ):
        print(f"{name:24}{seconds:10.2f}{rows / seconds * 60:14,.0f}{peak:11.0f}")
    print(
        f"speed-up: {base_seconds / kit_seconds:.1f}x (target >= 3x); "
        f"{rows / kit_seconds * 60 / 1e6:.1f}M tx/minute on one core (target >= 5M)"
    )
    tied = frame.duplicated(["card", "when"], keep=False).to_numpy()
    for column in SPEC.names():
        difference = np.nanmax(
            np.abs(kit[column].to_numpy()[~tied] - base[column].to_numpy()[~tied])
        )
        if difference > 1e-6:
            print(f"  {column}: largest difference from pandas {difference:.3g}")
    print(
        f"values: equal to pandas within 1e-6 on the {int((~tied).sum()):,} untied rows "
        "unless listed above"
    )


if __name__ == "__main__":
    main()
