"""Sequential (anytime-valid) test of recall in a traffic-split A/B test.

A fixed-horizon test, such as Fisher's exact test in
:func:`fraudkit.science.online.compare_online`, keeps false winners at ``alpha`` only when it is
run once, at a sample size fixed in advance. A team that looks every day and stops at the
first significant look runs one test a day and keeps the first success: over 30 daily
looks its rate of false winners is several times ``alpha``
(``benchmarks/bench_abtest.py`` measures it). The test here stays valid however often,
and whenever, one looks, so stopping at the first look that declares a winner is allowed.

Method: the normal-mixture sequential probability ratio test (mSPRT) of Robbins (1970),
as adapted to A/B tests by Johari, Koomen, Pekelis and Walsh (2017, "Peeking at A/B
tests") and used by Optimizely's Stats Engine. At each look the estimated difference
``recall_B - recall_A`` (standard error ``sqrt(V)``) is compared with zero through the
likelihood ratio of "the difference is drawn from N(0, mixing_sd²)" against "it is 0":

    LR = sqrt(V / (V + τ²)) * exp(τ² d² / (2 V (V + τ²))),   τ = mixing_sd.

Under the null the LR is (asymptotically) a non-negative martingale with mean 1, so by
Ville's inequality it exceeds ``1 / alpha`` at *any* look with probability at most
``alpha``. The always-valid p-value is the running minimum of ``1 / LR``; inverting the
same bound gives a confidence sequence, an interval that covers the true difference at
every look simultaneously with probability at least ``1 - alpha`` (its running
intersection is reported).

Outcome: each fraud is one Bernoulli trial, caught (flagged) or missed, and the test
compares recall, the metric that declares the fixed-horizon winner. The per-transaction
caught-fraud indicator would test the same thing under randomisation but wastes power:
its variance also carries the Poisson noise in how many frauds each arm happened to
receive, which inflates the variance of the recall difference by ``1 / (1 - recall)``
(2.5 to 4 times for recalls of 0.6 to 0.75). Legitimate transactions carry no
information about recall, so the stream the test runs on is the stream of frauds.

Assumptions: traffic is randomised between the arms, so each arm's frauds are a random
sample of the same fraud population; frauds are independent trials; the difference is
constant over the test; fraud labels used at a look are final (chargebacks arrive weeks
late, so a look should count only frauds whose label window has closed). The normal
approximation is asymptotic, so with few frauds the guarantee is approximate; the
benchmark finds the test conservative (1 to 1.5 % false winners for ``alpha=0.05`` over
30 daily looks) from 9 to 86 frauds an arm a day.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import LABEL_COLUMN
from fraudkit.science.metrics import prefix_errors, validate_labels_and_scores

__all__ = [
    "DEFAULT_MIXING_SD",
    "FLAGGED_COLUMN",
    "SequentialABTest",
    "SequentialLook",
    "read_outcomes",
]

FLAGGED_COLUMN = "flagged"
# Recall differences of fraud models that matter in practice run from a few points to
# about 15; a mixing standard deviation of 0.1 puts the test's sensitivity there. The
# benchmark shows power and stopping time change little between 0.05 and 0.2.
DEFAULT_MIXING_SD = 0.1


@dataclass(frozen=True)
class SequentialLook:
    """State of a sequential A/B test after one look (all counts are cumulative).

    Attributes
    ----------
    look : int
        Number of the look, from 1.
    n_fraud_a, n_fraud_b : int
        Frauds each arm has served so far.
    caught_a, caught_b : int
        Of these, frauds the arm flagged.
    recall_a, recall_b : float
        Caught / frauds per arm; NaN while the arm has seen no fraud.
    difference : float
        ``recall_b - recall_a`` (NaN while an arm has seen no fraud).
    standard_error : float
        Standard error of ``difference`` used by the test (NaN while undefined).
    likelihood_ratio : float
        The mixture likelihood ratio at this look, the test statistic; it exceeds
        ``1 / alpha`` at some look with probability at most ``alpha`` under the null.
    p_value : float
        Always-valid p-value: the running minimum of ``1 / likelihood_ratio``, capped at 1.
    ci_low, ci_high : float
        Confidence sequence for ``recall_b - recall_a``: the running intersection of the
        intervals of every look so far, within [-1, 1]. ``ci_low > ci_high`` (empty) can
        only occur when the data contradict a constant difference.
    stop : bool
        ``p_value < alpha``: the test may stop here with ``winner``. Once true it stays true.
    winner : str or None
        "A" or "B" once ``stop`` (the arm the whole confidence sequence favours), else None.
    """

    look: int
    n_fraud_a: int
    n_fraud_b: int
    caught_a: int
    caught_b: int
    recall_a: float
    recall_b: float
    difference: float
    standard_error: float
    likelihood_ratio: float
    p_value: float
    ci_low: float
    ci_high: float
    stop: bool
    winner: str | None

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values."""
        return asdict(self)


