"""Traffic after training: the windows monitoring watches and the data retraining learns from.

:func:`load_windows` cuts a file into monitoring windows, or simulates them: Kaggle-schema
windows from the Kaggle simulator, or the year after a ``handbook`` world's training
period (:class:`~fraudkit.science.entities.HandbookWorld`), so monitoring watches the
customers and terminals the model learnt from. Behavioural features are computed window
by window, each entity's state carried forward (:meth:`Transactions.windows
<fraudkit.science.transactions.Transactions.windows>`). :func:`retraining_traffic`
simulates the drifted windows again, with fresh traffic after them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, SchemaError
from fraudkit.core.schema import DEFAULT_FRAUD_RATE
from fraudkit.science.data import load_transactions
from fraudkit.science.entities import (
    HANDBOOK_DAYS,
    HANDBOOK_FUTURE_DAYS,
    EntityDrift,
    EntitySimulator,
    HandbookWorld,
    simulated_days,
)
from fraudkit.science.features import FeatureSpec
from fraudkit.science.schema import PRESETS, TransactionSchema
from fraudkit.science.simulate import Drift, TransactionSimulator
from fraudkit.science.transactions import Transactions, load_or_simulate

__all__ = ["MonitoredTraffic", "load_windows", "retraining_traffic"]


@dataclass(frozen=True)
class MonitoredTraffic:
    """Monitoring windows (:func:`load_windows`): the data, its windows, which drifted."""

    data: Transactions
    windows: list[pd.DataFrame]
    drifted: list[bool]


def load_windows(
    data_path: str | Path | None,
    schema: str | Path | Mapping[str, Any] | TransactionSchema | None = None,
    *,
    n_windows: int,
    window_size: int,
    drift_scenario: str = "none",
    drift_severity: float = 1.0,
    drift_start: int = 0,
    fraud_rate: float = DEFAULT_FRAUD_RATE,
    seed: int = 0,
    features: FeatureSpec | Mapping[str, Any] | None = None,
    require_labels: bool = True,
    world: Mapping[str, Any] | None = None,
    history_days: float = 0.0,
) -> MonitoredTraffic:
    """Consecutive monitoring windows of a file, or simulated ones drifting from ``drift_start``.

    Behavioural features are computed window by window, each entity's state carried
    forward (:meth:`Transactions.windows`), as a service computing them day by day would.

    Parameters
    ----------
    data_path : str, pathlib.Path or None
        A file of recent transactions, cut into ``n_windows``; None simulates.
    schema : str, pathlib.Path, mapping or TransactionSchema, optional
        As :func:`load_or_simulate`; default ``kaggle``.
    n_windows, window_size : int
        Windows and rows per simulated window (about that many for ``handbook``, whose
        windows are whole days of the year after its world's training period).
    drift_scenario : str
        A :data:`~fraudkit.science.simulate.DRIFT_SCENARIOS` name for ``kaggle``;
        ``none`` or ``new_fraud_pattern`` (compromised cards switch to small amounts) for
        ``handbook``.
    drift_severity : float
        The drift's size (0 none, 1 the scenario's standard size).
    drift_start : int
        First drifted window, from 0.
    fraud_rate : float
        The Kaggle simulator's fraud prior.
    seed : int
        Seed of the simulation.
    features : FeatureSpec or mapping, optional
        The behavioural features, e.g. the monitored model's definitions.
    require_labels : bool
        Whether a file must hold labels (Kaggle schema; other schemas always do).
    history_days : float, default 0
        A file's first days, which feed the behavioural features' history and belong to
        no window. Without history the first windows' 7- and 30-day features see less of
        the past than the model's reference did, and drift tests see the difference.
    world : mapping, optional
        The ``handbook`` world to watch (:meth:`HandbookWorld.to_dict`, logged with the
        model as ``simulation``); by default a new one of ``seed``.

    Returns
    -------
    MonitoredTraffic

    Raises
    ------
    ConfigurationError
        A drift scenario the schema's simulator does not have.
    """
    if n_windows < 1:
        raise ConfigurationError(f"n_windows = {n_windows} must be at least 1")
    checked = TransactionSchema.load(schema if schema is not None else "kaggle")
    if data_path is not None:
        if checked == PRESETS["kaggle"]:
            recent = load_transactions(data_path, require_labels=require_labels)
            data = Transactions(recent, checked)
        else:
            data = load_or_simulate(
                data_path,
                checked,
                n_transactions=0,
                features=features,
                compute_features=False,
                require_both_classes=False,  # labels still to arrive are all 0 so far
            )
        windows = data.windows(n_windows, skip_days=history_days)
        return MonitoredTraffic(data, windows, [False] * n_windows)
    if checked == PRESETS["kaggle"]:
        drift = Drift.scenario(drift_scenario, drift_severity)
        simulator = TransactionSimulator(seed=seed, fraud_rate=fraud_rate)
        windows = simulator.sample_windows(
            n_windows, window_size, drift=drift, drift_start=drift_start
        )
        data = Transactions(pd.concat(windows), checked, simulator=simulator, drift=drift)
        return MonitoredTraffic(data, windows, [i >= drift_start for i in range(n_windows)])
    if checked != PRESETS["handbook"]:
        raise SchemaError(
            f"schema {checked.name or 'given'} cannot be simulated; pass data_path= with a "
            "file of recent transactions in it"
        )
    watched = _watched_world(world, window_size, seed)
    days = _window_days(watched, window_size, n_windows)
    data = _handbook_days(
        watched,
        HANDBOOK_DAYS + n_windows * days,
        _handbook_drift(drift_scenario, drift_severity, HANDBOOK_DAYS + drift_start * days),
        features,
    )
    windows = data.windows(n_windows, skip_days=HANDBOOK_DAYS, days=days, origin=watched.origin)
    drifted = [
        drift_scenario != "none" and drift_severity > 0 and i >= drift_start
        for i in range(n_windows)
    ]
    return MonitoredTraffic(data, windows, drifted)


def _watched_world(world: Mapping[str, Any] | None, window_size: int, seed: int) -> HandbookWorld:
    """The world a model was trained on, or a new one whose windows of ``window_size`` rows
    are weeks."""
    if world:
        return HandbookWorld.from_dict(world)
    return HandbookWorld(max(1, round(window_size / 7 * HANDBOOK_DAYS)), seed)


def _window_days(watched: HandbookWorld, window_size: int, n_windows: int) -> int:
    """Whole days of about ``window_size`` rows, as many as fit the year for ``n_windows``."""
    return max(1, min(round(window_size / watched.rows_per_day), HANDBOOK_FUTURE_DAYS // n_windows))


def _handbook_drift(scenario: str, severity: float, onset: int) -> EntityDrift | None:
    """The handbook world's drift of a scenario name, from day ``onset`` on."""
    if scenario not in ("none", "new_fraud_pattern"):
        raise ConfigurationError(
            f"drift scenario {scenario!r} is not simulated on the handbook schema; choose "
            "none or new_fraud_pattern"
        )
    if scenario == "none" or severity <= 0:
        return None
    # Severity 1 turns compromised cards' fivefold amounts into a fifth of the usual.
    multiplier = EntitySimulator.card_fraud_multiplier ** (1 - 2 * severity)
    return EntityDrift(new_scheme_day=onset, new_scheme_multiplier=multiplier)


