"""Simulated credit-card transactions with a known fraud probability.

The :class:`TransactionSimulator` draws transactions in the Kaggle/ULB ``creditcard.csv``
schema (:mod:`fraudkit.science.data`) from class-conditional densities that are known in closed
form (Gaussian mixtures over ``V1``..``V28`` times log-normal mixtures over ``Amount``),
so it can also return the exact posterior ``P(Class=1 | features)``: the Bayes-optimal
score every model is measured against (:func:`bayes_ceiling` puts it beside a model's
metrics). :class:`Drift` describes controlled changes of that distribution for monitoring
and retraining studies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, log_ndtr, logsumexp

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import (
    AMOUNT_COLUMN,
    DEFAULT_FRAUD_RATE,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    TIME_COLUMN,
    V_COLUMNS,
)
from fraudkit.science.metrics import evaluate

__all__ = [
    "DEFAULT_RATE_PER_SECOND",
    "DRIFT_SCENARIOS",
    "Drift",
    "TransactionSimulator",
    "bayes_ceiling",
]

# 284,807 transactions over 172,792 s in the ULB data set.
DEFAULT_RATE_PER_SECOND: float = 284_807 / 172_792
DRIFT_SCENARIOS: tuple[str, ...] = (
    "none",
    "covariate_shift",
    "amount_inflation",
    "fraud_rate_change",
    "new_fraud_pattern",
)


_SECONDS_PER_DAY = 86_400.0
# Relative transaction rate per hour of day (Time 0 = midnight); night traffic is about a
# tenth of daytime traffic, as in the ULB data.
_HOURLY_PROFILE = np.array(
    [0.45, 0.25, 0.16, 0.12, 0.12, 0.18, 0.35, 0.65, 0.95, 1.15, 1.25, 1.3,
     1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.35, 1.3, 1.2, 1.0, 0.75]
)  # fmt: skip
_HOURLY_PROFILE = _HOURLY_PROFILE / _HOURLY_PROFILE.mean()

# Standard deviations of V1..V28 in the ULB data: decreasing, as PCA output is.
_V_SCALES = np.array(
    [1.959, 1.651, 1.516, 1.416, 1.380, 1.332, 1.237, 1.194, 1.099, 1.089, 1.021, 0.999,
     0.995, 0.959, 0.915, 0.876, 0.849, 0.838, 0.814, 0.771, 0.735, 0.726, 0.624, 0.606,
     0.521, 0.482, 0.404, 0.330]
)  # fmt: skip
_V_INDEX = {name: i for i, name in enumerate(V_COLUMNS)}

# Each legit V feature is, independently, a scale mixture of a narrow core and a wide
# tail with unit variance in units of _V_SCALES: heavier tails than a Gaussian, like the
# real components.
_TAIL_WEIGHT = 0.1
_TAIL_SD = 1.8
_CORE_SD = math.sqrt((1.0 - _TAIL_WEIGHT * _TAIL_SD**2) / (1.0 - _TAIL_WEIGHT))

# Fraud direction in units of _V_SCALES, signs as in the ULB data; V14, V17, V12, V10,
# V4, V11 and V3 carry most of the signal.
_FRAUD_LOADINGS = {
    "V14": -1.0, "V17": -0.9, "V12": -0.8, "V10": -0.7, "V4": 0.6, "V11": 0.55, "V3": -0.5,
    "V16": -0.3, "V7": -0.25, "V2": 0.2, "V1": -0.15, "V9": -0.15, "V18": -0.15,
}  # fmt: skip


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def _check_fraud_rate(rate: float) -> None:
    _require(0.0 < rate < 1.0, f"fraud_rate = {rate} must lie strictly between 0 and 1")


@dataclass(frozen=True)
class _Pattern:
    """A fraud (or legit) cluster: its own mean/sd on some V features, legit elsewhere."""

    weight: float
    means: Mapping[str, float]  # in units of _V_SCALES
    sds: Mapping[str, float]  # in units of _V_SCALES; features absent here use the latent


def _along_loadings(weight: float, shift: float, sd: float, **overrides: float) -> _Pattern:
    means = {name: shift * loading for name, loading in _FRAUD_LOADINGS.items()}
    means.update(overrides)
    return _Pattern(weight, means, dict.fromkeys(means, sd))


# Three fraud clusters make fraud not linearly separable: a blatant one far along the
# fraud direction, a subtle one overlapping legit (it caps the achievable precision) and
# one on the far side of legit along V14, V12, V10 and V4.
_FRAUD_PATTERNS = (
    _along_loadings(0.67, 5.0, 1.8),
    _along_loadings(0.20, 1.0, 1.0),
    _along_loadings(0.13, 3.0, 1.0, V14=3.0, V12=2.5, V10=2.0, V4=-2.0),
)
# Concept drift: fraud that looks legit on every feature the old fraud used and sits far
# out on features that never carried signal before.
_NEW_FRAUD_MEANS = {"V5": 3.0, "V6": -3.0, "V8": 3.0, "V13": 3.0}
_NEW_FRAUD_PATTERN = _Pattern(1.0, _NEW_FRAUD_MEANS, dict.fromkeys(_NEW_FRAUD_MEANS, 1.0))

# Amount: log-normal mixtures (weight, median in currency units, sigma of log amount).
# Legit has a median near 22 and a mean near 90; fraud mixes many tiny card tests with
# some large purchases.
_LEGIT_AMOUNTS = ((0.25, 3.0, 1.0), (0.75, 40.0, 1.45))
_FRAUD_AMOUNTS = ((0.45, 1.0, 0.5), (0.55, 75.0, 1.5))
# Amounts are rounded to cents; the exact posterior integrates over the rounding interval.
_HALF_CENT = 0.005


@dataclass(frozen=True)
class Drift:
    """A change of the data-generating distribution.

    Parameters
    ----------
    covariate_shift : Mapping[str, float]
        V feature -> shift of its mean, in standard deviations of that feature, applied to
        both classes alike (so the fraud rate stays unchanged).
    amount_inflation : float
        Factor every ``Amount`` is multiplied by (before rounding to cents).
    fraud_rate : float or None
        New fraud prior ``P(Class=1)``; ``None`` keeps the simulator's rate.
    new_fraud_pattern : float
        Share (0..1) of fraud drawn from a new fraud cluster in a region of feature space
        the old fraud never occupied (concept drift).
    """

    covariate_shift: Mapping[str, float] = field(default_factory=dict)
    amount_inflation: float = 1.0
    fraud_rate: float | None = None
    new_fraud_pattern: float = 0.0

    def __post_init__(self) -> None:
        unknown = [name for name in self.covariate_shift if name not in _V_INDEX]
        if unknown:
            raise ConfigurationError(
                f"covariate_shift names unknown feature(s) {unknown}; use V1..V28 "
                "(use amount_inflation to change Amount)"
            )
        for name, shift in self.covariate_shift.items():
            _require(math.isfinite(shift), f"covariate_shift[{name!r}] = {shift} is not finite")
        _require(
            math.isfinite(self.amount_inflation) and self.amount_inflation > 0,
            f"amount_inflation = {self.amount_inflation} must be a positive finite number",
        )
        if self.fraud_rate is not None:
            _check_fraud_rate(self.fraud_rate)
        _require(
            0.0 <= self.new_fraud_pattern <= 1.0,
            f"new_fraud_pattern = {self.new_fraud_pattern} must lie in [0, 1]",
        )
        # A read-only copy, so the frozen drift cannot change behind the caller's back.
        object.__setattr__(
            self,
            "covariate_shift",
            MappingProxyType({k: float(v) for k, v in self.covariate_shift.items()}),
        )

    def __hash__(self) -> int:
        # The generated hash would fail on the mapping; hash its sorted items instead.
        shifts = tuple(sorted(self.covariate_shift.items()))
        return hash((shifts, self.amount_inflation, self.fraud_rate, self.new_fraud_pattern))

    @classmethod
    def scenario(cls, name: str, severity: float = 1.0) -> Drift:
        """Build a named drift scenario.

        Parameters
        ----------
        name : str
            One of :data:`DRIFT_SCENARIOS`: ``"none"``; ``"covariate_shift"`` (V1 +1 sd,
            V2 -0.75 sd, V14 -0.5 sd at severity 1); ``"amount_inflation"`` (amounts
            x1.5); ``"fraud_rate_change"`` (fraud rate 3x :data:`DEFAULT_FRAUD_RATE`);
            ``"new_fraud_pattern"`` (half of the fraud from a new cluster).
        severity : float
            Non-negative scale of the change; 0 means no change, effects grow linearly.

        Returns
        -------
        Drift
            The scenario's drift.

        Raises
        ------
        ConfigurationError
            If the name is unknown or the severity is negative or not finite.
        """
        _require(
            math.isfinite(severity) and severity >= 0,
            f"severity = {severity} must be a non-negative finite number",
        )
        if name == "none":
            return cls()
        if name == "covariate_shift":
            shifts = {"V1": 1.0, "V2": -0.75, "V14": -0.5}
            return cls(covariate_shift={k: v * severity for k, v in shifts.items()})
        if name == "amount_inflation":
            return cls(amount_inflation=1.0 + 0.5 * severity)
        if name == "fraud_rate_change":
            return cls(fraud_rate=min(DEFAULT_FRAUD_RATE * (1.0 + 2.0 * severity), 0.5))
        if name == "new_fraud_pattern":
            return cls(new_fraud_pattern=min(0.5 * severity, 1.0))
        raise ConfigurationError(
            f"unknown drift scenario {name!r}; choose one of {', '.join(DRIFT_SCENARIOS)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the drift as plain, JSON-serialisable data."""
        return {
            "covariate_shift": dict(self.covariate_shift),
            "amount_inflation": self.amount_inflation,
            "fraud_rate": self.fraud_rate,
            "new_fraud_pattern": self.new_fraud_pattern,
        }


