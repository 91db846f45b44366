"""The notebooks' data: a file or a simulation, checked against its schema, with features.

:func:`load_or_simulate` is every notebook's first step. It returns :class:`Transactions`:
the frame, the :class:`~fraudkit.science.schema.TransactionSchema` it follows, the
behavioural feature definitions (:class:`~fraudkit.science.features.FeatureSpec`) and
the simulator that drew it, when it was simulated. The notebooks read the label, amount
and model inputs through it, so one narrative runs on Kaggle's ``creditcard.csv``, on the
entity simulator (the ``handbook`` preset) and on a team's own file.

- ``kaggle`` (the default): the file is checked as ``creditcard.csv``
  (:func:`~fraudkit.science.data.load_transactions`), or the Kaggle-schema simulator
  draws it; there are no behavioural features.
- ``handbook`` without a file: the entity simulator
  (:class:`~fraudkit.science.entities.EntitySimulator`) draws about ``n_transactions``.
- any schema with a file: the file is read and checked against it
  (:func:`~fraudkit.science.schema.read_transactions`).

Behavioural features are computed in one point-in-time pass over the whole frame
(:func:`~fraudkit.science.features.build_features`); :meth:`Transactions.windows` computes
them window by window instead, carrying each entity's state forward, as monitoring does.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, SchemaError
from fraudkit.core.schema import DEFAULT_FRAUD_RATE, FEATURE_COLUMNS
from fraudkit.science.data import DataSplit, load_transactions, time_split
from fraudkit.science.entities import (
    HANDBOOK_DAYS,
    EntitySimulator,
    HandbookWorld,
    simulated_days,
)
from fraudkit.science.features import FeatureSpec, FeatureState, build_features
from fraudkit.science.metrics import evaluate
from fraudkit.science.model_inputs import input_columns
from fraudkit.science.schema import NS_PER_DAY, PRESETS, TransactionSchema, read_transactions
from fraudkit.science.simulate import Drift, TransactionSimulator

__all__ = ["Transactions", "load_or_simulate"]


@dataclass(frozen=True)
class Transactions:
    """Checked transactions in time order, with what the notebooks need to read them.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows, in time order, with the behavioural features appended when ``spec`` is
        set and they were computed (see :func:`load_or_simulate`).
    schema : TransactionSchema
        The columns' roles.
    spec : FeatureSpec or None
        The behavioural features, entities filled in; None on the Kaggle schema.
    simulator : TransactionSimulator, EntitySimulator or None
        What drew the rows; None for a file. Its ``fraud_probability`` is the ceiling.
    notes : tuple of str
        What the checks changed (rows sorted into time order).
    drift : Drift or None
        The Kaggle simulator's drift the rows were drawn under, for the ceiling.
    world : dict or None
        The simulated world the rows come from (:meth:`HandbookWorld.to_dict`), logged
        with a model so that monitoring watches the same world; None otherwise.
    """

    frame: pd.DataFrame
    schema: TransactionSchema
    spec: FeatureSpec | None = None
    simulator: TransactionSimulator | EntitySimulator | None = None
    notes: tuple[str, ...] = ()
    drift: Drift | None = None
    world: dict[str, Any] | None = None

    @property
    def is_kaggle(self) -> bool:
        """Whether the rows follow Kaggle's ``creditcard.csv`` schema."""
        return self.schema == PRESETS["kaggle"]

    @property
    def label(self) -> str:
        """The label column."""
        return self.schema.label

    @property
    def amount(self) -> str:
        """The amount column."""
        return self.schema.amount

    @property
    def behaviour(self) -> list[str]:
        """The behavioural feature columns (none on the Kaggle schema)."""
        return self.spec.names() if self.spec is not None else []

    @property
    def input_columns(self) -> list[str]:
        """The columns a model trained on these rows reads: its signature's inputs."""
        if self.is_kaggle:
            return list(FEATURE_COLUMNS)
        return input_columns(self.schema, self.behaviour)

    @property
    def model_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~fraudkit.science.models.train_model` for these rows."""
        if self.is_kaggle:
            return {}
        return {"schema": self.schema, "behaviour": self.behaviour}

    def model_metadata(
        self, part: pd.DataFrame, training: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """What a model trained on these rows is logged with: an input example from
        ``part``, the schema, the feature definitions, the simulated world and, given
        ``training``, the training rows a logistic model's reasons are measured from
        (keyword arguments of :meth:`fraudkit.MlflowManager.log_model_with_metadata`)."""
        example = part[self.input_columns].head(5)
        return {
            "input_example": example,
            "schema": self.schema,
            "features": self.spec,
            "simulation": self.world,
            "training_data": training,
        }

    def require_schema(self, schema: TransactionSchema | None) -> None:
        """Refuse rows that do not follow ``schema``, a model's (None: Kaggle's).

        Raises
        ------
        SchemaError
            The schemas differ; the message names both.
        """
        wanted = schema if schema is not None else PRESETS["kaggle"]
        if wanted != self.schema:
            raise SchemaError(
                f"the model was trained on schema {wanted.name or wanted.to_dict()}, but these "
                f"transactions follow {self.schema.name or self.schema.to_dict()}; pass the "
                "schema the model was trained on"
            )

    def features_for(
        self, schema: TransactionSchema | None, spec: FeatureSpec | None
    ) -> pd.DataFrame:
        """The rows with the features a model reads: its schema and feature definitions.

        Parameters
        ----------
        schema, spec : TransactionSchema or None, FeatureSpec or None
            What the model was trained on (as
            :func:`fraudkit.tracking.model_packaging.read_definitions` reads them from a
            logged model); None for a Kaggle-schema model.

        Returns
        -------
        pandas.DataFrame
            :attr:`frame`, its behavioural features recomputed when ``spec`` differs.

        Raises
        ------
        SchemaError
            The model was trained on another schema than these rows follow.
        """
        self.require_schema(schema)
        if spec is None or self.is_kaggle:
            return self.frame
        spec = spec.for_schema(self.schema)
        if spec == self.spec and all(c in self.frame.columns for c in self.behaviour):
            return self.frame
        frame = self.frame.drop(columns=self.behaviour, errors="ignore")
        return pd.concat([frame, build_features(frame, self.schema, spec)], axis=1)

    def before(self, part: pd.DataFrame) -> Transactions:
        """The same data cut to the transactions before ``part``'s first one.

        For a choice that must not look at a period kept for reporting: prequential
        validation before the test period of :meth:`split`.

        Parameters
        ----------
        part : pandas.DataFrame
            Rows of this data (e.g. ``split().test``), in its schema.

        Returns
        -------
        Transactions
            The earlier rows, with everything else unchanged.

        Raises
        ------
        DataValidationError
            ``part`` is empty, or no transaction comes before it.
        """
        if part.empty:
            raise DataValidationError("part holds no transactions; pass a non-empty period")
        times = self.schema.timestamps(self.frame)
        earlier = times < self.schema.timestamps(part).min()
        if not earlier.any():
            raise DataValidationError(
                "no transaction comes before the period passed; pass a later period"
            )
        return replace(self, frame=self.frame[earlier])

    def split(self, **fractions: Any) -> DataSplit:
        """:func:`~fraudkit.science.data.time_split` of the rows (keywords as there)."""
        return time_split(self.frame, schema=None if self.is_kaggle else self.schema, **fractions)

    def windows(
        self,
        n_windows: int,
        *,
        skip_days: float = 0.0,
        days: float | None = None,
        origin: pd.Timestamp | None = None,
    ) -> list[pd.DataFrame]:
        """Cut the rows into ``n_windows`` consecutive windows, features computed window by
        window (:class:`~fraudkit.science.features.FeatureState`), as monitoring sees them.

        Parameters
        ----------
        n_windows : int
            How many windows.
        skip_days : float
            Rows in the first ``skip_days`` days feed the features' history but belong
            to no window (a warm-up).
        days : float, optional
            Each window's length in days, from the end of the warm-up; by default the
            windows hold near-equal numbers of rows and cover every row.
        origin : pandas.Timestamp, optional
            Where ``skip_days`` is counted from (a datetime time column); by default the
            first row's time.

        Returns
        -------
        list of pandas.DataFrame
            The windows, oldest first, with the behavioural features appended.
        """
        if n_windows < 1:
            raise ConfigurationError(f"n_windows = {n_windows} must be at least 1")
        frame = self.frame.drop(columns=self.behaviour, errors="ignore")
        times = self.schema.timestamps(frame)
        if np.any(np.diff(times) < 0):  # a Kaggle file is read as it is; rows sharing a
            order = np.argsort(times, kind="stable")  # time keep their order
            frame, times = frame.iloc[order], times[order]
        first = pd.Timestamp(origin).value if origin is not None else times[0] if len(times) else 0
        start = first + round(skip_days * NS_PER_DAY)
        if days is None:
            bounds = np.linspace(np.searchsorted(times, start), len(frame), n_windows + 1)
        else:
            edges = start + np.arange(n_windows + 1) * round(days * NS_PER_DAY)
            bounds = np.searchsorted(times, edges)
        bounds = bounds.astype(int)
        if np.any(np.diff(bounds) < 1):
            raise DataValidationError(
                f"{len(frame) - bounds[0]} rows (after the first {skip_days:g} days, which "
                f"only feed the features' history) cannot fill {n_windows} windows; pass "
                "fewer windows or more transactions"
            )
        windows = [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]
        if self.spec is None:
            return windows
        state = FeatureState(self.schema, self.spec)
        if bounds[0]:
            state.update(frame.iloc[: bounds[0]])
        return [pd.concat([w, state.update(w)], axis=1) for w in windows]

    def ceiling_scores(self, part: pd.DataFrame, *, drifted: bool = True) -> np.ndarray | None:
        """Each row's exact fraud probability (the ceiling), or None for a file."""
        if self.simulator is None:
            return None
        if isinstance(self.simulator, EntitySimulator):
            return self.simulator.fraud_probability(part)
        return self.simulator.fraud_probability(part, drift=self.drift if drifted else None)

    def ceiling(
        self,
        part: pd.DataFrame,
        metrics: Mapping[str, float] | None = None,
        *,
        drifted: bool = True,
    ) -> dict[str, float]:
        """The ceiling's AUPRC on ``part`` and a model's share of it; empty for a file.

        Parameters
        ----------
        part : pandas.DataFrame
            Labelled rows of this frame, e.g. a test period.
        metrics : mapping, optional
            A model's metrics on ``part``; with ``average_precision``, its share of the
            ceiling (``share_of_bayes_auprc``) is added.
        drifted : bool, default True
            Whether ``part`` was drawn under the Kaggle simulator's drift (windows before
            the drift's start were not).
        """
        scores = self.ceiling_scores(part, drifted=drifted)
        if scores is None:
            return {}
        ceiling = evaluate(part[self.label], scores)["average_precision"]
        result = {"bayes_average_precision": ceiling}
        if metrics is not None and "average_precision" in metrics:
            result["share_of_bayes_auprc"] = metrics["average_precision"] / ceiling
        return result


def load_or_simulate(
    data_path: str | Path | None,
    schema: str | Path | Mapping[str, Any] | TransactionSchema | None = None,
    *,
    n_transactions: int,
    fraud_rate: float = DEFAULT_FRAUD_RATE,
    seed: int = 0,
    features: FeatureSpec | Mapping[str, Any] | None = None,
    compute_features: bool = True,
    drift: Drift | None = None,
    require_both_classes: bool = True,
) -> Transactions:
    """Return labelled transactions from ``data_path``, or simulated ones when it is None.

    Parameters
    ----------
    data_path : str, pathlib.Path or None
        A CSV or Parquet file; None simulates.
    schema : str, pathlib.Path, mapping or TransactionSchema, optional
        A preset name (``kaggle``, ``handbook``), a YAML file or a schema; default
        ``kaggle``. Only ``kaggle`` and ``handbook`` can be simulated.
    n_transactions : int
        Rows to simulate (about that many for ``handbook``; ignored for a file).
    fraud_rate : float, default :data:`DEFAULT_FRAUD_RATE`
        Fraud prior of the Kaggle simulator (the handbook's follows from its scenarios).
    seed : int, default 0
        Seed of the simulator.
    features : FeatureSpec or mapping, optional
        The behavioural features (default :class:`FeatureSpec` on the schema's entities);
        ignored on the Kaggle schema.
    compute_features : bool, default True
        Append the features to the frame in one pass. False leaves them to
        :meth:`Transactions.windows` (monitoring's incremental path).
    drift : Drift, optional
        The Kaggle simulator's drift. A ``handbook`` world drifts in the year after its
        training period only (:func:`fraudkit.science.traffic.load_windows`).
    require_both_classes : bool, default True
        Whether a file must hold frauds and legitimate rows (training and evaluation
        need both; recent traffic whose labels have not arrived has none).

    Returns
    -------
    Transactions

    Raises
    ------
    SchemaError
        Unknown preset or bad schema file, or a simulation asked of a schema that cannot
        be simulated.
    DataValidationError
        The file fails its schema's checks (both classes are required).
    """
    checked = TransactionSchema.load(schema if schema is not None else "kaggle")
    if checked == PRESETS["kaggle"]:
        return _kaggle(data_path, n_transactions, fraud_rate, seed, drift, require_both_classes)
    if drift is not None:
        raise ConfigurationError(
            f"drift applies to the kaggle simulator, not to schema {checked.name or 'given'}; "
            "a handbook world drifts after its training period (load_windows)"
        )
    simulator, world = None, None
    if data_path is not None:
        read = read_transactions(data_path, checked)
        frame, notes = read.frame, read.notes
        if require_both_classes and frame[checked.label].nunique() < 2:
            raise DataValidationError(
                f"{data_path}: column {checked.label} holds a single class; training and "
                "evaluation need both frauds and legitimate transactions"
            )
    elif checked == PRESETS["handbook"]:
        world = HandbookWorld(n_transactions, seed)
        simulator = world.simulator()
        frame, notes = simulated_days(simulator, 0, HANDBOOK_DAYS), ()
    else:
        raise SchemaError(
            f"schema {checked.name or 'given'} cannot be simulated; pass data_path= with a "
            "file in it, or use the kaggle or handbook preset"
        )
    spec = features if isinstance(features, FeatureSpec) else FeatureSpec.from_dict(features or {})
    spec = spec.for_schema(checked)
    if compute_features:
        frame = pd.concat([frame, build_features(frame, checked, spec)], axis=1)
    described = world.to_dict() if world is not None else None
    return Transactions(frame, checked, spec, simulator, tuple(notes), world=described)


def _kaggle(
    data_path: str | Path | None,
    n_transactions: int,
    fraud_rate: float,
    seed: int,
    drift: Drift | None,
    both_classes: bool,
) -> Transactions:
    kaggle = PRESETS["kaggle"]
    if data_path is not None:
        frame = load_transactions(data_path, require_both_classes=both_classes)
        return Transactions(frame, kaggle)
    simulator = TransactionSimulator(seed=seed, fraud_rate=fraud_rate)
    frame = simulator.sample(n_transactions, drift=drift)
    return Transactions(frame, kaggle, simulator=simulator, drift=drift)
