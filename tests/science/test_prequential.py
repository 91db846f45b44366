"""Prequential validation: fold boundaries and gap, refusals, map_fn, summary and tests."""

from __future__ import annotations

import itertools
import math
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fraudkit.core.exceptions import ConfigurationError, DataValidationError, SmallSampleWarning
from fraudkit.science.fold_summary import (
    MIN_WILCOXON_FOLDS,
    PrequentialResult,
    prediction_interval,
)
from fraudkit.science.prequential import (
    evaluate_fold,
    fold_plan,
    prequential_folds,
    run_prequential,
)
from fraudkit.science.transactions import Transactions, load_or_simulate

# 30 days (100 to 129), three rows a day.
DAYS = np.repeat(np.arange(100, 130), 3)


@pytest.fixture(scope="module")
def handbook() -> Transactions:
    """A small entity-simulator world: 183 days, about 300 transactions a day."""
    return load_or_simulate(None, "handbook", n_transactions=55_000, seed=3)


def test_folds_tile_the_end_of_the_data_with_the_gap_between_train_and_test() -> None:
    folds = prequential_folds(DAYS, train_days=7, test_days=5, gap_days=3)
    assert [f.index for f in folds] == [0, 1, 2, 3]  # (30 - 7 - 3) // 5 folds fit
    assert folds[-1].test == (125, 130) and folds[-1].gap == (122, 125)
    assert folds[-1].train == (115, 122)
    assert folds[0].train == (100, 107) and folds[0].test == (110, 115)
    for before, after in itertools.pairwise(folds):
        assert after.test[0] == before.test[1]  # rolled forward by test_days
    for fold in folds:
        train_days, test_days = DAYS[fold.train_rows], DAYS[fold.test_rows]
        assert train_days.min() == fold.train[0] and train_days.max() == fold.train[1] - 1
        assert test_days.min() == fold.test[0] and test_days.max() == fold.test[1] - 1
        assert test_days.min() - train_days.max() == 3 + 1  # three whole days dropped
        assert fold.train_rows.size == 7 * 3 and fold.test_rows.size == 5 * 3


def test_n_folds_keeps_the_latest_folds() -> None:
    every = prequential_folds(DAYS, train_days=7, test_days=5, gap_days=3)
    latest = prequential_folds(DAYS, train_days=7, test_days=5, gap_days=3, n_folds=2)
    assert [f.test for f in latest] == [f.test for f in every[-2:]]
    assert [f.index for f in latest] == [0, 1]


def test_too_few_days_for_one_fold_is_refused_with_what_the_blocks_need() -> None:
    with pytest.raises(DataValidationError, match=r"span 30 days .* needs .* = 31 days"):
        prequential_folds(DAYS, train_days=20, test_days=5, gap_days=6)


def test_more_folds_than_fit_are_refused_with_how_many_fit() -> None:
    with pytest.raises(ConfigurationError, match=r"pass n_folds <= 4"):
        prequential_folds(DAYS, train_days=7, test_days=5, gap_days=3, n_folds=5)


@pytest.mark.parametrize(
    "sizes", [{"train_days": 0}, {"test_days": 2.5}, {"gap_days": -1}, {"n_folds": 0}]
)
def test_block_sizes_must_be_whole_numbers_in_range(sizes: dict[str, Any]) -> None:
    design = {"train_days": 7, "test_days": 5, "gap_days": 3} | sizes
    with pytest.raises(ConfigurationError, match=next(iter(sizes))):
        prequential_folds(DAYS, **design)


def test_a_block_without_rows_is_refused() -> None:
    holed = DAYS[(DAYS < 110) | (DAYS > 114)]  # the first fold's test block
    with pytest.raises(DataValidationError, match=r"fold 0: the test block \(days 110 to 114\)"):
        prequential_folds(holed, train_days=7, test_days=5, gap_days=3)


def test_a_fold_plan_runs_what_fits_and_says_so() -> None:
    design = {"train_days": 7, "test_days": 5, "gap_days": 3}
    assert fold_plan(DAYS, 4, **design) == (4, None)
    assert fold_plan(DAYS, 0, **design) == (0, None)
    n_folds, note = fold_plan(DAYS, 6, **design)
    assert n_folds == 4 and note is not None
    assert "40 days" in note and "span 30 days" in note and "latest 4 folds run" in note
    n_folds, note = fold_plan(DAYS, 2, train_days=28, test_days=7, gap_days=7)
    assert n_folds == 0 and note is not None and "skipped" in note
    with pytest.raises(ConfigurationError, match="train_days"):
        fold_plan(DAYS, 2, train_days=0, test_days=7, gap_days=7)


