"""The glossary of logged names (fraudkit.display.glossary): meanings, kinds and number formats."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudkit.display.glossary import GLOSSARY, KINDS, MetricInfo, describe, format_value, label
from fraudkit.science.abtest import ABTestResult
from fraudkit.science.alerts import alert_load, card_precision_by_day, estimate_card_precision
from fraudkit.science.drift import DriftReport, PredictionDriftResult
from fraudkit.science.estimation import estimate_performance
from fraudkit.science.fold_summary import PrequentialResult
from fraudkit.science.metrics import calibration_metrics, evaluate
from fraudkit.science.monitoring import WindowReport
from fraudkit.science.online import OnlineABResult
from fraudkit.science.power import PowerAnalysis
from fraudkit.science.retraining_rules import MonitoringAlert, summarise_alerts
from fraudkit.science.sequential import SequentialLook
from fraudkit.science.simulate import TransactionSimulator, bayes_ceiling
from fraudkit.science.thresholds import ThresholdChoice
from fraudkit.tracking.history import DegradationResult

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# Logged entries that are words, not numbers (names, ids, digests, sentences, window lists):
# printed as they are, so the glossary need not describe them.
TEXT_ENTRIES = {
    "aliases",
    "alias",
    "baseline_run_id",
    "best_model_type",
    "data_drift_windows",
    "dataset_digest",
    "dataset_name",
    "decided_by",
    "drift_scenario",
    "metric",
    "model_name",
    "monitoring_run_id",
    "note",
    "performance_drop_windows",
    "prequential_best_model",
    "prequential_rank_by",
    "prediction_drift_windows",
    "promotion_refused",
    "reliability_note",
    "retraining_windows",
    "rule",
    "runs",
    "small_sample_warnings",
    "unreliable_estimate_windows",
    "verdict_note",
    "window_warnings",
    "windows_judged_on_estimates",
    "winner",
}
LOGGING_CALLS = {"log_experiment_summary", "log_metrics", "set_tags"}
SUMMARY_TAG = "fraudkit.summary."


def test_every_entry_says_what_it_is():
    assert len(GLOSSARY) > 80
    for name, info in GLOSSARY.items():
        assert isinstance(info, MetricInfo), name
        assert info.kind in KINDS, name
        assert info.better in (None, "higher", "lower"), name
        assert info.label and info.meaning.endswith("."), name


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("n_fraud", 12000.0, "12,000"),  # a count logged as a float stays an integer
        ("n_transactions", np.int64(1_250_000), "1,250,000"),
        ("expected_n_fraud", 41.66, "41.7"),  # an expected count keeps its fraction
        ("fraud_rate", 0.00172, "0.17%"),  # small shares keep two significant digits
        ("fraud_recall", 0.8, "80.0%"),
        ("share_of_bayes_auprc", 0.9375, "93.8%"),
        ("relative_improvement", 0.4881, "+48.8%"),
        ("improvement", -0.05, "-5.0%"),
        ("auprc_difference", 0.0123, "+0.012"),
        ("auprc_difference", -0.0012, "-0.0012"),
        ("difference", 0.0, "0.000"),
        ("promoted", 1.0, "yes"),
        ("promoted", 0.0, "no"),
        ("promoted", "True", "yes"),  # summary tags hold text
        ("retraining_recommended", "False", "no"),
        ("statistical_significance", np.bool_(True), "yes"),
        ("average_precision", 0.81234, "0.812"),
        ("average_precision", "0.81234", "0.812"),
        ("brier_score", 0.00123, "0.0012"),
        ("fit_seconds", 3.21, "3.2 s"),
        ("fit_seconds", 125, "2 min 05 s"),
        ("model_version", "3", "3"),
        ("expected_to_actual_fraud", 1.0234, "1.023"),
        ("average_precision", None, "—"),
        ("average_precision", float("nan"), "n/a"),
        ("winner", "None", "—"),
        ("best_model_type", "hist_gradient_boosting", "hist_gradient_boosting"),
        ("not_a_kit_name", 1.0, "1"),  # never "1.0000" for an int-valued number
        ("not_a_kit_name", 12000.0, "12,000"),
        ("not_a_kit_name", 0.04321, "0.04321"),
        ("not_a_kit_name", True, "yes"),
    ],
)
def test_values_print_as_a_person_reads_them(name, value, text):
    assert format_value(name, value) == text


def test_derived_names_qualify_the_name_they_derive_from():
    assert label("val_average_precision") == "validation AUPRC"
    assert label("production_fraud_recall") == "production recall"
    assert label("best_average_precision") == "best AUPRC"
    lower = describe("estimated_average_precision_lower")
    assert lower is not None and lower.kind == "score"
    assert lower.label == "estimated AUPRC (lower bound)" and "lower end" in lower.meaning
    flag = describe("alert_retraining_recommended")
    assert flag is not None and flag.kind == "boolean"
    assert describe("recall_at_precision_80").label == "recall at 80 % precision"  # type: ignore[union-attr]
    assert format_value("card_precision_at_100", 0.25) == "25.0%"
    assert format_value("test_frauds", 38.0) == "38"
    assert format_value("n_fraud_b", 40.0) == "40" and label("n_fraud_b") == "frauds of B"
    assert describe("no_such_metric") is None and label("no_such_metric") == "no_such_metric"


def _fraudkit_result_names() -> set[str]:
    """Every key the kit's result objects log or show, from real results."""
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(20), np.zeros(180)].astype(int)
    scores = np.clip(labels * 0.5 + rng.uniform(0, 0.5, labels.size), 0, 1)
    amount, cards = rng.uniform(1, 100, labels.size), np.arange(labels.size) % 50
    names = set(evaluate(labels, scores, amount=amount, card_ids=cards))
    names |= set(calibration_metrics(labels, scores))
    simulator = TransactionSimulator(seed=0, fraud_rate=0.05)
    frame = simulator.sample(2_000)
    names |= set(bayes_ceiling(frame, simulator, metrics={"average_precision": 0.5}) or {})
    estimate = estimate_performance(scores, threshold=0.5)
    names |= set(estimate)
    results = (ABTestResult, OnlineABResult, SequentialLook, ThresholdChoice, DegradationResult)
    results += (PowerAnalysis,)
    names |= {f.name for cls in results for f in dataclasses.fields(cls)}
    features = pd.DataFrame({"feature": ["V1"], "effect": [0.1], "drifted": [False]})
    drift = DriftReport(False, 0.0, 0, 0.05, "ks", "holm", None, 100, 100, features)
    prediction = PredictionDriftResult(False, *[0.1] * 7, 0.05, 0.5, 100, 100)
    alert = MonitoringAlert(False, False, False, (), False, {})
    names |= set(WindowReport(drift, prediction, estimate, evaluate(labels, scores)).to_dict())
    names |= set(alert.to_dict()) | set(summarise_alerts([alert]))
    days = np.arange(labels.size) % 7
    budget = card_precision_by_day(labels, scores, days, cards, k=5)
    names |= set(budget.metrics()) | set(alert_load(scores, days, 0.5, cards, k=5).metrics())
    names |= set(estimate_card_precision(scores, days, cards, k=5).metrics())
    folds = pd.DataFrame(
        {
            "model": ["logistic_regression"] * 3 + ["hist_gradient_boosting"] * 3,
            "fold": [0, 1, 2] * 2,
            "average_precision": rng.uniform(0.3, 0.6, 6),
            "card_precision_at_k": rng.uniform(0.1, 0.3, 6),
        }
    )
    prequential = PrequentialResult(folds, train_days=7, test_days=7, gap_days=7)
    names |= set(prequential.to_dict())
    from fraudkit.science.data import time_split

    names |= set(time_split(frame).to_dict())
    return names