def read_outcomes(outcomes: pd.DataFrame, name: str = "outcomes") -> tuple[np.ndarray, np.ndarray]:
    """Validated fraud and alert indicators of one arm's outcome frame.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        One row per transaction served by the arm, with ``Class`` (0/1) and ``flagged``
        (the arm's decision, bool or 0/1); other columns are ignored.
    name : str, default "outcomes"
        Name of the argument, used in error messages.

    Returns
    -------
    tuple of numpy.ndarray of bool
        ``fraud`` and ``flagged``, one entry per row.

    Raises
    ------
    DataValidationError
        When ``outcomes`` is not a frame, lacks a column, is empty, or holds a label other
        than 0/1 or a decision other than True/False.
    """
    if not isinstance(outcomes, pd.DataFrame):
        raise DataValidationError(f"{name} must be a DataFrame, got {type(outcomes).__name__}")
    missing = [column for column in (LABEL_COLUMN, FLAGGED_COLUMN) if column not in outcomes]
    if missing:
        raise DataValidationError(
            f"{name} lacks columns {missing}; it needs {LABEL_COLUMN!r} (the label) and "
            f"{FLAGGED_COLUMN!r} (the arm's decision) per transaction"
        )
    with prefix_errors(name):
        y, flagged = validate_labels_and_scores(outcomes[LABEL_COLUMN], outcomes[FLAGGED_COLUMN])
    if not np.isin(flagged, (0, 1)).all():
        raise DataValidationError(f"{name}: {FLAGGED_COLUMN} must hold only True/False or 1/0")
    return y == 1, flagged == 1


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise DataValidationError(f"{name} must be a non-negative integer count, got {value!r}")
    return int(value)


