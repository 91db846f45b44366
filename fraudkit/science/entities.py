"""An entity simulator: customers, terminals and days of transactions, with its ceiling.

Written from the published description of the Fraud-Detection-Handbook's simulator
(chapter 3), with the hidden states made Markov so that the ceiling can be computed:

- **Customers** sit at a uniform point of a 100 x 100 square, with a mean amount
  ``U(5, 100)`` (standard deviation half of it) and ``U(0, 4)`` transactions a day. They
  use the terminals within ``radius``, uniformly.
- **Transactions**: each day a Poisson number per customer, at a time of day
  ``N(12 h, 20,000 s)`` (draws outside the day are dropped), an amount ``N(mean, sd)``
  (a negative draw is replaced by ``U(0, 2 mean)``).
- **Fraud**, three scenarios:

  1. an amount above ``amount_rule`` (220) is fraud;
  2. terminals are compromised: each day a clean terminal is compromised with
     probability ``terminal_compromise_rate`` and a compromised one recovers with
     probability ``1 / terminal_compromise_days``; every transaction at a compromised
     terminal is fraud;
  3. cards are compromised the same way (``card_compromise_rate``,
     ``card_compromise_days``); a compromised card's transactions are fraud with
     probability ``card_fraud_share``, and a fraud's amount is ``card_fraud_multiplier``
     times a usual one.

- **Labels arrive late** (:class:`ChargebackDelay`): a fraud's chargeback after a gamma
  delay (mean 7 days, at most 30), a legitimate transaction is confirmed when the
  chargeback window closes.
- **Drift** (:class:`EntityDrift`): seasonality of the transaction rate, and a new fraud
  scheme from a given day on (compromised cards spend *less*, card testing).

Defaults follow the Handbook's generator: 5,000 customers, 10,000 terminals, 183 days,
about 2 transactions per customer a day, near 1.8M transactions.

**The ceiling** (:meth:`EntitySimulator.fraud_probability`) is the probability that a
transaction is fraud given what is observable up to it. It is exact for scenarios 1 and
3, which are filtered forward over the card's own amounts (a hidden two-state Markov
chain, conditioned on the customer's spending profile). Scenario 2 shows through other
cards' labels; there it is an approximation, stated in :func:`terminal_compromise`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import gamma, norm

from fraudkit.core.exceptions import DataValidationError

__all__ = [
    "HANDBOOK_DAYS",
    "HANDBOOK_FUTURE_DAYS",
    "TX_PER_CUSTOMER_DAY",
    "ChargebackDelay",
    "EntityDrift",
    "EntitySimulator",
    "HandbookWorld",
    "simulated_days",
    "terminal_compromise",
]

_DAY = 86_400.0
_SCENARIO_COLUMN = "TX_FRAUD_SCENARIO"
# Transactions a handbook customer makes a day on average: the rate is uniform on [0, 4]
# and about 3 % of the normal draws of the time of day fall outside the day.
TX_PER_CUSTOMER_DAY = 1.94
# Terminals per customer in the handbook's generator (10,000 for 5,000).
_TERMINALS_PER_CUSTOMER = 2
# A handbook world: its training period (the handbook generator's 183 days), then a year of
# the same customers and terminals for monitoring and retraining to watch.
HANDBOOK_DAYS = 183
HANDBOOK_FUTURE_DAYS = 365


@dataclass(frozen=True)
class EntityDrift:
    """Changes over time of the entity simulator's world.

    Parameters
    ----------
    seasonal_amplitude : float
        The transaction rate is multiplied by ``1 + a sin(2 pi day / 365)``.
    new_scheme_day : int or None
        From this day on, compromised cards' frauds are small (``new_scheme_multiplier``
        times a usual amount) instead of large.
    new_scheme_multiplier : float
        The amount multiplier of the new scheme.
    """

    seasonal_amplitude: float = 0.0
    new_scheme_day: int | None = None
    new_scheme_multiplier: float = 0.2


@dataclass(frozen=True)
class ChargebackDelay:
    """When labels arrive: a fraud's chargeback after a gamma delay (shape 2, mean
    ``mean_days``) cut at ``window_days``; a legitimate label when the window closes."""

    mean_days: float = 7.0
    window_days: float = 30.0
    shape: float = 2.0

    def sample(self, rng: np.random.Generator, fraud: np.ndarray) -> np.ndarray:
        """Delays in days, one per transaction."""
        delay = np.minimum(
            rng.gamma(self.shape, self.mean_days / self.shape, len(fraud)), self.window_days
        )
        return np.where(fraud, delay, self.window_days)

    def survival(self, elapsed_days: np.ndarray) -> np.ndarray:
        """P(a fraud's label has not arrived ``elapsed_days`` after its transaction)."""
        tail = gamma.sf(elapsed_days, self.shape, scale=self.mean_days / self.shape)
        return np.where(elapsed_days < self.window_days, tail, 0.0)


@dataclass(frozen=True)
class EntitySimulator:
    """Simulate customers' transactions at terminals, three fraud scenarios and late labels.

    The frame it returns is in the ``handbook`` schema (the preset of that name), with the
    scenario of each fraud in ``TX_FRAUD_SCENARIO`` (0 for legitimate). The world is
    simulated once per simulator and kept: :meth:`sample` returns a copy of it, and
    :meth:`fraud_probability` reads its history and its ceiling from it.
    """

    n_customers: int = 5_000
    n_terminals: int = 10_000
    n_days: int = 183
    start: str = "2018-04-01"
    radius: float = 5.0
    amount_rule: float = 220.0
    terminal_compromise_rate: float = 2 / 10_000
    terminal_compromise_days: float = 28.0
    card_compromise_rate: float = 3 / 5_000
    card_compromise_days: float = 14.0
    card_fraud_share: float = 1 / 3
    card_fraud_multiplier: float = 5.0
    chargeback: ChargebackDelay = field(default_factory=ChargebackDelay)
    seed: int = 0
    drift: EntityDrift = field(default_factory=EntityDrift)

    def __post_init__(self) -> None:
        for name in ("n_customers", "n_terminals", "n_days"):
            if int(getattr(self, name)) < 1:
                raise DataValidationError(f"{name} = {getattr(self, name)} must be at least 1")
        for name in ("terminal_compromise_rate", "card_compromise_rate", "card_fraud_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise DataValidationError(f"{name} = {getattr(self, name)} must be in [0, 1]")

    def customers(self) -> pd.DataFrame:
        """Each customer's location, spending profile and terminals within ``radius``."""
        return self._customers.copy()

    @cached_property
    def _customers(self) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, 1])
        xy = rng.uniform(0, 100, (self.n_customers, 2))
        mean = rng.uniform(5, 100, self.n_customers)
        terminals = self.terminal_locations()
        # An object array holding one list of terminal indices per customer (the stubs
        # type the return as for a single point).
        found: Any = cKDTree(terminals).query_ball_point(xy, r=self.radius)
        return pd.DataFrame(
            {
                "x": xy[:, 0],
                "y": xy[:, 1],
                "mean_amount": mean,
                "sd_amount": mean / 2,
                "tx_per_day": rng.uniform(0, 4, self.n_customers),
                "terminals": [np.asarray(sorted(t), dtype=np.int64) for t in found],
            }
        )

    def terminal_locations(self) -> np.ndarray:
        """The terminals' points on the 100 x 100 square."""
        return np.random.default_rng([self.seed, 2]).uniform(0, 100, (self.n_terminals, 2))

    def sample(self) -> pd.DataFrame:
        """The whole simulation: every transaction, in time order, in the handbook schema."""
        return self._world.copy()

    @cached_property
    def _world(self) -> pd.DataFrame:
        customers = self._customers
        rng = np.random.default_rng([self.seed, 3])
        tx = self._transactions(customers, rng)
        card_state = _markov_days(
            rng, self.n_customers, self.n_days, self.card_compromise_rate, self.card_compromise_days
        )
        terminal_state = _markov_days(
            rng,
            self.n_terminals,
            self.n_days,
            self.terminal_compromise_rate,
            self.terminal_compromise_days,
        )
        day = tx["day"].to_numpy()
        card_fraud = card_state[tx["CUSTOMER_ID"].to_numpy(), day] & (
            rng.random(len(tx)) < self.card_fraud_share
        )
        multiplier = self._fraud_multiplier(day)
        amount = np.where(card_fraud, tx["TX_AMOUNT"] * multiplier, tx["TX_AMOUNT"])
        terminal_fraud = terminal_state[tx["TERMINAL_ID"].to_numpy(), day]
        scenario = np.select(
            [amount > self.amount_rule, terminal_fraud, card_fraud], [1, 2, 3], default=0
        )
        tx["TX_AMOUNT"] = np.round(amount, 2)
        tx["TX_FRAUD"] = (scenario > 0).astype(np.int64)
        tx[_SCENARIO_COLUMN] = scenario
        delays = self.chargeback.sample(rng, tx["TX_FRAUD"].to_numpy() == 1)
        tx["LABEL_DATETIME"] = tx["TX_DATETIME"] + pd.to_timedelta(
            np.round(delays * _DAY), unit="s"
        )
        return tx.drop(columns="day")

    def _transactions(self, customers: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        days = np.arange(self.n_days)
        season = 1 + self.drift.seasonal_amplitude * np.sin(2 * np.pi * days / 365)
        has_terminal = customers["terminals"].map(len).to_numpy() > 0
        rates = np.outer(customers["tx_per_day"].to_numpy() * has_terminal, season)
        counts = rng.poisson(rates)
        customer, day = np.nonzero(counts)
        repeats = counts[customer, day]
        customer, day = np.repeat(customer, repeats), np.repeat(day, repeats)
        second = rng.normal(_DAY / 2, 20_000, len(customer))
        inside = (second >= 0) & (second < _DAY)
        customer, day, second = customer[inside], day[inside], second[inside]
        mean = customers["mean_amount"].to_numpy()[customer]
        amount = rng.normal(mean, mean / 2)
        negative = amount < 0
        amount[negative] = rng.uniform(0, 2 * mean[negative])
        nearby = customers["terminals"].to_numpy()
        sizes = np.array([len(t) for t in nearby], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat = np.concatenate([*nearby, np.zeros(0, dtype=np.int64)])
        pick = np.floor(rng.random(len(customer)) * sizes[customer]).astype(np.int64)
        terminal = flat[offsets[customer] + pick]
        when = pd.Timestamp(self.start) + pd.to_timedelta(day * _DAY + np.floor(second), unit="s")
        order = np.lexsort((customer, when.to_numpy()))
        frame = pd.DataFrame(
            {
                "TRANSACTION_ID": np.arange(len(order)),
                "TX_DATETIME": when.to_numpy()[order],
                "CUSTOMER_ID": customer[order],
                "TERMINAL_ID": terminal[order],
                "TX_AMOUNT": amount[order],
                "day": day[order],
            }
        )
        return frame

    def _fraud_multiplier(self, day: np.ndarray) -> np.ndarray:
        """The amount multiplier of a compromised card's fraud on each day."""
        start = self.drift.new_scheme_day
        new = np.zeros(len(day), dtype=bool) if start is None else day >= start
        return np.where(new, self.drift.new_scheme_multiplier, self.card_fraud_multiplier)

    def fraud_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The ceiling: each transaction's fraud probability given what is observable.

        Scenario 1 is certain above ``amount_rule``. Card compromise is filtered forward
        over the card's own amounts, given the customer's spending profile (exact).
        Terminal compromise is :func:`terminal_compromise` (an approximation). The three
        are independent, so a transaction is legitimate only if each says so.

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows of :meth:`sample` (the whole simulation or any time slice of it); the
            history before a slice is read from the simulation itself.

        Returns
        -------
        numpy.ndarray
            One probability per row of ``frame``.
        """
        return self._ceiling.reindex(frame["TRANSACTION_ID"].to_numpy()).to_numpy()

    @cached_property
    def _ceiling(self) -> pd.Series:
        """Every transaction's ceiling, by ``TRANSACTION_ID``."""
        full = self._world
        card = self._card_fraud_probability(full)
        above_rule = full["TX_AMOUNT"].to_numpy() > self.amount_rule
        terminal = terminal_compromise(
            full,
            np.where(above_rule, 1.0, card),
            rate=self.terminal_compromise_rate,
            days=self.terminal_compromise_days,
            chargeback=self.chargeback,
        )
        ceiling = np.where(above_rule, 1.0, 1 - (1 - card) * (1 - terminal))
        return pd.Series(ceiling, index=full["TRANSACTION_ID"].to_numpy())

    def _card_fraud_probability(self, full: pd.DataFrame) -> np.ndarray:
        """P(this transaction is a card-compromise fraud | the card's amounts so far)."""
        customers = self._customers
        card = full["CUSTOMER_ID"].to_numpy()
        mean = customers["mean_amount"].to_numpy()[card]
        amount = full["TX_AMOUNT"].to_numpy()
        day = ((full["TX_DATETIME"] - pd.Timestamp(self.start)) // pd.Timedelta("1D")).to_numpy()
        multiplier = self._fraud_multiplier(day)
        legit = _amount_density(amount, mean)
        fraud = _amount_density(amount / multiplier, mean) / multiplier
        share = self.card_fraud_share
        return _filter_cards(
            card,
            day,
            legit,
            share * fraud,
            rate=self.card_compromise_rate,
            recovery=1 / self.card_compromise_days,
            share=share,
        )


def _markov_days(
    rng: np.random.Generator, n: int, days: int, rate: float, mean_days: float
) -> np.ndarray:
    """Daily two-state chains from the stationary law: ``state[i, day]``, True compromised."""
    recovery = 1 / mean_days
    stationary = rate / (rate + recovery) if rate + recovery > 0 else 0.0
    state = np.zeros((n, days), dtype=bool)
    state[:, 0] = rng.random(n) < stationary
    draws = rng.random((n, days))
    for d in range(1, days):
        stay = np.where(state[:, d - 1], draws[:, d] >= recovery, draws[:, d] < rate)
        state[:, d] = stay
    return state


def _amount_density(amount: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Density of a usual amount: N(mean, mean / 2), its negative draws made U(0, 2 mean)."""
    sd = mean / 2
    density = norm.pdf(amount, mean, sd)
    inside = (amount >= 0) & (amount <= 2 * mean)
    return density + np.where(inside, norm.cdf(0, mean, sd) / (2 * mean), 0.0)


def _filter_cards(
    card: np.ndarray,
    day: np.ndarray,
    legit: np.ndarray,
    fraud_part: np.ndarray,
    *,
    rate: float,
    recovery: float,
    share: float,
) -> np.ndarray:
    """Forward filter of every card's hidden state over its transactions, all cards at once.

    Returns, for each transaction, the probability that it is a compromised card's fraud
    given the card's amounts up to and including it.
    """
    stationary = rate / (rate + recovery)
    keep = 1 - rate - recovery
    n = len(card)
    order = np.lexsort((np.arange(n), card))  # by card, then time
    first = np.ones(n, dtype=bool)
    first[1:] = card[order][1:] != card[order][:-1]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
    # Every card's k-th transaction together: one vector step per k.
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(rank))]) if n else np.zeros(1, int)
    out = np.zeros(n)
    belief = np.full(int(card.max()) + 1 if n else 0, stationary)
    last_day = np.full(len(belief), -1)
    for low, high in itertools.pairwise(bounds):
        rows = by_rank[low:high]
        cards = card[rows]
        elapsed = np.where(last_day[cards] < 0, 0, day[rows] - last_day[cards])
        prior = stationary + (belief[cards] - stationary) * keep**elapsed
        compromised = prior * ((1 - share) * legit[rows] + fraud_part[rows])
        evidence = compromised + (1 - prior) * legit[rows]
        seen = evidence > 0
        out[rows] = np.divide(
            prior * fraud_part[rows], evidence, out=np.zeros(len(rows)), where=seen
        )
        belief[cards] = np.divide(compromised, evidence, out=prior.copy(), where=seen)
        last_day[cards] = day[rows]
    return out


def terminal_compromise(
    frame: pd.DataFrame,
    explained: np.ndarray,
    *,
    rate: float,
    days: float,
    chargeback: ChargebackDelay,
) -> np.ndarray:
    """P(the transaction's terminal is compromised), from its labels known at that time.

    The terminal's hidden state is a daily two-state Markov chain (compromised with
    probability ``rate`` a day, recovering after ``days`` on average), filtered forward
    over the terminal's transactions of the last chargeback window. What each of them
    says depends on where its label stands at the transaction being scored:

    - known legitimate: the terminal was clean that day (every transaction at a
      compromised terminal is fraud): likelihoods 0 (compromised) and ``1 - e`` (clean);
    - known fraud: compromised, or another scenario's fraud: 1 and ``e``;
    - not known yet: a fraud's chargeback may still come (``S(x)``, the chance that it
      takes longer than the ``x`` elapsed), a legitimate label comes when the window
      closes: ``S(x)`` and ``e S(x) + 1 - e``.

    ``e`` is the chance that another scenario makes that transaction a fraud
    (``explained``: 1 above the amount rule, else the card filter's probability). The
    filter starts from the last transaction before the window, whose label is known by
    then (or from the chain's stationary law). **The approximation:** ``e`` comes from the
    card filter alone, and the state before the window is read from one label. The Monte
    Carlo check of the tests and ``benchmarks/bench_entities.py`` report the gap.

    Parameters
    ----------
    frame : pandas.DataFrame
        The whole simulation, in time order (``TERMINAL_ID``, ``TX_DATETIME``,
        ``TX_FRAUD``, ``LABEL_DATETIME``).
    explained : numpy.ndarray
        Per row, the probability that another scenario makes it a fraud.
    rate, days : float
        The simulator's ``terminal_compromise_rate`` and ``terminal_compromise_days``.
    chargeback : ChargebackDelay
        The delay law of fraud labels, and the window after which every label is known.
    """
    recovery = 1 / days
    stationary = rate / (rate + recovery)
    keep = 1 - rate - recovery
    n = len(frame)
    day_ns = int(_DAY * 1e9)
    now = frame["TX_DATETIME"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    known = frame["LABEL_DATETIME"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    fraud = frame["TX_FRAUD"].to_numpy() == 1
    day = now // day_ns
    codes = frame["TERMINAL_ID"].to_numpy().astype(np.int64)
    order = np.argsort(codes, kind="stable")  # by terminal, then time
    keys = codes[order] * (n + 2) + order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    window_ns = int(chargeback.window_days * day_ns)
    low = np.searchsorted(now, now - window_ns, side="right")
    start = np.searchsorted(keys, codes * (n + 2) + low, side="left")
    # The belief on the day of the last transaction before the window (label known).
    before = np.maximum(start - 1, 0)
    has_before = (start > 0) & (codes[order[before]] == codes)
    first = order[before]
    belief = np.where(
        has_before,
        np.where(
            fraud[first], stationary / (stationary + (1 - stationary) * explained[first]), 0.0
        ),
        stationary,
    )
    last_day = np.where(has_before, day[first], day)
    counts = rank - start
    # Oldest window transaction first; at each lag, the queries whose window reaches it.
    queries = np.argsort(-counts, kind="stable")
    descending = -counts[queries]
    for lag in range(int(counts.max()) if n else 0, 0, -1):
        rows = queries[: np.searchsorted(descending, -lag, side="right")]
        j = order[rank[rows] - lag]
        prior = stationary + (belief[rows] - stationary) * keep ** (day[j] - last_day[rows])
        elapsed_days = (now[rows] - now[j]) / day_ns
        pending = chargeback.survival(elapsed_days)
        is_known = known[j] < now[rows]
        e = explained[j]
        if_compromised = np.where(is_known, fraud[j].astype(np.float64), pending)
        if_clean = np.where(is_known, np.where(fraud[j], e, 1 - e), e * pending + 1 - e)
        evidence = prior * if_compromised + (1 - prior) * if_clean
        belief[rows] = np.divide(prior * if_compromised, evidence, out=prior, where=evidence > 0)
        last_day[rows] = day[j]
    return stationary + (belief - stationary) * keep ** (day - last_day)


@dataclass(frozen=True)
class HandbookWorld:
    """One simulated world of the ``handbook`` preset, named by its size and seed.

    Its customers and terminals live :data:`HANDBOOK_DAYS` days of training period and a
    year after it. Training reads the training period; monitoring and retraining read the
    year after, so they watch the same customers and terminals the model learnt from.
    The world is logged with the model (``simulation`` in its definitions), so a later
    notebook simulates it again.

    Customers and terminals scale together (two terminals a customer, as the handbook's
    generator has), and the radius a customer shops within grows as the terminals thin
    out, so each customer has as many terminals in reach as in the handbook's world (about
    80) and the fraud scenarios keep their rates at any size.

    Parameters
    ----------
    n_transactions : int
        About how many transactions the training period holds.
    seed : int
        The simulation's seed.
    """

    n_transactions: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_transactions < 1:
            raise DataValidationError(f"n_transactions = {self.n_transactions} must be at least 1")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HandbookWorld:
        """The world :meth:`to_dict` described.

        Raises
        ------
        DataValidationError
            ``values`` does not describe a handbook world.
        """
        try:
            if values.get("preset") != "handbook":
                raise ValueError(f"preset {values.get('preset')!r}")
            return cls(int(values["n_transactions"]), int(values["seed"]))
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise DataValidationError(
                f"{values!r} does not describe a handbook world ({error}); it needs "
                "preset: handbook, n_transactions and seed, as HandbookWorld.to_dict writes"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """The world as plain, loggable values."""
        return {"preset": "handbook", "n_transactions": self.n_transactions, "seed": self.seed}

    @property
    def n_customers(self) -> int:
        """Customers: enough for ``n_transactions`` over the training period."""
        return max(1, math.ceil(self.n_transactions / (TX_PER_CUSTOMER_DAY * HANDBOOK_DAYS)))

    @property
    def origin(self) -> pd.Timestamp:
        """Midnight of the world's first day."""
        return pd.Timestamp(EntitySimulator.start)

    @property
    def rows_per_day(self) -> float:
        """Transactions a day, on average."""
        return self.n_customers * TX_PER_CUSTOMER_DAY

    def simulator(self, drift: EntityDrift | None = None) -> EntitySimulator:
        """The world's simulator, over the training period and the year after it.

        Parameters
        ----------
        drift : EntityDrift, optional
            A new fraud scheme from ``new_scheme_day`` on. It changes those days' amounts
            only, so every earlier day is the same with or without it.

        Raises
        ------
        DataValidationError
            A seasonal drift, which changes every day: the world would not be this one.
        """
        if drift is not None and drift.seasonal_amplitude:
            raise DataValidationError(
                "a seasonal drift changes every day of a handbook world, so it would not be "
                "the world named by n_transactions and seed; use EntitySimulator directly"
            )
        terminals = _TERMINALS_PER_CUSTOMER * self.n_customers
        handbook = EntitySimulator()
        return EntitySimulator(
            n_customers=self.n_customers,
            n_terminals=terminals,
            radius=handbook.radius * math.sqrt(handbook.n_terminals / terminals),
            n_days=HANDBOOK_DAYS + HANDBOOK_FUTURE_DAYS,
            seed=self.seed,
            drift=drift or EntityDrift(),
        )


def simulated_days(simulator: EntitySimulator, first: float, last: float) -> pd.DataFrame:
    """The simulated rows from day ``first`` up to, not including, day ``last`` (from the
    simulator's ``start``), with a fresh index."""
    frame = simulator.sample()
    day = (frame["TX_DATETIME"] - pd.Timestamp(simulator.start)) / pd.Timedelta(days=1)
    return frame[(day >= first) & (day < last)].reset_index(drop=True)
