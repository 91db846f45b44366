"""Calibration, power and speed of ``fraudkit.science.abtest.compare_scores``, and false winners,
power and stopping time of the sequential online A/B test against Fisher's exact test.

Paired offline comparison, simulation design (stated so the figures can be read):

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

Online traffic split, looked at daily (``fraudkit.science.sequential.SequentialABTest``, the test
``compare_online(sequential=True)`` runs), simulation design:

* Each arm serves ``TRAFFIC_PER_DAY`` (20,000) transactions a day for 30 days; each is a
  fraud with probability 0.00172 (~34 frauds an arm a day, ~1,030 over the test), and each
  fraud is caught (flagged) with its arm's recall. Only these counts matter to the tests,
  so they are drawn directly as binomials.
* Null: both arms have recall 0.60. A team looks after every day and stops at the first
  winner. Rate of experiments that ever declare a winner ("false winners"), for: the
  sequential test (target <= 0.05); Fisher's exact test on the cumulative counts, looked
  at daily and stopped at the first p < 0.05 (the naive practice); Fisher once at day 30
  (the fixed-horizon design it is valid for).
* Alternatives: recall of B 0.75, 0.70 and 0.66 against A's 0.60. Power (B declared the
  winner by day 30), mean stopping day of the experiments that stopped, days used on
  average (30 for those that never stop) and the time-uniform coverage of the confidence
  sequence (true difference inside the interval at all 30 looks; target >= 0.95), against
  Fisher once at day 30.
* Sensitivity: the sequential null rate at 5,000 and 50,000 transactions an arm a day,
  and the null rate, power and stopping day for mixing_sd 0.05, 0.1 (default) and 0.2.

Power and required traffic (``fraudkit.science.power.analyse_power``, the statement the A/B
notebook makes), checked where the truth is known:

* Two models of different quality, logistic regression (A) and gradient boosting (B),
  trained on 20,000 simulated Kaggle-schema transactions at 1 % fraud
  (``TransactionSimulator``), calibrated as the training notebook does.
* Their true AUPRC difference: the population value under the simulator's exact fraud
  probability on 1,000,000 fresh transactions (each counts as fraud with weight ``q``
  and as legitimate with weight ``1 - q``).
* One observed A/B sample of 40,000 transactions gives the recommended traffic for 80 %
  power at that difference (``min_detectable_difference`` = the true difference).
* Fresh A/B tests at that traffic, drawn from the simulator with its own labels, each run
  with ``compare_scores``: the share B wins is the power, target 0.80 +- 0.05.
* The statement for a small case: models trained on 100,000 transactions at the Kaggle
  fraud rate (0.172 %), compared on 20,000 fresh ones (~34 frauds).

Run ``python benchmarks/bench_abtest.py`` (a few minutes) or add ``--quick`` for a smoke run;
``--power-only`` runs the power section alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats
from scipy.special import expit
from sklearn.metrics import average_precision_score

from fraudkit.science.abtest import compare_scores
from fraudkit.science.models import predict_scores, train_model
from fraudkit.science.power import analyse_power
from fraudkit.science.sequential import DEFAULT_MIXING_SD, SequentialABTest
from fraudkit.science.simulate import TransactionSimulator

FRAUD_RATE = 0.01
SIGNAL = 3.0
NOISE_A = 1.0
NOISE_B = (0.85, 0.7, 0.55)
CUTOFF = 2.5
ALPHA = 0.05
NULL_TARGET = (0.03, 0.07)
SPEED_TARGET_SECONDS = 5.0

ONLINE_FRAUD_RATE = 0.00172
TRAFFIC_PER_DAY = 20_000
DAYS = 30
RECALL_A = 0.60
RECALL_B = (0.75, 0.70, 0.66)
SEQUENTIAL_NULL_TARGET = 0.05
COVERAGE_TARGET = 1 - ALPHA

POWER_TARGET = (0.75, 0.85)
POWER_FRAUD_RATE = 0.01
KAGGLE_FRAUD_RATE = 0.00172


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


# ------------------------------------------------------------- sequential online A/B

Counts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def daily_counts(
    rng: np.random.Generator, reps: int, recall_b: float, traffic: int = TRAFFIC_PER_DAY
) -> Counts:
    """New frauds and caught frauds of A and B per experiment (rows) and day (columns)."""
    fraud_a, fraud_b = rng.binomial(traffic, ONLINE_FRAUD_RATE, (2, reps, DAYS))
    return fraud_a, rng.binomial(fraud_a, RECALL_A), fraud_b, rng.binomial(fraud_b, recall_b)


def sequential_runs(counts: Counts, mixing_sd: float, truth: float) -> dict[str, np.ndarray]:
    """Winner, stopping day (0: never) and time-uniform coverage of each experiment.

    Every experiment runs all its looks, so coverage is checked after stopping too.
    """
    reps = counts[0].shape[0]
    winner, day = np.full(reps, "", dtype=object), np.zeros(reps, dtype=int)
    covered = np.ones(reps, dtype=bool)
    for rep in range(reps):
        test = SequentialABTest(alpha=ALPHA, mixing_sd=mixing_sd)
        for look in range(DAYS):
            state = test.update_counts(*(int(column[rep, look]) for column in counts))
            covered[rep] &= state.ci_low <= truth <= state.ci_high
            if state.stop and not day[rep]:
                winner[rep], day[rep] = state.winner, look + 1
    return {"winner": winner, "day": day, "covered": covered}


def fisher_runs(counts: Counts, looks: range) -> dict[str, np.ndarray]:
    """Winner and stopping day of Fisher's exact test, stopped at the first p < alpha.

    ``looks`` are the days (from 1) at which the cumulative counts are tested.
    """
    fraud_a, caught_a, fraud_b, caught_b = (column.cumsum(axis=1) for column in counts)
    reps = fraud_a.shape[0]
    winner, day = np.full(reps, "", dtype=object), np.zeros(reps, dtype=int)
    for rep in range(reps):
        for look in looks:
            n_a, c_a, n_b, c_b = (
                int(column[rep, look - 1]) for column in (fraud_a, caught_a, fraud_b, caught_b)
            )
            p_value = stats.fisher_exact([[c_a, n_a - c_a], [c_b, n_b - c_b]])[1]
            if p_value < ALPHA:
                winner[rep], day[rep] = ("B" if c_b / n_b > c_a / n_a else "A"), look
                break
    return {"winner": winner, "day": day}


def rate(runs: dict[str, np.ndarray], winner: str | None = None) -> float:
    """Share of experiments declaring ``winner`` (any winner when None)."""
    declared = runs["winner"] != ""
    return float(np.mean(declared if winner is None else runs["winner"] == winner))


def stopping(runs: dict[str, np.ndarray]) -> tuple[float, float]:
    """Mean stopping day of experiments that stopped, and mean days used by all."""
    stopped = runs["day"] > 0
    mean_stop = float(runs["day"][stopped].mean()) if stopped.any() else float("nan")
    return mean_stop, float(np.where(stopped, runs["day"], DAYS).mean())


def sequential_section(null_reps: int, power_reps: int) -> None:
    frauds = TRAFFIC_PER_DAY * ONLINE_FRAUD_RATE
    print(
        f"\nSequential online A/B: {TRAFFIC_PER_DAY:,} transactions an arm a day, fraud rate "
        f"{ONLINE_FRAUD_RATE:.3%} (~{frauds:.0f} frauds an arm a day), {DAYS} daily looks, "
        f"alpha={ALPHA}, mixing_sd={DEFAULT_MIXING_SD}"
    )
    null_counts = daily_counts(np.random.default_rng(20), null_reps, RECALL_A)
    sequential = sequential_runs(null_counts, DEFAULT_MIXING_SD, 0.0)
    peeked = fisher_runs(null_counts, range(1, DAYS + 1))
    once = fisher_runs(null_counts, range(DAYS, DAYS + 1))
    se = np.sqrt(ALPHA * (1 - ALPHA) / null_reps)
    print(f"\nNull: both arms recall {RECALL_A:.2f}, {null_reps} experiments")
    print(f"{'test':<44}{'false winners':>14}   target")
    false_rate = rate(sequential)
    print(
        f"{'sequential (mSPRT), looked at daily':<44}{false_rate:>14.3f}   "
        f"<= {SEQUENTIAL_NULL_TARGET} {verdict(false_rate <= SEQUENTIAL_NULL_TARGET)}"
    )
    print(f"{'Fisher looked at daily, stop at p < 0.05':<44}{rate(peeked):>14.3f}   (reported)")
    print(f"{'Fisher once at day 30':<44}{rate(once):>14.3f}   (reported)")
    print(f"(Monte Carlo standard error of a rate of 0.05: {se:.3f})")

    print(f"\nAlternatives: recall A {RECALL_A:.2f}, {power_reps} experiments each")
    print(
        f"{'recall B':>8}{'diff':>6} | {'seq power':>9}{'wrong':>6}{'stop day':>9}"
        f"{'days used':>10}{'CS cover':>9} | {'Fisher@30 power':>15}"
    )
    for seed, recall_b in enumerate(RECALL_B, start=21):
        counts = daily_counts(np.random.default_rng(seed), power_reps, recall_b)
        truth = recall_b - RECALL_A
        sequential = sequential_runs(counts, DEFAULT_MIXING_SD, truth)
        once = fisher_runs(counts, range(DAYS, DAYS + 1))
        mean_stop, days_used = stopping(sequential)
        cover = float(sequential["covered"].mean())
        print(
            f"{recall_b:>8.2f}{truth:>6.2f} | {rate(sequential, 'B'):>9.3f}"
            f"{rate(sequential, 'A'):>6.3f}{mean_stop:>9.1f}{days_used:>10.1f}"
            f"{cover:>9.3f} | {rate(once, 'B'):>15.3f}"
        )
    print(
        f"(CS cover: true difference inside the confidence sequence at all {DAYS} looks, "
        f"target >= {COVERAGE_TARGET}; Fisher@30 stops on day {DAYS} by design)"
    )

    print("\nSensitivity of the sequential test")
    print(f"{'transactions an arm a day':<28}{'frauds/day':>11}{'false winners':>14}")
    for seed, traffic in enumerate((5_000, 50_000), start=30):
        counts = daily_counts(np.random.default_rng(seed), null_reps, RECALL_A, traffic)
        false_rate = rate(sequential_runs(counts, DEFAULT_MIXING_SD, 0.0))
        print(f"{traffic:<28,}{traffic * ONLINE_FRAUD_RATE:>11.1f}{false_rate:>14.3f}")
    small, large = min(RECALL_B), max(RECALL_B)
    print(
        f"\n{'mixing_sd':>9}{'false winners':>14}{f'power {small:.2f}':>12}"
        f"{f'stop day {small:.2f}':>15}{f'power {large:.2f}':>12}{f'stop day {large:.2f}':>15}"
    )
    alternatives = {
        recall_b: daily_counts(np.random.default_rng(40 + i), power_reps, recall_b)
        for i, recall_b in enumerate((small, large))
    }
    for mixing_sd in (0.05, DEFAULT_MIXING_SD, 0.2):
        row = f"{mixing_sd:>9.2f}{rate(sequential_runs(null_counts, mixing_sd, 0.0)):>14.3f}"
        for recall_b, counts in alternatives.items():
            runs = sequential_runs(counts, mixing_sd, recall_b - RECALL_A)
            row += f"{rate(runs, 'B'):>12.3f}{stopping(runs)[0]:>15.1f}"
        print(row)


# ------------------------------------------------------------------- power check


def trained_pair(simulator: TransactionSimulator, n_train: int) -> tuple[object, object]:
    """Logistic regression (A) and gradient boosting (B), calibrated, on one sample."""
    train = simulator.sample(n_train)
    return train_model(train, "logistic_regression"), train_model(train, "hist_gradient_boosting")


def scored(models: tuple[object, object], simulator: TransactionSimulator, n: int):
    """Fresh transactions: true labels, both models' scores and the true fraud probability."""
    frame = simulator.sample(n)
    scores = [predict_scores(model, frame) for model in models]
    return frame["Class"].to_numpy(), scores[0], scores[1], simulator.fraud_probability(frame)


