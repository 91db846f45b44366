"""Monitoring windows and retraining alerts.

A monitoring window is a batch of recent transactions compared with the reference kept with
the model version: transactions the model never trained on (its validation and test
periods), with its scores and labels. Three signals come out of a window
(:func:`monitor_window`):

- data drift: every feature of the window against the reference (:mod:`fraudkit.science.drift`);
- prediction drift: the model's scores on the window against those on the reference;
- performance: a label-free estimate for every window (:mod:`fraudkit.science.estimation`), and
  realised metrics once labels have arrived, which then judge the window.

:func:`fraudkit.science.retraining_rules.evaluate_alerts` turns a window into alert rules
and a retraining recommendation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.isotonic import IsotonicRegression

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, SmallSampleWarning
from fraudkit.core.schema import AMOUNT_COLUMN, LABEL_COLUMN
from fraudkit.science.alerts import CardPrecision, card_precision_by_day, estimate_card_precision
from fraudkit.science.drift import (
    DriftReport,
    PredictionDriftResult,
    detect_drift,
    detect_prediction_drift,
)
from fraudkit.science.estimation import (
    bootstrap_calibrations,
    estimate_performance,
    reference_calibration,
)
from fraudkit.science.features import FeatureSpec
from fraudkit.science.metrics import evaluate, few_frauds_message
from fraudkit.science.model_inputs import drift_inputs
from fraudkit.science.models import predict_scores
from fraudkit.science.schema import PRESETS, TransactionSchema

__all__ = [
    "BEHAVIOUR_MIN_EFFECT",
    "WindowReport",
    "monitor_window",
    "monitor_windows",
]

# On a declared schema a feature drifts only when it also moved by this KS distance. An
# entity's features aggregate its history, so consecutive rows are not independent and a
# row-level test finds negligible shifts significant in windows of thousands of rows (on
# the handbook world, undrifted windows moved fraud-rate features by KS 0.02-0.05).
BEHAVIOUR_MIN_EFFECT = 0.1

# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, eq=False)
class WindowReport:
    """Everything monitoring learns about one window.

    Attributes
    ----------
    drift : DriftReport
        Feature drift against the reference.
    prediction_drift : PredictionDriftResult
        Score drift against the reference.
    estimate : dict
        The label-free estimate (:func:`estimate_performance`), always present, with its
        intervals and its ``reliable`` flag.
    realised : dict of str to float or None
        Realised metrics (:func:`fraudkit.science.metrics.evaluate`) once labels have arrived.
    warnings : tuple of str
        Sentences for the report: too few frauds to judge the window, or an unreliable
        estimate judging it.
    stretch_drift : PredictionDriftResult or None
        Score drift of the label-free stretch the window ends (its scores pooled with the
        earlier windows still without labels), when there was such a stretch.
    card_precision : CardPrecision or None
        Card Precision@k per day of the window at the alert budget, once labels arrived.
    estimated_card_precision : CardPrecision or None
        Its label-free estimate (:func:`~fraudkit.science.alerts.estimate_card_precision`),
        always present when :func:`monitor_window` made the report.
    """

    drift: DriftReport
    prediction_drift: PredictionDriftResult
    estimate: dict[str, Any]
    realised: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()
    stretch_drift: PredictionDriftResult | None = None
    card_precision: CardPrecision | None = None
    estimated_card_precision: CardPrecision | None = None

    @property
    def labels_used(self) -> bool:
        """Whether realised metrics judge the window (otherwise the estimate does)."""
        return self.realised is not None

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics that judge the window: realised when labels arrived, else estimated."""
        return self.realised if self.realised is not None else self.estimate

    def to_dict(self) -> dict[str, float]:
        """Flat numeric dict for ``log_metrics``: drift summaries, realised and estimated."""
        realised = {k: v for k, v in (self.realised or {}).items() if isinstance(v, int | float)}
        estimated = {k: v for k, v in self.estimate.items() if k.startswith("estimated_")}
        for budget in (self.card_precision, self.estimated_card_precision):
            estimated |= budget.metrics() if budget is not None else {}
        return {
            **self.drift.to_dict(),
            **self.prediction_drift.to_dict(),
            "labels_used": int(self.labels_used),
            **(
                {"stretch_prediction_drift": int(self.stretch_drift.drifted)}
                if self.stretch_drift is not None
                else {}
            ),
            "estimate_reliable": int(self.estimate["reliable"]),
            "n_warnings": len(self.warnings),
            **{k: self.estimate[k] for k in ("threshold", "n_transactions", "n_alerts")},
            **realised,
            **estimated,
        }


