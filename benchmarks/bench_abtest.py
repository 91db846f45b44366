"""Calibration, power and speed of ``fraudkit.abtest.compare_scores``.

Simulation design (stated so the figures can be read):

* Labels: ``n`` transactions, fraud with probability ``FRAUD_RATE`` (1 %).
* A latent suspicion ``s = 3 * fraud + N(0, 1)`` shared by both models; each model sees
  it through its own independent noise, ``score = expit(s + N(0, noise) - 2.5)``, so the
  decision ``score >= 0.5`` means ``s + noise >= 2.5``.
* Null: both models have noise 1.0 (exchangeable scores, same true AUPRC). The rate of
  ``p_value < 0.05`` over the null comparisons must lie within [0.03, 0.07].
* Power: model B has less noise than A. The true AUPRC difference of each setting is
  estimated once on 2,000,000 simulated transactions. Power of the permutation test on
  AUPRC is shown beside McNemar's exact test alone on the same simulations, with the
  coverage of the 95 % bootstrap interval for the true difference.
* Speed: one ``compare_scores`` call with 2,000 resamples (bootstrap and permutation
  each) on 100,000 transactions at 0.2 % fraud.

Run ``python benchmarks/bench_abtest.py`` (a few minutes) or add ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import expit
from sklearn.metrics import average_precision_score

from fraudkit.abtest import compare_scores

FRAUD_RATE = 0.01
SIGNAL = 3.0
NOISE_A = 1.0
NOISE_B = (0.85, 0.7, 0.55)
CUTOFF = 2.5
ALPHA = 0.05
NULL_TARGET = (0.03, 0.07)
SPEED_TARGET_SECONDS = 5.0


def simulate(
    rng: np.random.Generator, n: int, noise_b: float, fraud_rate: float = FRAUD_RATE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and the two models' scores for ``n`` transactions."""
    fraud = rng.random(n) < fraud_rate
    suspicion = SIGNAL * fraud + rng.normal(size=n)
    scores_a = expit(suspicion + rng.normal(0.0, NOISE_A, n) - CUTOFF)
    scores_b = expit(suspicion + rng.normal(0.0, noise_b, n) - CUTOFF)
    return fraud.astype(int), scores_a, scores_b


def true_difference(noise_b: float, rng: np.random.Generator) -> float:
    """Population AUPRC of B minus A, estimated on a very large sample."""
    y, scores_a, scores_b = simulate(rng, 2_000_000, noise_b)
    return average_precision_score(y, scores_b) - average_precision_score(y, scores_a)


def rates(
    noise_b: float, truth: float, reps: int, n: int, n_resamples: int, seed: int
) -> dict[str, float]:
    """Rejection rates of both tests and CI coverage of ``truth`` over ``reps`` datasets."""
    rng = np.random.default_rng(seed)
    permutation = mcnemar = covered = 0
    for _ in range(reps):
        result = compare_scores(
            *simulate(rng, n, noise_b), alpha=ALPHA, n_resamples=n_resamples, random_state=rng
        )
        permutation += result.p_value < ALPHA
        mcnemar += result.mcnemar_p_value < ALPHA
        covered += result.ci_low <= truth <= result.ci_high
    return {
        "permutation": permutation / reps,
        "mcnemar": mcnemar / reps,
        "coverage": covered / reps,
    }


def speed(n_resamples: int) -> tuple[float, float]:
    """Wall and CPU seconds of one comparison on 100,000 transactions at 0.2 % fraud."""
    y, scores_a, scores_b = simulate(np.random.default_rng(7), 100_000, 0.8, fraud_rate=0.002)
    wall, cpu = time.perf_counter(), time.process_time()
    compare_scores(y, scores_a, scores_b, n_resamples=n_resamples, random_state=0)
    return time.perf_counter() - wall, time.process_time() - cpu


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args()
    n, null_reps, power_reps, n_resamples = (
        (5_000, 100, 40, 300) if args.quick else (10_000, 500, 200, 1_000)
    )
    print(
        f"Design: n={n:,} transactions, fraud rate {FRAUD_RATE:.1%} (~{n * FRAUD_RATE:.0f} "
        f"frauds), {n_resamples:,} resamples per test, alpha={ALPHA}"
    )

    null = rates(NOISE_A, 0.0, null_reps, n, n_resamples, seed=1)
    low, high = NULL_TARGET
    se = np.sqrt(ALPHA * (1 - ALPHA) / null_reps)
    print(f"\nCalibration: {null_reps} null comparisons (A and B exchangeable)")
    print(f"{'test':<34}{'P(p < 0.05)':>12}   target")
    passed = low <= null["permutation"] <= high
    print(
        f"{'permutation test on AUPRC':<34}{null['permutation']:>12.3f}   "
        f"[{low}, {high}] {verdict(passed)}"
    )
    print(f"{'McNemar exact at threshold 0.5':<34}{null['mcnemar']:>12.3f}   (reported)")
    print(f"{'95% bootstrap CI covers 0':<34}{null['coverage']:>12.3f}   (reported)")
    print(f"(Monte Carlo standard error of a rate of 0.05: {se:.3f})")
    if null_reps < 500:
        print("(quick run: the calibration target is defined on >= 500 comparisons)")

    rng = np.random.default_rng(2)
    print(f"\nPower: {power_reps} comparisons per setting, A noise {NOISE_A}")
    print(f"{'B noise':>8}{'true dAUPRC':>13}{'permutation':>13}{'McNemar':>9}{'CI coverage':>13}")
    for seed, noise_b in enumerate(NOISE_B, start=10):
        truth = true_difference(noise_b, rng)
        power = rates(noise_b, truth, power_reps, n, n_resamples, seed)
        print(
            f"{noise_b:>8.2f}{truth:>13.3f}{power['permutation']:>13.3f}"
            f"{power['mcnemar']:>9.3f}{power['coverage']:>13.3f}"
        )

    wall, cpu = speed(2_000)
    print("\nSpeed: 2,000 resamples (bootstrap + permutation) on 100,000 transactions, 0.2% fraud")
    print(
        f"wall {wall:.2f} s, CPU {cpu:.2f} s   target wall <= {SPEED_TARGET_SECONDS:.0f} s "
        f"{verdict(wall <= SPEED_TARGET_SECONDS)}"
    )


if __name__ == "__main__":
    main()
