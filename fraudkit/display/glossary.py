"""What the kit's metric and summary names mean, and how to print their values.

Every number a notebook logs (``log_metrics``, ``log_experiment_summary``) has a name;
:func:`describe` says what it is (a label, a sentence, a unit, a kind and which direction
is good) and :func:`format_value` prints a value as a person reads it: counts as integers
with thousands separators, rates as percentages, differences with a sign, relative changes
as signed percentages, booleans as yes/no, scores with three decimals.

Names derived from a known one are understood too: ``val_`` (validation period),
``production_`` (the production model in the retraining notebook), ``best_`` (the best
candidate), ``estimated_`` (label-free estimate) with ``_lower``/``_upper`` (its interval;
``_low``/``_high`` for a realised metric's), ``_mean``/``_std`` (over prequential folds),
``_a``/``_b`` (of model A or B), ``alert_`` (an alert rule's flag),
``recall_at_precision_<p>``, ``card_precision_at_<k>`` and
``prequential_<model>_<metric>_<mean|std|low|high>``.

The module is pure (no MLflow), so plots, notebooks, the report index and the CLI share it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["GLOSSARY", "KINDS", "MetricInfo", "describe", "format_value", "label"]

KINDS = ("count", "rate", "score", "difference", "relative", "boolean", "seconds", "number")


@dataclass(frozen=True)
class MetricInfo:
    """What a logged name means.

    Attributes
    ----------
    label : str
        A short name for a table header or an axis ("AUPRC").
    meaning : str
        One sentence a reader without the code understands.
    unit : str
        What the number counts or measures ("transactions", "0 to 1", "seconds"); "" when
        it has none.
    kind : str
        One of :data:`KINDS`; decides the format of :func:`format_value`.
    better : str or None
        ``"higher"`` or ``"lower"`` when one direction is good, None otherwise.
    """

    label: str
    meaning: str
    unit: str
    kind: str
    better: str | None = None


def _info(label: str, kind: str, unit: str, better: str | None, meaning: str) -> MetricInfo:
    return MetricInfo(label, meaning, unit, kind, better)


_SCORE = "0 to 1"
_SHARE = "% of transactions"
_MONEY = "currency of Amount"

# One entry per line or two, arguments (label, kind, unit, better, meaning): the glossary
# reads as a table, which the formatter would spread over eight lines an entry.
# fmt: off
GLOSSARY: dict[str, MetricInfo] = {
    # -- ranking and alert quality (fraudkit.science.metrics.evaluate) ----------------------------
    "average_precision": _info("AUPRC", "score", _SCORE, "higher",
        "Average precision: the area under the precision-recall curve; how well the scores rank "
        "frauds first. A random ranking scores the fraud rate."),
    "roc_auc": _info("ROC AUC", "score", _SCORE, "higher",
        "Chance that a random fraud scores above a random legitimate transaction; flattering "
        "when fraud is rare, read AUPRC first."),
    "accuracy": _info("accuracy", "rate", _SHARE, "higher",
        "Share of transactions decided correctly at the threshold; near 100 % for any model "
        "when fraud is rare, so it says little."),
    "fraud_precision": _info("precision", "rate", "% of alerts", "higher",
        "Share of alerts that are fraud: how trustworthy the review queue is."),
    "fraud_recall": _info("recall", "rate", "% of frauds", "higher",
        "Share of frauds that raise an alert at the threshold."),
    "fraud_f1": _info("F1", "score", _SCORE, "higher",
        "Harmonic mean of precision and recall at the threshold."),
    "threshold": _info("threshold", "score", "fraud probability", None,
        "Operating threshold: a score at or above it raises an alert (scores are fraud "
        "probabilities)."),
    "n_transactions": _info("transactions", "count", "transactions", None,
        "Transactions the numbers rest on."),
    "n_fraud": _info("frauds", "count", "frauds", None,
        "Frauds among those transactions: what every fraud metric rests on (fewer than 30 is "
        "mostly noise)."),
    "fraud_rate": _info("fraud rate", "rate", _SHARE, None,
        "Share of transactions that are fraud."),
    "n_alerts": _info("alerts", "count", "alerts", None,
        "Transactions at or above the threshold: the review queue."),
    # -- the alert budget (fraudkit.science.alerts) --------------------------------------------
    "card_precision_at_k": _info("card precision@k", "rate", "% of cards", "higher",
        "Of the k cards investigators can call each day, the share that turn out to be "
        "compromised: each card counts once a day, ranked by its most suspicious transaction; "
        "the mean over the days. Without card ids (the Kaggle schema) rows stand in for cards."),
    "alert_budget_k": _info("alert budget", "count", "cards a day", None,
        "How many cards investigators can review a day: the k of card precision@k."),
    "alerts_per_day": _info("alerts a day", "number", "cards a day", None,
        "Cards a day with a transaction at or above the threshold, on average over the days: "
        "above the alert budget, the threshold floods investigators."),
    "alerts_per_day_max": _info("alerts a day (most)", "count", "cards a day", None,
        "Cards alerted on the busiest day at the threshold."),
    "alert_budget_exceeded": _info("threshold floods investigators", "boolean", "", "lower",
        "The threshold raises more alerts a day, on average, than the alert budget can review."),
    "fraud_amount_caught": _info("fraud amount caught", "number", _MONEY, "higher",
        "Amount of the frauds that raised an alert."),
    "fraud_amount_missed": _info("fraud amount missed", "number", _MONEY, "lower",
        "Amount of the frauds that raised no alert."),
    "expected_cost": _info("cost", "number", _MONEY, "lower",
        "Review cost of every alert plus the amount of every missed fraud."),
    "expected_cost_per_transaction": _info("cost per transaction", "number", _MONEY, "lower",
        "The cost divided by the transactions."),
    "review_cost": _info("review cost", "number", _MONEY, None, "Cost of reviewing one alert."),
    # -- calibration (fraudkit.science.metrics.calibration_metrics) -------------------------------
    "brier_score": _info("Brier score", "score", _SCORE, "lower",
        "Mean squared error of the fraud probabilities; tiny for any model that gets the fraud "
        "rate right."),
    "expected_calibration_error": _info("calibration error", "score", _SCORE, "lower",
        "Mean gap between predicted and observed fraud rate over score bins."),
    "expected_n_fraud": _info("expected frauds", "count", "frauds", None,
        "Sum of the fraud probabilities: the frauds the scores expect."),
    "expected_to_actual_fraud": _info("expected / actual frauds", "number", "ratio", None,
        "Frauds the scores expect divided by the frauds that happened; 1 is perfectly "
        "calibrated."),
    # -- the Bayes ceiling (fraudkit.science.simulate.bayes_ceiling) ------------------------------
    "bayes_average_precision": _info("Bayes AUPRC", "score", _SCORE, None,
        "AUPRC of the simulator's true fraud probabilities on the same rows: the best any model "
        "can reach there."),
    "share_of_bayes_auprc": _info("share of Bayes AUPRC", "rate", "% of the ceiling", "higher",
        "The model's AUPRC divided by the Bayes ceiling on the same rows; 100 % is the best "
        "possible."),
    "average_precision_without_behaviour": _info("AUPRC without behavioural features",
        "score", _SCORE, "higher",
        "AUPRC of the same model trained without the behavioural features, on the same test "
        "rows: what the features are worth."),
    # -- training and model comparison ---------------------------------------------------
    "fit_seconds": _info("fit time", "seconds", "seconds", "lower",
        "Time to train and calibrate the model."),
    "duration_s": _info("duration", "seconds", "seconds", None, "Wall time of the notebook run."),
    "precision": _info("precision", "rate", "% of alerts", "higher",
        "Share of alerts that are fraud at the chosen threshold."),
    "recall": _info("recall", "rate", "% of frauds", "higher",
        "Share of frauds that raise an alert at the chosen threshold."),
    "target": _info("target", "rate", "% (precision or recall)", None,
        "The precision (or recall) the threshold was chosen to reach."),
    "fallback": _info("fallback", "boolean", "", None,
        "No threshold reached the target; the best achievable one is used."),
    "threshold_fallback": _info("threshold fallback", "boolean", "", None,
        "No threshold reached the target; the best achievable one is used."),
    "n_candidates": _info("candidates", "count", "models", None, "Model types compared."),
    "base_rate_frauds": _info("frauds in history", "count", "frauds", None,
        "Frauds in the model's labelled history."),
    "base_rate_rows": _info("rows in history", "count", "transactions", None,
        "Transactions in the model's labelled history."),
    "model_version": _info("version", "number", "version", None, "Registered model version."),
    "registered_version": _info("registered version", "number", "version", None,
        "Version the run registered."),
    "new_version": _info("new version", "number", "version", None,
        "Version the retraining registered."),
    "parent_version": _info("parent version", "number", "version", None,
        "Production version the retrained model replaces."),
    "model_a_version": _info("version A", "number", "version", None,
        "Registered version of model A."),
    "model_b_version": _info("version B", "number", "version", None,
        "Registered version of model B."),
    # -- A/B tests (science.abtest, science.online, science.sequential) --------------------
    "relative_improvement": _info(
        "relative improvement", "relative", "% of the loser's value", "higher",
        "Relative change of the winner's metric over the loser's (with no winner, of B over A)."),
    "improvement": _info("improvement", "relative", "% of the loser's value", "higher",
        "Relative change of the winner's metric over the loser's (with no winner, of B over A); "
        "logged as relative_improvement by newer runs."),
    "auprc_difference": _info("AUPRC difference", "difference", "AUPRC points", "higher",
        "AUPRC of the retrained model minus that of production, on the same fresh window."),
    "difference": _info("difference", "difference", "metric points", None,
        "Metric of B minus metric of A on the same transactions."),
    "ci_low": _info("difference, lower bound", "difference", "metric points", None,
        "Lower end of the confidence interval of B minus A."),
    "ci_high": _info("difference, upper bound", "difference", "metric points", None,
        "Upper end of the confidence interval of B minus A."),
    "metric_a": _info("metric of A", "score", _SCORE, None, "The compared metric of model A."),
    "metric_b": _info("metric of B", "score", _SCORE, None, "The compared metric of model B."),
    "p_value": _info("p-value", "score", "probability", None,
        "Chance of a difference at least this large if the models were equally good; below "
        "alpha the winner is declared."),
    "mcnemar_p_value": _info("McNemar p-value", "score", "probability", None,
        "Exact test on the transactions where exactly one model decided correctly."),
    "statistical_significance": _info("significant", "boolean", "", None,
        "The test found the difference significant at alpha."),
    "alpha": _info("alpha", "rate", "probability", None,
        "Significance level (false-alarm rate) of the test."),
    "n_resamples": _info("resamples", "count", "resamples", None,
        "Bootstrap and permutation resamples."),
    "n": _info("transactions", "count", "transactions", None, "Transactions both models scored."),
    "both_correct": _info("both correct", "count", "transactions", None,
        "Transactions both models decided correctly."),
    "only_a_correct": _info("only A correct", "count", "transactions", None,
        "Transactions only model A decided correctly."),
    "only_b_correct": _info("only B correct", "count", "transactions", None,
        "Transactions only model B decided correctly."),
    "both_wrong": _info("both wrong", "count", "transactions", None,
        "Transactions both models decided wrongly."),
    "threshold_a": _info("threshold A", "score", "fraud probability", None,
        "Operating threshold of model A."),
    "threshold_b": _info("threshold B", "score", "fraud probability", None,
        "Operating threshold of model B."),
    "promoted": _info("promoted", "boolean", "", None,
        "The run moved the production alias to a new version."),
    "caught": _info("frauds caught", "count", "frauds", "higher",
        "Frauds that raised an alert."),
    "alert_rate": _info("alert rate", "rate", _SHARE, None,
        "Share of transactions alerted."),
    "amount_caught_per_transaction": _info("amount caught per transaction", "number", _MONEY,
        "higher", "Fraud amount caught, per transaction served."),
    "recall_a": _info("recall of A", "rate", "% of frauds", "higher",
        "Share of A's frauds that raised an alert."),
    "recall_b": _info("recall of B", "rate", "% of frauds", "higher",
        "Share of B's frauds that raised an alert."),
    "recall_difference": _info("recall difference", "difference", "recall points", None,
        "Recall of B minus recall of A."),
    "recall_ci_low": _info("recall difference, lower bound", "difference", "recall points", None,
        "Lower end of the confidence sequence of B minus A."),
    "recall_ci_high": _info("recall difference, upper bound", "difference", "recall points", None,
        "Upper end of the confidence sequence of B minus A."),
    "amount_difference": _info("amount difference", "difference", _MONEY, None,
        "Fraud amount caught per transaction, B minus A."),
    "amount_p_value": _info("amount p-value", "score", "probability", None,
        "Welch test of the amount caught."),
    "fisher_p_value": _info("Fisher p-value", "score", "probability", None,
        "Fixed-horizon test of the recalls."),
    "sequential_p_value": _info("sequential p-value", "score", "probability", None,
        "Anytime-valid p-value of the sequential test."),
    "likelihood_ratio": _info("likelihood ratio", "number", "ratio", None,
        "Statistic of the sequential test; a winner above 1 / alpha."),
    # -- A/B power and traffic (fraudkit.science.power) ------------------------------------------
    "observed_difference": _info("difference seen", "difference", "metric points", None,
        "B minus A, as the A/B test measured it."),
    "min_detectable_difference": _info("minimum detectable difference", "difference",
        "metric points", None, "The smallest gain of B worth detecting, chosen before the test."),
    "target_power": _info("power wanted", "rate", "% of tests", None,
        "Share of A/B tests that should find a true difference of the chosen size (80 %)."),
    "power_observed": _info("power at the difference seen", "rate", "% of tests", "higher",
        "If the true difference were the one seen, the share of A/B tests on this much "
        "traffic that would have declared it: simulated from the models' probabilities."),
    "power_at_min_difference": _info("power at the minimum difference", "rate", "% of tests",
        "higher", "The share of A/B tests on this much traffic that would declare a true gain "
        "of the minimum detectable difference. Below 80 %, no winner means inconclusive."),
    "required_transactions": _info("traffic needed", "count", "transactions", None,
        "Transactions an offline A/B test needs for 80 % power at the minimum detectable "
        "difference."),
    "power_at_required": _info("power at the traffic needed", "rate", "% of tests", None,
        "Simulated power on the traffic needed: about 80 % when the estimate settled."),
    "online_power": _info("online power", "rate", "% of tests", "higher",
        "Power of an online traffic split of the same size, judged on the caught-fraud rate."),
    "online_required_transactions": _info("online traffic needed", "count", "transactions",
        None, "Transactions (both arms) an online split needs for 80 % power at these recalls."),
    "n_simulations": _info("simulations", "count", "simulated tests", None,
        "Simulated A/B tests per traffic size."),
    # -- prequential validation (fraudkit.science.prequential) ----------------------------------
    "prequential_n_folds": _info("folds", "count", "folds", None,
        "Rolling train / gap / test folds each model was scored on."),
    "prequential_train_days": _info("train block", "count", "days", None,
        "Days each fold trains on."),
    "prequential_test_days": _info("test block", "count", "days", None,
        "Days each fold tests on; the folds roll forward by as many."),
    "prequential_gap_days": _info("gap", "count", "days", None,
        "Days dropped between a fold's train and test blocks: the label delay."),
    "prequential_k": _info("alert budget", "count", "cards a day", None,
        "The k of the folds' card precision@k."),
    "prequential_confidence": _info("interval level", "rate", "% of periods", None,
        "Share of next periods the fold intervals should hold."),
    "standard_error": _info("standard error", "number", "metric points", None,
        "Standard error of the difference."),
    "look": _info("look", "count", "looks", None,
        "Number of the look at a sequential test, from 1."),
    "mixing_sd": _info("mixing SD", "number", "recall points", None,
        "Spread of the effect sizes the sequential test is tuned to detect."),
    "stop": _info("stop", "boolean", "", None, "The sequential test may stop here."),
    # -- monitoring (science.drift, science.monitoring, science.estimation) ----------------
    "data_drift": _info("feature drift", "boolean", "", "lower",
        "The window's feature tests found drift."),
    "share_drifted": _info("share of features drifted", "rate", "% of features", "lower",
        "Share of the features whose test found drift."),
    "n_drifted": _info("features drifted", "count", "features", "lower",
        "Features whose test found drift."),
    "n_features_tested": _info("features tested", "count", "features", None,
        "Features compared with the reference."),
    "max_feature_ks": _info("largest KS distance", "score", _SCORE, "lower",
        "Largest Kolmogorov-Smirnov distance of a feature to the reference."),
    "prediction_drift": _info("score drift", "boolean", "", "lower",
        "The model's scores drifted from those on the reference."),
    "prediction_ks": _info("score KS distance", "score", _SCORE, "lower",
        "KS distance of the scores to the reference."),
    "prediction_ks_p_value": _info("score KS p-value", "score", "probability", None,
        "p-value of the score KS test."),
    "prediction_mean_p_value": _info("mean score p-value", "score", "probability", None,
        "p-value of the mean-score test."),
    "prediction_alert_rate": _info("alert rate", "rate", _SHARE, None,
        "Share of the window's transactions alerted."),
    "prediction_psi": _info("score PSI", "score", "index", "lower",
        "Population stability index of the scores."),
    "prediction_mean_ratio": _info("mean score ratio", "number", "ratio", None,
        "Mean score in the window over that on the reference."),
    "labels_used": _info("judged on labels", "boolean", "", None,
        "The window's labels had arrived and judged it."),
    "reliable": _info("estimate reliable", "boolean", "", "higher",
        "The label-free estimate can be trusted."),
    "estimate_reliable": _info("estimate reliable", "boolean", "", "higher",
        "The label-free estimate of the window can be trusted."),
    "confidence": _info("confidence", "rate", "probability", None,
        "Coverage of the estimate's interval."),
    "n_warnings": _info("warnings", "count", "warnings", "lower",
        "Warnings the window's judgement carries."),
    "performance_drop": _info("performance drop", "boolean", "", "lower",
        "The metric fell significantly and beyond the tolerance."),
    "retraining_recommended": _info("retraining recommended", "boolean", "", None,
        "Performance dropped, or features and scores drifted together."),
    "n_windows": _info("windows", "count", "windows", None, "Monitoring windows checked."),
    "first_alert_window": _info("first alert window", "number", "window", None,
        "First window (from 0) where any alert rule fired."),
    "label_delay": _info("label delay", "count", "windows", None,
        "Newest windows without labels yet."),
    "tolerance": _info("tolerance", "rate", "% of the baseline", None,
        "Largest tolerated relative drop of the metric."),
    # -- performance history (fraudkit.tracking.history) and promotion gates --------------------
    "baseline": _info("baseline", "score", _SCORE, None,
        "The metric on the version's training evaluation."),
    "recent": _info("recent", "score", _SCORE, None, "Mean of the most recent measurements."),
    "drop": _info("drop", "difference", "metric points", "lower",
        "Baseline minus recent (positive: worse)."),
    "relative_drop": _info("relative drop", "relative", "% of the baseline", "lower",
        "The drop relative to the baseline."),
    "window": _info("window", "count", "measurements", None,
        "How many of the most recent measurements were averaged."),
    "higher_is_better": _info("higher is better", "boolean", "", None,
        "Whether a rise of the metric is an improvement."),
    "version": _info("version", "number", "version", None, "Registered model version."),
    "n_measurements": _info("measurements", "count", "runs", None, "Measurements averaged."),
    "degraded": _info("degraded", "boolean", "", "lower",
        "The relative drop exceeds the tolerance."),
    "min_improvement": _info("required improvement", "difference", "AUPRC points", None,
        "AUPRC gain a candidate needs over production."),
}
# fmt: on

# Prefixes that qualify a known name: (label prefix, meaning prefix).
_PREFIXES = {
    "val_": ("validation ", "On the validation period: "),
    "production_": ("production ", "Of the production model: "),
    "best_": ("best ", "Of the best candidate: "),
    "estimated_": ("estimated ", "Label-free estimate, from the scores: "),
    "alert_": ("alert: ", "Alert rule: "),
}
# Suffixes that qualify a known name: (label suffix, meaning suffix).
_SUFFIXES = {
    "_lower": (" (lower bound)", " The lower end of its interval."),
    "_upper": (" (upper bound)", " The upper end of its interval."),
    "_low": (" (lower bound)", " The lower end of its interval."),
    "_high": (" (upper bound)", " The upper end of its interval."),
    "_mean": (" (mean over folds)", " Its mean over the prequential folds."),
    "_std": (" (spread over folds)", " Its standard deviation over the prequential folds."),
    "_a": (" of A", " Of model A."),
    "_b": (" of B", " Of model B."),
}
_FOLD_STATISTICS = {
    "mean": ("mean over folds", "The mean over the prequential folds"),
    "std": ("spread over folds", "The standard deviation over the prequential folds"),
    "low": (
        "next period, lower bound",
        "The lower end of the prediction interval for the next period",
    ),
    "high": (
        "next period, upper bound",
        "The upper end of the prediction interval for the next period",
    ),
}
_PATTERNS = (
    (
        re.compile(r"recall_at_precision_(\d+)"),
        lambda level: _info(
            f"recall at {level} % precision",
            "rate",
            "% of frauds",
            "higher",
            f"Share of frauds caught at the threshold where {level} % of alerts are fraud.",
        ),
    ),
    (
        re.compile(r"card_precision_at_(\d+)"),
        lambda k: _info(
            f"card precision@{k}",
            "rate",
            "% of cards",
            "higher",
            f"Share of frauds among the {k} most suspicious cards.",
        ),
    ),
    (
        re.compile(
            r"prequential_(\w+?)_(average_precision|card_precision_at_k)_(mean|std|low|high)"
        ),
        lambda model, metric, statistic: replace(
            GLOSSARY[metric],
            label=f"{model} {GLOSSARY[metric].label}, {_FOLD_STATISTICS[statistic][0]}",
            meaning=f"{_FOLD_STATISTICS[statistic][1]} of {model}'s "
            f"{GLOSSARY[metric].label}. {GLOSSARY[metric].meaning}",
        ),
    ),
    (
        re.compile(r"prequential_(\w+)_paired_p_value"),
        lambda model: _info(
            f"{model}: paired p-value",
            "score",
            "probability",
            None,
            f"Paired t-test over the folds of the best model against {model}: small when "
            "the best wins fold after fold.",
        ),
    ),
    (
        re.compile(r"(train|validation|test)_time_(start|end)"),
        lambda part, end: _info(
            f"{part} {end}",
            "number",
            "seconds from the first transaction",
            None,
            f"Time of the {'first' if end == 'start' else 'last'} transaction of the {part} "
            "period (the Time column).",
        ),
    ),
    (
        re.compile(r"(train|validation|test)_(rows|frauds)"),
        lambda part, what: _info(
            f"{part} {'transactions' if what == 'rows' else 'frauds'}",
            "count",
            "transactions" if what == "rows" else "frauds",
            None,
            f"{'Transactions' if what == 'rows' else 'Frauds'} in the {part} period.",
        ),
    ),
)


def describe(name: str) -> MetricInfo | None:
    """Say what a logged metric or summary name means.

    Parameters
    ----------
    name : str
        A name as logged, e.g. ``"average_precision"``, ``"val_fraud_recall"``,
        ``"estimated_average_precision_lower"``.

    Returns
    -------
    MetricInfo or None
        None for a name the kit does not log.

    Examples
    --------
    >>> describe("share_of_bayes_auprc").kind
    'rate'
    >>> describe("val_average_precision").label
    'validation AUPRC'
    """
    if name in GLOSSARY:
        return GLOSSARY[name]
    for suffix, (label_suffix, meaning_suffix) in _SUFFIXES.items():
        base = describe(name.removesuffix(suffix)) if name.endswith(suffix) else None
        if base is not None:
            return replace(
                base, label=base.label + label_suffix, meaning=base.meaning + meaning_suffix
            )
    for prefix, (label_prefix, meaning_prefix) in _PREFIXES.items():
        base = describe(name.removeprefix(prefix)) if name.startswith(prefix) else None
        if base is not None:
            meaning = base.meaning[:1].lower() + base.meaning[1:]
            return replace(base, label=label_prefix + base.label, meaning=meaning_prefix + meaning)
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            return build(*match.groups())
    return None


def label(name: str) -> str:
    """The short label of ``name`` (:attr:`MetricInfo.label`), or ``name`` itself if unknown."""
    info = describe(name)
    return info.label if info else name


def format_value(name: str, value: Any) -> str:
    """Print ``value`` of the metric or summary entry ``name`` as a person reads it.

    Parameters
    ----------
    name : str
        The logged name; its kind (see :func:`describe`) decides the format.
    value : Any
        A number, a bool, a numpy scalar, None, or a string as MLflow tags hold values
        (``"True"``, ``"0.81"``): numeric and boolean strings are read as such, other
        strings are returned as they are.

    Returns
    -------
    str
        Counts ``"12,000"``; rates ``"80.0%"``; scores ``"0.812"``; differences
        ``"+0.012"``; relative changes ``"+48.8%"``; booleans ``"yes"``/``"no"``;
        seconds ``"12.3 s"``; missing values ``"—"``; NaN ``"n/a"``. An unknown name gets
        a general format: integers stay integers, never ``"1.0000"``.

    Examples
    --------
    >>> format_value("n_fraud", 12000.0), format_value("promoted", 1.0)
    ('12,000', 'yes')
    >>> format_value("relative_improvement", 0.4881), format_value("fraud_recall", 0.8)
    ('+48.8%', '80.0%')
    """
    value = _read(value)
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    info = describe(name)
    kind = info.kind if info else None
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = float(value)
    if math.isnan(number):
        return "n/a"
    if kind == "boolean":
        return "yes" if number else "no"
    if math.isinf(number):
        return "+∞" if number > 0 else "-∞"
    if kind == "count":
        return f"{round(number):,}" if number == round(number) else f"{number:,.1f}"
    if kind == "rate":
        return _percent(number, signed=False)
    if kind == "relative":
        return _percent(number, signed=True)
    if kind == "score":
        return _decimals(number, signed=False)
    if kind == "difference":
        return _decimals(number, signed=True)
    if kind == "seconds":
        return _duration(number)
    return _general(number)


def _read(value: Any) -> Any:
    """``value`` as a Python scalar: numpy scalars unwrapped, tag strings parsed."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, str):
        return value
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered in ("none", "null", ""):
        return None
    try:
        return float(text)
    except ValueError:
        return value