def _window_warnings(
    n_rows: int, estimate: Mapping[str, Any], realised: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """Warnings a window's judgement carries (few frauds also go out as SmallSampleWarning)."""
    found = []
    if realised is not None:
        few = few_frauds_message(int(realised["n_fraud"]), n_rows, "the window")
    else:
        expected = round(estimate["estimated_n_fraud"])
        few = few_frauds_message(expected, n_rows, "the window (frauds expected from its scores)")
    if few:
        warnings.warn(few, SmallSampleWarning, stacklevel=3)
        found.append(few)
    if realised is None and not estimate["reliable"]:
        found.append(
            f"the label-free estimate judging this window is unreliable: "
            f"{estimate['reliability_note']}"
        )
    return tuple(found)


def monitor_window(
    model: Any,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    threshold: float = 0.5,
    labels_available: bool = True,
    alpha: float = 0.05,
    reference_scores: ArrayLike | None = None,
    drift: DriftReport | None = None,
    base_rate: tuple[int, int] | None = None,
    earlier_scores: Sequence[ArrayLike] = (),
    schema: TransactionSchema | None = None,
    features: FeatureSpec | None = None,
    alert_budget_k: int = 100,
) -> WindowReport:
    """Check one window: feature drift, score drift and performance.

    Every window gets the label-free estimate (with intervals and a reliability flag);
    realised metrics join it when labels have arrived, and then judge the window. When the
    reference is labelled and holds at least :data:`fraudkit.science.metrics.MIN_FRAUDS` frauds,
    the estimate reads the window's scores through isotonic regression fitted on the
    reference's scores and labels (:func:`~fraudkit.science.estimation.reference_calibration`),
    and its intervals hold that map's uncertainty too
    (:func:`~fraudkit.science.estimation.bootstrap_calibrations`).

    Parameters
    ----------
    model : estimator
        A fitted model, scored through :func:`fraudkit.science.models.predict_scores`.
    reference : pandas.DataFrame
        Transactions the model never trained on, e.g. its test period, kept with the model
        version, labelled if possible (see :mod:`fraudkit.science.drift`).
    window : pandas.DataFrame
        The monitoring window.
    threshold : float, default 0.5
        The model's operating threshold.
    labels_available : bool, default True
        Whether the window's labels have arrived. Realised metrics need this *and* a
        ``Class`` column.
    alpha : float, default 0.05
        False-alarm rate of the data- and prediction-drift tests and of the fraud-count
        check of the estimate.
    reference_scores : array-like, optional
        The model's scores on ``reference`` (kept with the version), to avoid rescoring it.
    drift : DriftReport, optional
        :func:`detect_drift` of this window against this reference, when several models
        are monitored on the same window.
    base_rate : tuple of (int, int), optional
        ``(frauds, rows)`` of the model's labelled history, to which the mean-score test of
        :func:`~fraudkit.science.drift.detect_prediction_drift` and the reference map of
        :func:`~fraudkit.science.estimation.reference_calibration` are weighted; needs a labelled
        reference.
    earlier_scores : sequence of array-like, optional
        The model's scores on the earlier windows of the label-free stretch this window
        ends (oldest first; :func:`monitor_windows` passes them). When the window has no
        labels either, its scores pooled with these are tested against the reference
        too, and the estimate is unreliable when they drifted.
    schema, features : TransactionSchema and FeatureSpec, optional
        The model's schema and behavioural features when not Kaggle's: its label and
        amount columns are read, and the drift tests cover what the model reads
        (:func:`~fraudkit.science.model_inputs.drift_inputs`), categorical columns too,
        with a feature drifting only when it also moved by :data:`BEHAVIOUR_MIN_EFFECT`.
    alert_budget_k : int, default 100
        Cards investigators review a day: the window's Card Precision@k per day, realised
        with labels and estimated from the probabilities always
        (:mod:`fraudkit.science.alerts`). Without an entity in the schema, rows stand in
        for cards.

    Returns
    -------
    WindowReport

    Raises
    ------
    DataValidationError
        When ``reference_scores`` or ``drift`` does not belong to these frames, or the
        inputs fail the checks of the tests.

    Warns
    -----
    SmallSampleWarning
        When the window holds (or, without labels, its scores expect) fewer than
        :data:`fraudkit.science.metrics.MIN_FRAUDS` frauds; the message is on the report too.
    """
    label, amount_column = (
        (schema.label, schema.amount) if schema else (LABEL_COLUMN, AMOUNT_COLUMN)
    )
    if drift is None:
        numeric, categorical = drift_inputs(schema, features.names() if features else ())
        drift = detect_drift(
            reference,
            window,
            features=numeric,
            categorical=categorical,
            alpha=alpha,
            drop_missing=numeric is not None,  # behavioural features may be empty
            min_effect=None if numeric is None else BEHAVIOUR_MIN_EFFECT,
        )
    drift, reference_scores = _reference_inputs(
        model, reference, window, reference_scores=reference_scores, drift=drift
    )
    scores = predict_scores(model, window)
    reference_labels = reference[label] if label in reference.columns else None
    # One test of the window's scores, and of the label-free stretch's, against the reference.
    score_drift = partial(
        detect_prediction_drift,
        reference_scores,
        alpha=alpha,
        threshold=threshold,
        reference_labels=reference_labels,
        base_rate=base_rate,
    )
    prediction_drift = score_drift(scores)
    calibration, samples = _reference_maps(reference_scores, reference_labels, scores, base_rate)
    labels = window[label] if labels_available and label in window else None
    realised = None
    if labels is not None:
        amount = window[amount_column] if amount_column in window.columns else None
        realised = evaluate(labels, scores, threshold=threshold, amount=amount)
    stretch_drift = None
    if labels is None and len(earlier_scores):
        stretch = np.concatenate(
            [*(np.ravel(np.asarray(e, dtype=float)) for e in earlier_scores), scores]
        )
        stretch_drift = score_drift(stretch)
    probabilities = None if calibration is None else calibration.predict(scores)
    estimate = estimate_performance(
        scores,
        probabilities=probabilities,
        probability_samples=samples,
        threshold=threshold,
        drift=drift,
        prediction_drift=prediction_drift,
        labels=labels,
        alpha=alpha,
        stretch_drift=stretch_drift,
    )
    card_precision = _card_precisions(
        (schema or PRESETS["kaggle"]).review_keys(window),
        alert_budget_k,
        labels,
        scores,
        scores if probabilities is None else probabilities,
        samples,
    )
    # Called from here, so that its SmallSampleWarning points at the caller of monitor_window.
    notes = _window_warnings(len(window), estimate, realised)
    return WindowReport(
        drift, prediction_drift, estimate, realised, notes, stretch_drift, *card_precision
    )


def _card_precisions(
    review_keys: tuple[np.ndarray, np.ndarray | None],
    k: int,
    labels: pd.Series | None,
    scores: np.ndarray,
    probabilities: np.ndarray,
    samples: np.ndarray | None,
) -> tuple[CardPrecision | None, CardPrecision]:
    """A window's Card Precision@k per day: realised (with labels) and estimated."""
    days, cards = review_keys
    realised = None
    if labels is not None:
        realised = card_precision_by_day(labels, scores, days, cards, k=k)
    estimated = estimate_card_precision(
        probabilities, days, cards, k=k, scores=scores, probability_samples=samples
    )
    return realised, estimated


def _reference_inputs(
    model: Any,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    reference_scores: ArrayLike | None,
    drift: DriftReport,
) -> tuple[DriftReport, ArrayLike]:
    """The window's drift report, checked against the frames, and the model's scores on
    the reference, computed when not given.
    """
    if (drift.n_reference, drift.n_current) != (len(reference), len(window)):
        raise DataValidationError(
            f"drift compares {drift.n_reference:,} with {drift.n_current:,} rows, but the "
            f"reference has {len(reference):,} and the window {len(window):,}; pass the "
            "DriftReport of this window against this reference, or None"
        )
    if reference_scores is None:
        reference_scores = predict_scores(model, reference)
    elif np.size(reference_scores) != len(reference):
        raise DataValidationError(
            f"reference_scores has {np.size(reference_scores):,} values for "
            f"{len(reference):,} reference rows; pass the model's scores on this reference"
        )
    return drift, reference_scores


def _reference_maps(
    reference_scores: ArrayLike,
    reference_labels: pd.Series | None,
    scores: np.ndarray,
    base_rate: tuple[int, int] | None,
) -> tuple[IsotonicRegression | None, np.ndarray | None]:
    """The reference's score-to-probability map and the window's scores through its refits.

    Both are None without reference labels; the second is None when no bootstrap map could
    be fitted (see :func:`~fraudkit.science.estimation.bootstrap_calibrations`).
    """
    if reference_labels is None:
        return None, None
    calibration = reference_calibration(reference_scores, reference_labels, base_rate=base_rate)
    maps = bootstrap_calibrations(reference_scores, reference_labels, base_rate=base_rate)
    samples = np.stack([fitted.predict(scores) for fitted in maps]) if maps else None
    return calibration, samples


def monitor_windows(
    model: Any,
    reference: pd.DataFrame,
    windows: Sequence[pd.DataFrame],
    *,
    label_delay: int = 0,
    threshold: float = 0.5,
    alpha: float = 0.05,
    reference_scores: ArrayLike | None = None,
    base_rate: tuple[int, int] | None = None,
    schema: TransactionSchema | None = None,
    features: FeatureSpec | None = None,
    alert_budget_k: int = 100,
) -> list[WindowReport]:
    """Check consecutive windows whose newest ``label_delay`` have no labels yet.

    Each window goes through :func:`monitor_window`. The older windows are judged on
    realised metrics; the newest ``label_delay`` form the label-free stretch and are
    judged on estimates. A change the model cannot see, such as a new fraud pattern it
    scores as legitimate, lowers the expected fraud count of one 25,000-row window by
    about as much as Poisson noise moves it; while the change lasts, the evidence adds up
    over the stretch, so each label-free window's estimate is also checked against its
    scores pooled with those of the earlier label-free windows
    (``WindowReport.stretch_drift``).

    Parameters
    ----------
    model : estimator
        A fitted model, scored through :func:`fraudkit.science.models.predict_scores`.
    reference : pandas.DataFrame
        Transactions the model never trained on, kept with the model version.
    windows : sequence of pandas.DataFrame
        The windows, oldest first.
    label_delay : int, default 0
        How many of the newest windows have no labels yet (chargebacks arrive weeks late).
    threshold, alpha, reference_scores, base_rate, schema, features, alert_budget_k
        As for :func:`monitor_window`.

    Returns
    -------
    list of WindowReport
        One report per window, in order.

    Raises
    ------
    ConfigurationError
        When ``label_delay`` is negative or not an integer.
    """
    if not isinstance(label_delay, int | np.integer) or label_delay < 0:
        raise ConfigurationError(
            f"label_delay must be a whole number of windows >= 0, got {label_delay!r}"
        )
    if reference_scores is None:
        reference_scores = predict_scores(model, reference)
    first_label_free = len(windows) - label_delay
    reports, stretch = [], []
    for i, window in enumerate(windows):
        label_free = i >= first_label_free
        reports.append(
            monitor_window(
                model,
                reference,
                window,
                threshold=threshold,
                labels_available=not label_free,
                alpha=alpha,
                reference_scores=reference_scores,
                base_rate=base_rate,
                earlier_scores=stretch,
                schema=schema,
                features=features,
                alert_budget_k=alert_budget_k,
            )
        )
        if label_free:
            stretch.append(predict_scores(model, window))
    return reports