class SequentialABTest:
    """Anytime-valid comparison of recall between two arms, fed one look at a time.

    Call :meth:`update` (outcome frames) or :meth:`update_counts` (counts) with the data
    that arrived since the previous look, e.g. once a day; each call returns the
    :class:`SequentialLook` so far. Stop at the first look whose ``stop`` is true and
    report its ``winner``: the probability that identical arms ever produce a winner, over
    any number of looks, is at most ``alpha``. If ``stop`` never becomes true the test
    found no difference it can vouch for (there is no futility stop).

    Parameters
    ----------
    alpha : float, default 0.05
        Bound on the probability of ever declaring a winner between identical arms; the
        confidence sequence covers the true difference at all looks with probability
        at least ``1 - alpha``.
    mixing_sd : float, default 0.1
        Standard deviation τ of the normal mixture over the recall difference, in recall
        units (0.1 = 10 points). The test is most sensitive when the standard error of the
        difference is about ``mixing_sd / 3``; a larger value stops sooner on large
        differences and later on small ones. Must lie in (0, 1].

    Raises
    ------
    ConfigurationError
        When ``alpha`` is not in (0, 1) or ``mixing_sd`` not in (0, 1].

    Examples
    --------
    >>> test = SequentialABTest(alpha=0.05)
    >>> for day_a, day_b in daily_outcomes:  # doctest: +SKIP
    ...     look = test.update(day_a, day_b)
    ...     if look.stop:
    ...         break
    """

    def __init__(self, *, alpha: float = 0.05, mixing_sd: float = DEFAULT_MIXING_SD) -> None:
        if not (_real(alpha) and 0 < alpha < 1):
            raise ConfigurationError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
        if not (_real(mixing_sd) and 0 < mixing_sd <= 1):
            raise ConfigurationError(
                f"mixing_sd must lie in (0, 1] (a recall difference, e.g. 0.1 for 10 points), "
                f"got {mixing_sd!r}; pass about the size of difference you want to detect"
            )
        self.alpha = float(alpha)
        self.mixing_sd = float(mixing_sd)
        self._looks: list[SequentialLook] = []

    @property
    def looks(self) -> tuple[SequentialLook, ...]:
        """Every look so far, oldest first."""
        return tuple(self._looks)

    @property
    def stopped(self) -> bool:
        """Whether some look has declared a winner."""
        return bool(self._looks) and self._looks[-1].stop

    @property
    def winner(self) -> str | None:
        """The declared winner ("A" or "B"), or None while the test runs."""
        return self._looks[-1].winner if self._looks else None

    def history(self) -> pd.DataFrame:
        """One row per look, columns as :class:`SequentialLook`."""
        columns = list(SequentialLook.__dataclass_fields__)
        return pd.DataFrame([look.to_dict() for look in self._looks], columns=columns)

    def update(self, outcomes_a: pd.DataFrame, outcomes_b: pd.DataFrame) -> SequentialLook:
        """Add the transactions each arm served since the last look.

        Parameters
        ----------
        outcomes_a, outcomes_b : pandas.DataFrame
            New rows of each arm, with ``Class`` (0/1) and ``flagged`` (bool or 0/1). Only
            labelled frauds count, so a day without fraud in an arm is fine.

        Returns
        -------
        SequentialLook
            The test after this look.

        Raises
        ------
        DataValidationError
            As :func:`read_outcomes`.
        """
        counts = []
        for name, outcomes in (("outcomes_a", outcomes_a), ("outcomes_b", outcomes_b)):
            fraud, flagged = read_outcomes(outcomes, name)
            counts += [int(fraud.sum()), int((fraud & flagged).sum())]
        return self.update_counts(*counts)

    def update_counts(
        self, n_fraud_a: int, caught_a: int, n_fraud_b: int, caught_b: int
    ) -> SequentialLook:
        """Add counts of new frauds and of new caught frauds per arm since the last look.

        Parameters
        ----------
        n_fraud_a, n_fraud_b : int
            Frauds each arm served since the previous look (not cumulative).
        caught_a, caught_b : int
            Of these, frauds the arm flagged.

        Returns
        -------
        SequentialLook
            The test after this look, on the cumulative counts.

        Raises
        ------
        DataValidationError
            When a count is not a non-negative integer or more frauds are caught than seen.
        """
        new = {
            "n_fraud_a": n_fraud_a,
            "caught_a": caught_a,
            "n_fraud_b": n_fraud_b,
            "caught_b": caught_b,
        }
        new = {name: _count(value, name) for name, value in new.items()}
        for arm in "ab":
            if new[f"caught_{arm}"] > new[f"n_fraud_{arm}"]:
                raise DataValidationError(
                    f"caught_{arm}={new[f'caught_{arm}']} exceeds n_fraud_{arm}="
                    f"{new[f'n_fraud_{arm}']}; pass the frauds seen and, of those, the "
                    "frauds flagged"
                )
        last = self._looks[-1] if self._looks else None
        total = {name: value + (getattr(last, name) if last else 0) for name, value in new.items()}
        look = self._look(len(self._looks) + 1, last, **total)
        self._looks.append(look)
        return look

    def _look(
        self,
        number: int,
        last: SequentialLook | None,
        *,
        n_fraud_a: int,
        caught_a: int,
        n_fraud_b: int,
        caught_b: int,
    ) -> SequentialLook:
        p_value, ci_low, ci_high = (last.p_value, last.ci_low, last.ci_high) if last else (1, -1, 1)
        recall_a = caught_a / n_fraud_a if n_fraud_a else math.nan
        recall_b = caught_b / n_fraud_b if n_fraud_b else math.nan
        difference = recall_b - recall_a
        standard_error, likelihood_ratio = math.nan, 1.0
        if n_fraud_a and n_fraud_b:
            variance = _variance(caught_a, n_fraud_a) + _variance(caught_b, n_fraud_b)
            standard_error = math.sqrt(variance)
            log_ratio, half_width = _mixture(difference, variance, self.mixing_sd**2, self.alpha)
            likelihood_ratio = math.exp(min(log_ratio, 700.0))  # beyond e**700 is inf anyway
            p_value = min(p_value, math.exp(-log_ratio))
            # Intersecting keeps the sequence consistent with the running-minimum p-value:
            # the interval excludes 0 exactly when p_value < alpha.
            ci_low = max(ci_low, difference - half_width)
            ci_high = min(ci_high, difference + half_width)
        stop = p_value < self.alpha
        winner = None
        if last and last.stop:
            winner = last.winner
        elif stop:
            # The first crossing decides: the interval then excludes 0 on the side of the
            # difference, and intersecting later intervals cannot move it to the other side.
            winner = "B" if difference > 0 else "A"
        return SequentialLook(
            look=number,
            n_fraud_a=n_fraud_a,
            n_fraud_b=n_fraud_b,
            caught_a=caught_a,
            caught_b=caught_b,
            recall_a=recall_a,
            recall_b=recall_b,
            difference=difference,
            standard_error=standard_error,
            likelihood_ratio=likelihood_ratio,
            p_value=float(p_value),
            ci_low=float(ci_low),
            ci_high=float(ci_high),
            stop=stop,
            winner=winner,
        )


def _variance(caught: int, n_fraud: int) -> float:
    """Variance of one arm's recall, from the recall shrunk by one caught and one missed.

    The plain plug-in ``r (1 - r) / n`` is 0 when an arm has caught all or none of its
    first frauds, which would make the likelihood ratio infinite on a handful of cases.
    Shrinking toward 1/2 (Agresti and Caffo 2000) only ever increases the variance, so it
    keeps the test conservative and matters only while counts are small.
    """
    shrunk = (caught + 1) / (n_fraud + 2)
    return shrunk * (1 - shrunk) / n_fraud


def _mixture(difference: float, variance: float, tau2: float, alpha: float) -> tuple[float, float]:
    """Log mixture likelihood ratio at 0 and half-width of the ``1 - alpha`` interval.

    The half-width solves ``log LR(θ) = log(1 / alpha)`` for ``|difference - θ|``.
    """
    spread = variance + tau2
    log_ratio = 0.5 * math.log(variance / spread) + tau2 * difference**2 / (2 * variance * spread)
    half_width = math.sqrt(
        variance * spread / tau2 * (2 * math.log(1 / alpha) + math.log(spread / variance))
    )
    return log_ratio, half_width