def _handbook_days(
    watched: HandbookWorld,
    end: int,
    drift: EntityDrift | None,
    features: FeatureSpec | Mapping[str, Any] | None,
) -> Transactions:
    """The world's days up to ``end`` (training period included), features not computed."""
    if end > HANDBOOK_DAYS + HANDBOOK_FUTURE_DAYS:
        raise ConfigurationError(
            f"{end - HANDBOOK_DAYS} days of traffic do not fit in the year the handbook "
            "world simulates after its training period; pass fewer or smaller windows"
        )
    simulator = watched.simulator(drift)
    spec = features if isinstance(features, FeatureSpec) else FeatureSpec.from_dict(features or {})
    handbook = PRESETS["handbook"]
    frame = simulated_days(simulator, 0, end)
    return Transactions(
        frame, handbook, spec.for_schema(handbook), simulator, world=watched.to_dict()
    )


def retraining_traffic(
    data_path: str | Path | None,
    schema: str | Path | Mapping[str, Any] | TransactionSchema | None,
    settings: Mapping[str, Any],
    *,
    evaluation_size: int,
    features: FeatureSpec | Mapping[str, Any] | None = None,
    world: Mapping[str, Any] | None = None,
) -> Transactions:
    """Recent traffic to retrain on: a file, or the drifted windows monitoring saw and fresh
    traffic after them, simulated again.

    Parameters
    ----------
    data_path : str, pathlib.Path or None
        Recent labelled transactions; None simulates.
    schema : str, pathlib.Path, mapping, TransactionSchema or None
        As :func:`load_or_simulate`.
    settings : mapping
        The monitoring run's traffic: ``n_windows``, ``window_size``, ``drift_scenario``,
        ``drift_severity``, ``drift_start``, ``fraud_rate`` and ``seed``.
    evaluation_size : int
        Rows of fresh traffic after the drifted windows (simulated only).
    features : FeatureSpec or mapping, optional
        The behavioural features.
    world : mapping, optional
        The ``handbook`` world monitoring watched (the production model's ``simulation``).

    Returns
    -------
    Transactions
        The drifted windows and the fresh traffic after them, in time order, with their
        features; or the file's rows.
    """
    if data_path is not None:
        data = load_or_simulate(data_path, schema, n_transactions=0, features=features)
        if len(data.frame) <= evaluation_size:
            raise DataValidationError(
                f"{data_path} holds {len(data.frame):,} rows, and evaluation_size="
                f"{evaluation_size:,} of them would be the fresh window; pass a smaller "
                "evaluation_size or more recent transactions"
            )
        return data
    checked = TransactionSchema.load(schema if schema is not None else "kaggle")
    start = int(settings["drift_start"])
    if checked == PRESETS["kaggle"]:
        kaggle_drift = Drift.scenario(settings["drift_scenario"], settings["drift_severity"])
        simulator = TransactionSimulator(seed=settings["seed"], fraud_rate=settings["fraud_rate"])
        windows = simulator.sample_windows(
            settings["n_windows"], settings["window_size"], drift=kaggle_drift, drift_start=start
        )
        fresh = simulator.sample(evaluation_size, drift=kaggle_drift)
        recent = pd.concat([*windows[start:], fresh], ignore_index=True)
        return Transactions(recent, checked, simulator=simulator, drift=kaggle_drift)
    # The handbook's world is one simulation: the drifted windows monitoring saw, then the
    # days after them, as one stretch whose features carry the history forward.
    watched = _watched_world(world, settings["window_size"], settings["seed"])
    days = _window_days(watched, settings["window_size"], settings["n_windows"])
    monitored = HANDBOOK_DAYS + settings["n_windows"] * days
    fresh = math.ceil(evaluation_size / watched.rows_per_day)
    fresh = min(fresh, HANDBOOK_DAYS + HANDBOOK_FUTURE_DAYS - monitored)
    if fresh < 1:
        raise ConfigurationError(
            "monitoring's windows fill the year the handbook world simulates after its "
            "training period, leaving no day of fresh traffic; monitor fewer or smaller windows"
        )
    onset = HANDBOOK_DAYS + start * days
    drift = _handbook_drift(settings["drift_scenario"], settings["drift_severity"], onset)
    data = _handbook_days(watched, monitored + fresh, drift, features)
    (recent,) = data.windows(
        1, skip_days=onset, days=monitored + fresh - onset, origin=watched.origin
    )
    return replace(data, frame=recent)