def test_days_must_be_whole_numbers() -> None:
    with pytest.raises(DataValidationError, match="review_keys"):
        prequential_folds(DAYS.astype(float), train_days=7, test_days=5, gap_days=3)


def _shipped(log: list[int]) -> Callable[[Callable[[Any], Any], list[Any]], list[Any]]:
    """A map_fn that pickles each task as Dask would and runs them last first."""

    def map_fn(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        log.append(len(items))
        assert function is evaluate_fold
        backwards = reversed(list(enumerate(items)))
        results = {i: function(pickle.loads(pickle.dumps(task))) for i, task in backwards}
        return [results[i] for i in range(len(items))]

    return map_fn


def test_a_map_fn_gives_the_sequential_result(handbook: Transactions) -> None:
    design = {"train_days": 14, "test_days": 7, "n_folds": 3, "k": 10}
    models = "logistic_regression, hist_gradient_boosting"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        sequential = run_prequential(handbook, models, **design)
        log: list[int] = []
        mapped = run_prequential(handbook, models, **design, map_fn=_shipped(log))
    assert log == [6]  # one task per fold and model, in one call
    timeless = ["fit_seconds"]
    pd.testing.assert_frame_equal(
        sequential.folds.drop(columns=timeless), mapped.folds.drop(columns=timeless)
    )
    folds = sequential.folds
    assert list(folds["model"].unique()) == ["logistic_regression", "hist_gradient_boosting"]
    assert sequential.gap_days == 7  # the default: the feature spec's label delay, 7d
    assert (folds["test_first_day"] - folds["train_end_day"] == 7).all()
    assert folds["test_end_day"].max() == folds["test_end_day"].iloc[-1]
    assert folds["average_precision"].between(0, 1).all()
    assert folds["card_precision_at_k"].between(0, 1).all()
    assert (folds["n_fraud"] > 0).all()


def test_the_cp_of_a_fold_is_the_mean_of_its_daily_card_precision(
    handbook: Transactions,
) -> None:
    from fraudkit.science.alerts import card_precision_by_day
    from fraudkit.science.prequential import fold_tasks

    days, _ = handbook.schema.review_keys(handbook.frame)
    folds = prequential_folds(days, train_days=14, test_days=7, gap_days=7, n_folds=1)
    (task,) = fold_tasks(handbook, folds, ["logistic_regression"], days=days, k=10,
                         card_column="CUSTOMER_ID")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        row = evaluate_fold(task)
        from fraudkit.science.models import predict_scores, train_model

        model = train_model(task.train, "logistic_regression", **handbook.model_options)
    test = handbook.frame.iloc[folds[0].test_rows]
    expected = card_precision_by_day(
        test["TX_FRAUD"], predict_scores(model, test), days[folds[0].test_rows],
        test["CUSTOMER_ID"], k=10,
    )  # fmt: skip
    assert row["card_precision_at_k"] == pytest.approx(expected.mean)
    assert row["n_test"] == len(test) and row["n_fraud"] == int(test["TX_FRAUD"].sum())


def test_kaggle_data_spanning_a_day_are_refused_naming_the_days() -> None:
    kaggle = load_or_simulate(None, "kaggle", n_transactions=5_000, fraud_rate=0.02)
    with pytest.raises(DataValidationError, match=r"span 1 day \(day 0 to 0\).* = 21 days"):
        run_prequential(kaggle, "logistic_regression", train_days=7, test_days=7)


def test_an_unknown_model_type_is_refused(handbook: Transactions) -> None:
    with pytest.raises(ConfigurationError, match="choose one or more of"):
        run_prequential(handbook, "logistic_regression,xgboost", train_days=7, test_days=7)


# -- the summary and the paired tests, on constructed fold values ---------------------------

A = np.array([0.50, 0.60, 0.55, 0.65, 0.60, 0.70])
B = A - np.array([0.08, 0.12, 0.09, 0.11, 0.10, 0.13])


def _result(
    a: np.ndarray, b: np.ndarray, *, cp: tuple[np.ndarray, np.ndarray] | None = None
) -> PrequentialResult:
    """Models "b" then "a" with these AUPRCs, their CP@k ``cp`` (default half of them)."""
    cp_a, cp_b = cp if cp is not None else (a / 2, b / 2)
    rows = [
        {"model": name, "fold": i, "average_precision": values[i], "card_precision_at_k": cps[i]}
        for name, values, cps in (("b", b, cp_b), ("a", a, cp_a)) for i in range(len(a))
    ]  # fmt: skip
    return PrequentialResult(pd.DataFrame(rows), train_days=7, test_days=7, gap_days=7, k=10)


def test_summary_ranks_by_the_fold_mean_with_the_prediction_interval() -> None:
    summary = _result(A, B).summary()
    assert list(summary.index) == ["a", "b"]  # "b" came first in the folds
    row = summary.loc["a"]
    assert row["n_folds"] == 6
    assert row["average_precision_mean"] == pytest.approx(A.mean())
    assert row["average_precision_std"] == pytest.approx(A.std(ddof=1))
    half = 2.015048 * A.std(ddof=1) * math.sqrt(1 + 1 / 6)  # t(5) at 0.95
    assert row["average_precision_low"] == pytest.approx(A.mean() - half, abs=1e-6)
    assert row["average_precision_high"] == pytest.approx(A.mean() + half, abs=1e-6)
    assert row["card_precision_at_k_mean"] == pytest.approx(A.mean() / 2)


def test_the_interval_is_cut_to_zero_and_one() -> None:
    wide = np.array([0.1, 0.9, 0.05, 0.95, 0.5, 0.5])
    row = _result(wide, wide / 2).summary().loc["a"]
    assert row["average_precision_low"] == 0.0 and row["average_precision_high"] == 1.0


def test_paired_tests_compare_the_best_with_each_other_model() -> None:
    tests = _result(A, B).paired_tests()
    assert list(tests.index) == ["b"]
    row = tests.loc["b"]
    assert row["best"] == "a" and row["metric"] == "average_precision"
    assert row["mean_difference"] == pytest.approx((A - B).mean())
    assert row["t_p_value"] == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert row["wilcoxon_p_value"] == pytest.approx(stats.wilcoxon(A, B).pvalue)
    assert row["t_p_value"] < 0.001 and row["note"] == ""


def test_wilcoxon_is_left_out_below_six_folds_and_says_why() -> None:
    row = _result(A[:5], B[:5]).paired_tests().loc["b"]
    assert math.isnan(row["wilcoxon_p_value"]) and math.isfinite(row["t_p_value"])
    assert f"< {MIN_WILCOXON_FOLDS}" in row["note"]


def test_identical_models_are_not_different() -> None:
    tests = _result(A, A.copy()).paired_tests()
    row = tests.iloc[0]
    assert tests.index[0] != row["best"]  # a tie: the first in the folds' order is best
    assert row["t_p_value"] == 1.0 and row["wilcoxon_p_value"] == 1.0


def test_paired_tests_on_another_metric_choose_that_metric_s_best() -> None:
    flipped = _result(A, B, cp=(B, A)).paired_tests("card_precision_at_k")
    assert flipped.iloc[0]["best"] == "b" and flipped.index[0] == "a"
    assert flipped.iloc[0]["mean_difference"] == pytest.approx((A - B).mean())
    assert _result(A, B, cp=(B, A)).paired_tests().iloc[0]["best"] == "a"  # by AUPRC


def test_metrics_and_to_dict_are_flat_and_named_by_model() -> None:
    result = _result(A, B)
    metrics = result.metrics()
    assert metrics["prequential_a_average_precision_mean"] == pytest.approx(A.mean())
    assert metrics["prequential_b_card_precision_at_k_std"] == pytest.approx((B / 2).std(ddof=1))
    assert metrics["prequential_b_paired_p_value"] < 0.001
    assert "prequential_a_paired_p_value" not in metrics
    assert metrics["prequential_n_folds"] == 6
    assert len(metrics) == 2 * 2 * 4 + 2
    described = result.to_dict()
    assert described["prequential_best_model"] == "a" and described["prequential_gap_days"] == 7
    assert all(isinstance(v, int | float | str) for v in described.values())


def test_the_prediction_interval_holds_the_next_normal_draw_at_its_confidence() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(0.3, 0.1, size=(4_000, 9))
    held = [
        low <= row[-1] <= high
        for row in draws
        for low, high in [prediction_interval(row[:-1], 0.9)]
    ]
    assert np.mean(held) == pytest.approx(0.9, abs=0.015)  # binomial sd 0.005
    assert all(math.isnan(v) for v in prediction_interval([0.3, math.nan], 0.9))
