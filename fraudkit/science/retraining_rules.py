"""Retraining rules: a monitored window's alerts and the run's verdict.

:func:`evaluate_alerts` applies the rules to one
:class:`~fraudkit.science.monitoring.WindowReport`; :func:`summarise_alerts` says, over the
windows of a run, whether to retrain and from which window the alerts started.

Performance rule
----------------
A drop of the chosen metric alerts when it exceeds ``tolerance`` relative to the baseline
*and* is significant: a one-sided z-test at ``alpha`` with the binomial standard error
``sqrt(m (1 - m) / n)`` on each side, ``n`` being the frauds a metric rests on (the alerts
for precision, the rows for accuracy; for average precision this is the interval of Boyd
et al., 2013). A baseline measured on 50 frauds is itself uncertain by about +-0.06.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.science.metrics import check_fraction
from fraudkit.science.monitoring import WindowReport

__all__ = ["MonitoringAlert", "evaluate_alerts", "summarise_alerts"]

# The count a metric is a share of, for its binomial standard error in the performance
# test: precision is a share of the alerts, accuracy of all rows; the rest (recall, average
# precision, ROC AUC, F1) rest on the frauds.
_EVIDENCE = {"fraud_precision": "n_alerts", "accuracy": "n_transactions"}


@dataclass(frozen=True)
class MonitoringAlert:
    """Alert rules evaluated on one window.

    Attributes
    ----------
    data_drift, prediction_drift : bool
        The window's feature / score drift tests fired.
    performance_drop : bool
        The metric fell significantly and more than ``tolerance`` below the baseline, or
        the registry's degradation check reported a degradation.
    rules_fired : tuple of str
        Names of the rules that fired, among ``data_drift``, ``prediction_drift``,
        ``performance_drop`` and ``registry_degradation``.
    retraining_recommended : bool
        Performance dropped, or data and predictions drifted together.
    details : dict
        Numbers behind the decision (metric values, relative drop, drifted features).
    """

    data_drift: bool
    prediction_drift: bool
    performance_drop: bool
    rules_fired: tuple[str, ...]
    retraining_recommended: bool
    details: dict[str, Any]

    def to_dict(self) -> dict[str, float]:
        """Flat numeric dict (0/1 flags) for ``log_metrics``."""
        return {
            "alert_data_drift": int(self.data_drift),
            "alert_prediction_drift": int(self.prediction_drift),
            "alert_performance_drop": int(self.performance_drop),
            "retraining_recommended": int(self.retraining_recommended),
        }


def _evidence(metrics: Mapping[str, Any], metric: str, source: str) -> tuple[float, float]:
    """``metric`` (or the label-free ``estimated_<metric>``) and the count it rests on."""
    for prefix in ("", "estimated_"):
        if prefix + metric in metrics:
            count = _EVIDENCE.get(metric, f"{prefix}n_fraud")
            if count not in metrics:
                raise DataValidationError(
                    f"the {source} metrics lack {count!r}, the count that {metric} rests on "
                    "and the performance test weighs it by; pass the whole result of "
                    "evaluate() or estimate_performance()"
                )
            return float(metrics[prefix + metric]), float(metrics[count])
    raise ConfigurationError(
        f"metric {metric!r} is not among the {source} metrics {sorted(metrics)}; "
        "pass one of those names (without the estimated_ prefix)"
    )


def _performance_rule(
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any],
    metric: str,
    tolerance: float,
    alpha: float,
) -> tuple[bool, dict[str, Any]]:
    """Whether ``metric`` dropped more than ``tolerance`` and significantly (module notes)."""
    current, current_n = _evidence(metrics, metric, "window")
    baseline, baseline_n = _evidence(baseline_metrics, metric, "baseline")
    if not baseline > 0:
        raise DataValidationError(
            f"baseline {metric} is {baseline!r}; a relative drop needs a positive baseline, "
            "so pass the metrics of a model that worked"
        )
    variance = sum(
        value * (1 - value) / n if n > 0 else np.inf
        for value, n in ((baseline, baseline_n), (current, current_n))
    )
    # A window without fraud has no AP/AUC (NaN): no evidence either way, so no alert.
    z = (baseline - current) / np.sqrt(variance) if variance > 0 else np.nan
    p_value = float(stats.norm.sf(z)) if not np.isnan(z) else np.nan
    relative_drop = (baseline - current) / baseline
    return bool(relative_drop > tolerance and p_value <= alpha), {
        "metric": metric,
        "baseline_value": baseline,
        "window_value": current,
        "relative_drop": relative_drop,
        "tolerance": tolerance,
        "drop_p_value": p_value,
        "baseline_n": baseline_n,
        "window_n": current_n,
    }


def evaluate_alerts(
    window_report: WindowReport,
    *,
    baseline_metrics: Mapping[str, Any] | None = None,
    metric: str = "average_precision",
    tolerance: float = 0.1,
    alpha: float = 0.05,
    degradation: Any | None = None,
) -> MonitoringAlert:
    """Apply the alert rules to one window.

    Rules: ``data_drift`` (the dataset drift test fired), ``prediction_drift`` (the score
    drift test fired), ``performance_drop`` (``metric`` fell by more than ``tolerance``
    relative to ``baseline_metrics``, and significantly so given the frauds both rest on:
    see the module notes) and ``registry_degradation`` (``degradation.degraded`` is
    true). Retraining is recommended when performance dropped by either rule, or when data
    drift and prediction drift fired together: drift that moves the scores as well is drift
    the model is sensitive to.

    Parameters
    ----------
    window_report : WindowReport
        Result of :func:`monitor_window`.
    baseline_metrics : mapping, optional
        Metrics of the model at acceptance: its test-set :func:`evaluate` result, with the
        counts (``n_fraud``, ``n_alerts``) the metric rests on. Without it the performance
        rule is skipped.
    metric : str, default "average_precision"
        A higher-is-better metric name of :func:`fraudkit.science.metrics.evaluate`; when the
        window holds label-free estimates, ``estimated_<metric>`` is used.
    tolerance : float, default 0.1
        Largest tolerated relative drop (0.1 = 10 % below baseline).
    alpha : float, default 0.05
        False-alarm rate of the one-sided test that the drop is more than noise.
    degradation : object, optional
        Anything with a boolean ``degraded`` attribute, such as the registry's performance
        degradation check.

    Returns
    -------
    MonitoringAlert
    """
    if tolerance < 0:
        raise ConfigurationError(f"tolerance must be a non-negative fraction, got {tolerance!r}")
    check_fraction("alpha", alpha)
    drift = window_report.drift
    prediction = window_report.prediction_drift
    details: dict[str, Any] = {
        "share_drifted": drift.share_drifted,
        "drifted_features": drift.drifted_features,
        "prediction_ks": prediction.ks_statistic,
        "prediction_alert_rate": prediction.alert_rate_current,
        "prediction_mean_ratio": prediction.mean_ratio,
        "labels_used": window_report.labels_used,
        "estimate_reliable": window_report.estimate["reliable"],
    }
    metric_dropped = False
    if baseline_metrics is not None:
        metric_dropped, numbers = _performance_rule(
            window_report.metrics, baseline_metrics, metric, tolerance, alpha
        )
        details |= numbers
    degraded = False
    if degradation is not None:
        if not hasattr(degradation, "degraded"):
            raise TypeError(
                f"degradation must have a boolean 'degraded' attribute, "
                f"got {type(degradation).__name__}"
            )
        degraded = bool(degradation.degraded)
        details["registry_degradation"] = degraded
    fired = {
        "data_drift": drift.dataset_drift,
        "prediction_drift": prediction.drifted,
        "performance_drop": metric_dropped,
        "registry_degradation": degraded,
    }
    performance_drop = metric_dropped or degraded
    return MonitoringAlert(
        data_drift=drift.dataset_drift,
        prediction_drift=prediction.drifted,
        performance_drop=performance_drop,
        rules_fired=tuple(rule for rule, hit in fired.items() if hit),
        retraining_recommended=performance_drop or (drift.dataset_drift and prediction.drifted),
        details=details,
    )


def summarise_alerts(alerts: Sequence[MonitoringAlert]) -> dict[str, Any]:
    """Summarise the alerts of consecutive windows for the end-of-run report.

    Parameters
    ----------
    alerts : sequence of MonitoringAlert
        One per window, in time order.

    Returns
    -------
    dict
        ``n_windows``; ``data_drift_windows``, ``prediction_drift_windows``,
        ``performance_drop_windows``, ``retraining_windows`` (0-based window positions);
        ``first_alert_window`` (first window where any rule fired, or None) and
        ``retraining_recommended`` (any window recommends it).
    """

    def windows(flag: str) -> list[int]:
        return [i for i, alert in enumerate(alerts) if getattr(alert, flag)]

    first_alert = next((i for i, alert in enumerate(alerts) if alert.rules_fired), None)
    retraining = windows("retraining_recommended")
    return {
        "n_windows": len(alerts),
        "data_drift_windows": windows("data_drift"),
        "prediction_drift_windows": windows("prediction_drift"),
        "performance_drop_windows": windows("performance_drop"),
        "retraining_windows": retraining,
        "first_alert_window": first_alert,
        "retraining_recommended": bool(retraining),
    }