def _sign(number: float, signed: bool) -> str:
    return "+" if signed and number > 0 else ""


def _percent(number: float, *, signed: bool) -> str:
    percent = number * 100
    if percent == 0:
        return "0%"
    # Small shares keep two significant digits: a 0.17 % fraud rate must not print as 0.2 %.
    text = f"{percent:.1f}" if abs(percent) >= 1 else f"{percent:.2g}"
    return f"{_sign(number, signed)}{text}%"


def _decimals(number: float, *, signed: bool) -> str:
    if number == 0:
        return "0.000"
    # Three decimals, but two significant digits for tiny values (a Brier score of 0.0012).
    text = f"{number:.3f}" if abs(number) >= 0.01 else f"{number:.2g}"
    if "e" in text:
        text = f"{number:.2e}"
    return _sign(number, signed) + text


def _duration(seconds: float) -> str:
    if abs(seconds) < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _general(number: float) -> str:
    if number == round(number) and abs(number) < 1e15:
        return f"{round(number):,}"
    size = abs(number)
    if size >= 1000:
        return f"{number:,.0f}"
    if size < 1e-4:
        return f"{number:.2e}"
    # Four significant digits, without exponent.
    decimals = max(0, 3 - math.floor(math.log10(size)))
    return f"{number:.{decimals}f}"