def population_difference(scores_a, scores_b, q) -> float:
    """AUPRC of B minus A when each transaction is fraud with probability ``q``."""
    labels = np.r_[np.ones(q.size), np.zeros(q.size)]
    weights = np.r_[q, 1 - q]
    return float(
        average_precision_score(labels, np.r_[scores_b, scores_b], sample_weight=weights)
        - average_precision_score(labels, np.r_[scores_a, scores_a], sample_weight=weights)
    )


def power_section(reps: int, n_resamples: int) -> None:
    simulator = TransactionSimulator(seed=3, fraud_rate=POWER_FRAUD_RATE)
    models = trained_pair(simulator, 20_000)
    _, big_a, big_b, big_q = scored(models, simulator, 1_000_000)
    truth = population_difference(big_a, big_b, big_q)
    y, scores_a, scores_b, _ = scored(models, simulator, 40_000)
    observed = compare_scores(y, scores_a, scores_b, n_resamples=n_resamples, random_state=0)
    started = time.perf_counter()
    plan = analyse_power(y, scores_a, scores_b, observed, min_detectable_difference=truth)
    seconds = time.perf_counter() - started
    n = plan.required_transactions
    print(
        f"\nPower check: logistic (A) vs gradient boosting (B) at {POWER_FRAUD_RATE:.0%} fraud; "
        f"true AUPRC difference {truth:+.4f}"
    )
    print(
        f"observed sample: 40,000 transactions, {observed.n_fraud} frauds, difference "
        f"{observed.difference:+.4f}; analyse_power took {seconds:.1f} s"
    )
    if n is None:
        print("no recommended traffic: the difference cannot be expressed by these scores FAIL")
        return
    wins = 0
    for _ in range(reps):
        fresh_y, fresh_a, fresh_b, _ = scored(models, simulator, n)
        result = compare_scores(
            fresh_y, fresh_a, fresh_b, n_resamples=n_resamples, random_state=simulator.seed
        )
        wins += result.winner == "B"
    power = wins / reps
    se = np.sqrt(power * (1 - power) / reps)
    low, high = POWER_TARGET
    print(
        f"recommended traffic {n:,} (simulated power there {plan.power_at_required:.2f}); "
        f"{reps} fresh A/B tests from the simulator at it: power {power:.3f} +- {se:.3f}   "
        f"target [{low}, {high}] {verdict(low <= power <= high)}"
    )

    small = TransactionSimulator(seed=5, fraud_rate=KAGGLE_FRAUD_RATE)
    models = trained_pair(small, 100_000)
    y, scores_a, scores_b, _ = scored(models, small, 20_000)
    result = compare_scores(y, scores_a, scores_b, n_resamples=2_000, random_state=7)
    plan = analyse_power(y, scores_a, scores_b, result)
    print(
        f"\n20,000 transactions at {KAGGLE_FRAUD_RATE:.3%} fraud ({result.n_fraud} frauds): "
        f"winner {result.winner}, p {result.p_value:.3f}, difference {result.difference:+.3f} "
        f"[{result.ci_low:+.3f}, {result.ci_high:+.3f}]"
    )
    print(
        f"power at the observed difference {plan.power_observed:.2f}, at "
        f"{plan.min_detectable_difference} {plan.power_at_min_difference:.2f}; required "
        f"{plan.required_transactions} (power there {plan.power_at_required:.2f}); online "
        f"power {plan.online_power:.2f}, required {plan.online_required_transactions}"
    )
    print(f"verdict: {plan.verdict_note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--online-only", action="store_true", help="only the sequential online A/B section"
    )
    parser.add_argument("--power-only", action="store_true", help="only the power check")
    args = parser.parse_args()
    online_reps = (200, 100) if args.quick else (1_000, 500)
    power_settings = (40, 200) if args.quick else (400, 500)
    if args.power_only:
        power_section(*power_settings)
        return
    if args.online_only:
        sequential_section(*online_reps)
        return
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

    sequential_section(*online_reps)
    power_section(*power_settings)


if __name__ == "__main__":
    main()