def _logged_keys(notebook: Path) -> set[str]:
    """The literal keys a notebook logs: log_experiment_summary, log_metrics, summary tags.

    Dicts passed by name (``summary``, ``evidence``) are followed to their literal
    definitions, ``name["key"] = ...`` assignments and ``**name`` spreads.
    """
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join(
        line
        for cell in cells
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))
    )
    tree = ast.parse(code)
    logged: list[ast.expr] = [
        node.args[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOGGING_CALLS
        and node.args
    ]
    names: set[str] = set()
    keys: set[str] = set()
    seen: set[int] = set()
    while logged:
        expr = logged.pop()
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        if isinstance(expr, ast.Name) and expr.id not in names:
            names.add(expr.id)
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == expr.id for t in node.targets
                ):
                    logged.append(node.value)
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Subscript)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == expr.id
                    and isinstance(t.slice, ast.Constant)
                    for t in node.targets
                ):
                    target = next(t for t in node.targets if isinstance(t, ast.Subscript))
                    keys.add(str(target.slice.value))  # type: ignore[attr-defined]
        elif isinstance(expr, ast.Dict):
            for key, value in zip(expr.keys, expr.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    keys.add(key.value.removeprefix(SUMMARY_TAG))
                elif key is None:  # **spread
                    logged.append(value)
        elif isinstance(expr, ast.DictComp):
            for generator in expr.generators:
                if isinstance(generator.iter, ast.Tuple):
                    keys |= {
                        e.value
                        for e in generator.iter.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    }
    return keys


def test_every_name_the_kit_logs_is_described():
    names = _fraudkit_result_names()
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        found = _logged_keys(notebook)
        assert found, f"no logged keys found in {notebook.name}: the scan is broken"
        names |= found
    # The scan sees what the notebooks log by name, not only the results' fields.
    assert {"promoted", "fit_seconds", "best_average_precision", "n_candidates"} <= names
    missing = sorted(n for n in names if describe(n) is None and n not in TEXT_ENTRIES)
    assert missing == [], f"add these logged names to fraudkit.display.glossary: {missing}"


def test_relative_and_absolute_changes_are_told_apart():
    relative, absolute = describe("relative_improvement"), describe("auprc_difference")
    assert relative is not None and absolute is not None
    assert (relative.kind, absolute.kind) == ("relative", "difference")
    assert format_value("relative_improvement", 0.02) == "+2.0%"
    assert format_value("auprc_difference", 0.02) == "+0.020"
    # The old, ambiguous name reads as the relative change the A/B result computes.
    assert describe("improvement").kind == "relative"  # type: ignore[union-attr]


def test_infinite_and_tiny_values_stay_readable():
    assert format_value("relative_drop", math.inf) == "+∞"
    assert format_value("not_a_kit_name", 3.2e-7) == "3.20e-07"
    assert format_value("difference", 1e-6) == "+1.00e-06"