_NO_DRIFT = Drift()


@dataclass(frozen=True)
class _ClassModel:
    """Closed-form density of one class: a V mixture times an Amount mixture.

    Each V cluster (pattern) is Gaussian on its own features and legit-like (the
    independent per-feature scale mixture) on all others, so features no pattern owns
    cancel exactly in the posterior and are never evaluated.
    """

    weights: np.ndarray  # (p,) pattern weights
    own: np.ndarray  # (p, 28) bool, features with the pattern's own Gaussian
    means: np.ndarray  # (p, 28)
    sds: np.ndarray  # (p, 28)
    shift: np.ndarray  # (28,) covariate shift added to every row
    amount_weights: np.ndarray  # (m,)
    amount_mus: np.ndarray  # (m,) mean of log amount
    amount_sigmas: np.ndarray  # (m,)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        tail = rng.random((n, 28)) < _TAIL_WEIGHT
        v = np.where(tail, _TAIL_SD, _CORE_SD) * _V_SCALES * rng.standard_normal((n, 28))
        pattern = rng.choice(len(self.weights), size=n, p=self.weights)
        gaussian = self.means[pattern] + self.sds[pattern] * rng.standard_normal((n, 28))
        v = np.where(self.own[pattern], gaussian, v) + self.shift
        component = rng.choice(len(self.amount_weights), size=n, p=self.amount_weights)
        log_amount = self.amount_mus[component] + self.amount_sigmas[component] * (
            rng.standard_normal(n)
        )
        return v, np.round(np.exp(log_amount), 2)

    def log_density_ratio(self, v: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Log density divided by the all-legit density of V (common to both classes)."""
        columns = np.flatnonzero(self.own.any(axis=0))
        v = v[:, columns] - self.shift[columns]
        legit_terms = _legit_log_density(v, _V_SCALES[columns])
        pattern_terms = np.column_stack(
            [
                (_log_gaussian(v[:, own], mean[own], sd[own]) - legit_terms[:, own]).sum(axis=1)
                for own, mean, sd in zip(
                    self.own[:, columns], self.means[:, columns], self.sds[:, columns], strict=True
                )
            ]
        )
        v_log = logsumexp(pattern_terms + np.log(self.weights), axis=1)
        # Probability mass of the cent interval each rounded amount stands for.
        with np.errstate(divide="ignore"):
            log_low = np.log(np.maximum(amount - _HALF_CENT, 0.0))[:, None]
        log_high = np.log(amount + _HALF_CENT)[:, None]
        a_terms = _log_normal_interval(
            (log_low - self.amount_mus) / self.amount_sigmas,
            (log_high - self.amount_mus) / self.amount_sigmas,
        )
        return v_log + logsumexp(a_terms + np.log(self.amount_weights), axis=1)


def _log_gaussian(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (x - mean) / sd
    return -0.5 * z * z - np.log(sd) - 0.5 * math.log(2 * math.pi)


def _legit_log_density(v: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Log density of each V value under the legit per-feature scale mixture."""
    half_square = 0.5 * np.square(v / scales)
    core = math.log((1.0 - _TAIL_WEIGHT) / _CORE_SD) - half_square / _CORE_SD**2
    tail = math.log(_TAIL_WEIGHT / _TAIL_SD) - half_square / _TAIL_SD**2
    return np.logaddexp(core, tail) - np.log(scales) - 0.5 * math.log(2 * math.pi)


def _log_normal_interval(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Return log(Phi(high) - Phi(low)) without cancellation in either tail."""
    # In the upper tail use the mirror image 1 - Phi(x) = Phi(-x), whose logs are accurate.
    upper = low > 0
    a = np.where(upper, -high, low)
    b = np.where(upper, -low, high)
    log_b = log_ndtr(b)
    with np.errstate(divide="ignore"):
        return log_b + np.log(-np.expm1(log_ndtr(a) - log_b))


def _class_model(
    patterns: list[tuple[_Pattern, float]],
    amounts: tuple[tuple[float, float, float], ...],
    drift: Drift,
) -> _ClassModel:
    own = np.zeros((len(patterns), 28), dtype=bool)
    means = np.zeros((len(patterns), 28))
    sds = np.ones((len(patterns), 28))
    for row, (pattern, _) in enumerate(patterns):
        for name, value in pattern.means.items():
            own[row, _V_INDEX[name]] = True
            means[row, _V_INDEX[name]] = value
            sds[row, _V_INDEX[name]] = pattern.sds[name]
    shift = np.zeros(28)
    for name, value in drift.covariate_shift.items():
        shift[_V_INDEX[name]] = value
    weights, medians, sigmas = (np.array(column) for column in zip(*amounts, strict=True))
    return _ClassModel(
        weights=np.array([weight for _, weight in patterns]),
        own=own,
        means=means * _V_SCALES,
        sds=sds * _V_SCALES,
        shift=shift * _V_SCALES,
        amount_weights=weights,
        amount_mus=np.log(medians * drift.amount_inflation),
        amount_sigmas=sigmas,
    )


def _class_models(drift: Drift) -> tuple[_ClassModel, _ClassModel]:
    legit = _class_model([(_Pattern(1.0, {}, {}), 1.0)], _LEGIT_AMOUNTS, drift)
    old_share = 1.0 - drift.new_fraud_pattern
    fraud_patterns = [(p, p.weight * old_share) for p in _FRAUD_PATTERNS if old_share > 0]
    if drift.new_fraud_pattern > 0:
        fraud_patterns.append((_NEW_FRAUD_PATTERN, drift.new_fraud_pattern))
    return legit, _class_model(fraud_patterns, _FRAUD_AMOUNTS, drift)


class TransactionSimulator:
    """Simulate card transactions in the Kaggle/ULB ``creditcard.csv`` schema.

    Rows arrive as a Poisson process with a daily cycle (Time 0 is midnight) at about
    1.65 transactions per second on average, like the ULB data. Features are drawn from
    closed-form class-conditional densities, so :meth:`fraud_probability` is exact.

    Parameters
    ----------
    seed : int
        Seed of every random draw. The same seed and the same sequence of calls give
        identical frames.
    fraud_rate : float
        Fraud prior ``P(Class=1)``; 0.172 % by default, as in the ULB data.
    rate_per_second : float
        Mean number of transactions per second over a day.
    daily_cycle : bool
        Whether the arrival rate follows a day/night cycle; otherwise it is constant.
    """

    def __init__(
        self,
        seed: int = 0,
        fraud_rate: float = DEFAULT_FRAUD_RATE,
        *,
        rate_per_second: float = DEFAULT_RATE_PER_SECOND,
        daily_cycle: bool = True,
    ) -> None:
        _require(
            isinstance(seed, int | np.integer) and seed >= 0,
            f"seed = {seed!r} must be a non-negative integer",
        )
        _check_fraud_rate(fraud_rate)
        _require(
            math.isfinite(rate_per_second) and rate_per_second > 0,
            f"rate_per_second = {rate_per_second} must be a positive finite number",
        )
        self.seed = int(seed)
        self.fraud_rate = float(fraud_rate)
        self.rate_per_second = float(rate_per_second)
        self.daily_cycle = daily_cycle
        profile = _HOURLY_PROFILE if daily_cycle else np.ones(24)
        # Cumulative expected arrivals at each hour boundary of one day: inverting this
        # piecewise-linear function turns a unit-rate Poisson process into arrival times.
        self._day_knots = np.arange(25) * 3600.0
        self._day_counts = np.concatenate([[0.0], np.cumsum(profile * 3600.0 * rate_per_second)])
        self._last_time: float | None = None
        self._calls = 0

    @property
    def last_time(self) -> float | None:
        """Time of the last transaction sampled so far (``None`` before the first)."""
        return self._last_time

    def sample(
        self, n: int, *, start_time: float | None = None, drift: Drift | None = None
    ) -> pd.DataFrame:
        """Draw ``n`` consecutive transactions.

        Parameters
        ----------
        n : int
            Number of rows, at least 1.
        start_time : float or None
            Time of the first row. By default the clock continues after the last row of
            the previous call (the very first call starts at 0).
        drift : Drift or None
            Distribution change to apply to these rows.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`KAGGLE_COLUMNS`; ``Class`` is int64, all others float64.

        Raises
        ------
        ConfigurationError
            If ``n`` is not a positive integer or ``start_time`` is negative.
        """
        _require(
            isinstance(n, int | np.integer) and n >= 1, f"n = {n!r} must be a positive integer"
        )
        drift = drift or _NO_DRIFT
        # One generator per call, keyed by the call number: each call is reproducible on
        # its own, whatever the sizes of the calls before it.
        rng = np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        times = self._arrival_times(rng, n, start_time)
        fraud_rate = self.fraud_rate if drift.fraud_rate is None else drift.fraud_rate
        labels = (rng.random(n) < fraud_rate).astype(np.int64)
        v = np.empty((n, 28))
        amount = np.empty(n)
        for label, model in enumerate(_class_models(drift)):
            rows = labels == label
            v[rows], amount[rows] = model.sample(rng, int(rows.sum()))
        frame = pd.DataFrame(v, columns=V_COLUMNS)
        frame.insert(0, TIME_COLUMN, times)
        frame[AMOUNT_COLUMN] = amount
        frame[LABEL_COLUMN] = labels
        self._last_time = float(times[-1])
        return frame

    def sample_windows(
        self,
        n_windows: int,
        window_size: int,
        *,
        drift: Drift | None = None,
        drift_start: int | None = None,
    ) -> list[pd.DataFrame]:
        """Draw consecutive windows of transactions, drifting from one window on.

        Parameters
        ----------
        n_windows : int
            Number of windows, at least 1.
        window_size : int
            Rows per window, at least 1.
        drift : Drift or None
            Drift applied to windows ``drift_start, drift_start + 1, ...``.
        drift_start : int or None
            Index of the first drifted window; ``None`` drifts every window.

        Returns
        -------
        list of pandas.DataFrame
            The windows in time order, each as returned by :meth:`sample`.
        """
        _require(
            isinstance(n_windows, int | np.integer) and n_windows >= 1,
            f"n_windows = {n_windows!r} must be a positive integer",
        )
        _require(
            isinstance(window_size, int | np.integer) and window_size >= 1,
            f"window_size = {window_size!r} must be a positive integer",
        )
        first_drifted = 0 if drift_start is None else drift_start
        _require(
            isinstance(first_drifted, int | np.integer) and first_drifted >= 0,
            f"drift_start = {drift_start!r} must be a non-negative integer or None",
        )
        return [
            self.sample(window_size, drift=drift if i >= first_drifted else None)
            for i in range(n_windows)
        ]

    def fraud_probability(self, df: pd.DataFrame, *, drift: Drift | None = None) -> np.ndarray:
        """Return the exact ``P(Class=1 | V1..V28, Amount)`` under this simulator.

        Scoring rows with it gives the Bayes-optimal ranking for the distribution they
        were drawn from, so its average precision is the ceiling for any model.

        Parameters
        ----------
        df : pandas.DataFrame
            Rows with at least the columns :data:`FEATURE_COLUMNS`.
        drift : Drift or None
            The drift the rows were drawn under.

        Returns
        -------
        numpy.ndarray
            Fraud probability per row, float64 in [0, 1].

        Raises
        ------
        DataValidationError
            If feature columns are missing.
        """
        missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"fraud_probability needs the feature columns V1..V28 and Amount; "
                f"missing {', '.join(missing)}"
            )
        drift = drift or _NO_DRIFT
        fraud_rate = self.fraud_rate if drift.fraud_rate is None else drift.fraud_rate
        v = df[V_COLUMNS].to_numpy(dtype=np.float64)
        amount = df[AMOUNT_COLUMN].to_numpy(dtype=np.float64)
        legit, fraud = _class_models(drift)
        log_odds = (
            math.log(fraud_rate)
            - math.log1p(-fraud_rate)
            + fraud.log_density_ratio(v, amount)
            - legit.log_density_ratio(v, amount)
        )
        return expit(log_odds)

    def _arrival_times(
        self, rng: np.random.Generator, n: int, start_time: float | None
    ) -> np.ndarray:
        gaps = rng.standard_exponential(n)
        if start_time is not None:
            _require(
                math.isfinite(start_time) and start_time >= 0,
                f"start_time = {start_time} must be a non-negative finite number",
            )
        if start_time is not None or self._last_time is None:
            # A fresh clock starts with a transaction, as Time 0 in creditcard.csv does.
            origin = 0.0 if start_time is None else float(start_time)
            gaps[0] = 0.0
        else:
            origin = self._last_time
        times = self._from_counts(self._to_counts(origin) + np.cumsum(gaps))
        times[0] = max(times[0], origin)  # guards against round-off below the origin
        return times

    def _to_counts(self, t: float) -> float:
        days, seconds = divmod(t, _SECONDS_PER_DAY)
        return days * self._day_counts[-1] + float(
            np.interp(seconds, self._day_knots, self._day_counts)
        )

    def _from_counts(self, counts: np.ndarray) -> np.ndarray:
        days, rest = np.divmod(counts, self._day_counts[-1])
        return days * _SECONDS_PER_DAY + np.interp(rest, self._day_counts, self._day_knots)


def bayes_ceiling(
    df: pd.DataFrame,
    simulator: TransactionSimulator | None = None,
    *,
    drift: Drift | None = None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, float] | None:
    """The Bayes-optimal AUPRC of labelled rows, to report beside a model's metrics.

    Scoring the rows with the simulator's exact fraud probability gives the best ranking
    any model can reach on them, so a model's average precision reads against this
    ceiling rather than against 1.

    Parameters
    ----------
    df : pandas.DataFrame
        Labelled transactions (``Class`` and the feature columns), e.g. a test period.
    simulator : TransactionSimulator or None
        The simulator the rows were drawn from; ``None`` (rows loaded from a file) means
        no ceiling is known.
    drift : Drift or None
        The drift the rows were drawn under, as passed to :meth:`TransactionSimulator.sample`.
    metrics : Mapping of str to float or None
        A model's metrics on the same rows (as :func:`fraudkit.science.metrics.evaluate` returns);
        when it holds ``average_precision``, the model's share of the ceiling is added.

    Returns
    -------
    dict of str to float or None
        ``None`` without a simulator; else ``bayes_average_precision`` and, with
        ``metrics``, ``share_of_bayes_auprc`` (the model's average precision divided by
        the ceiling). The ceiling is NaN when the rows hold a single class.

    Raises
    ------
    DataValidationError
        If ``Class`` or a feature column is missing.

    Examples
    --------
    >>> test_metrics |= bayes_ceiling(test, simulator, metrics=test_metrics) or {}  # doctest: +SKIP
    """
    if simulator is None:
        return None
    if LABEL_COLUMN not in df.columns:
        raise DataValidationError(
            f"bayes_ceiling needs the labels ({LABEL_COLUMN} column) of the rows it scores; "
            "pass labelled transactions, or skip the ceiling for unlabelled ones"
        )
    scores = simulator.fraud_probability(df, drift=drift)
    ceiling = evaluate(df[LABEL_COLUMN], scores)["average_precision"]
    result = {"bayes_average_precision": ceiling}
    if metrics is not None and "average_precision" in metrics:
        result["share_of_bayes_auprc"] = metrics["average_precision"] / ceiling
    return result
