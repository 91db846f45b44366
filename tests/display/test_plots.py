from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fraudkit.core.exceptions import DataValidationError
from fraudkit.display import plots


@pytest.fixture(autouse=True)
def _one_figure_per_call() -> Iterator[None]:
    """Each test must leave exactly the figures it was handed, which it then closes."""
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function left an extra pyplot figure open"


@pytest.fixture
def labelled() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = (rng.random(3_000) < 0.03).astype(int)
    bayes = 1 / (1 + np.exp(-(3 * y + rng.normal(size=y.size) - 4)))
    model = np.clip(bayes + rng.normal(scale=0.05, size=y.size), 0, 1)
    return y, model, bayes


def _close(fig: Figure) -> Figure:
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == [fig.number]
    plt.close(fig)
    return fig


def _legend_texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_pr_curve_one_line_per_model_plus_bayes_and_baseline(labelled) -> None:
    y, model, bayes = labelled
    fig = _close(plots.plot_pr_curve(y, {"lr": model, "hgb": bayes * 0.9}, bayes_scores=bayes))
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4
    assert [line.get_linestyle() for line in ax.get_lines()[:3]] == ["-", "-", "--"]
    texts = _legend_texts(fig)
    assert texts[0].startswith("lr (AP = ") and texts[2].startswith("Bayes-optimal")
    assert ax.get_xlabel() == "Recall" and ax.get_ylabel() == "Precision"


def test_pr_curve_single_array_draws_on_given_axes(labelled) -> None:
    y, model, _ = labelled
    fig, ax = plt.subplots()
    assert plots.plot_pr_curve(y, model, ax=ax) is fig
    assert len(ax.get_lines()) == 2  # model + no-skill line
    _close(fig)


def test_roc_curve(labelled) -> None:
    y, model, bayes = labelled
    fig = _close(plots.plot_roc_curve(y, {"a": model, "b": bayes}))
    assert len(fig.axes[0].get_lines()) == 3
    assert _legend_texts(fig)[1].startswith("b (AUC = ")


def test_curves_need_both_classes() -> None:
    with pytest.raises(DataValidationError, match="both"):
        plots.plot_pr_curve([0, 0, 0], [0.1, 0.2, 0.3])


def test_confusion_matrix_counts(labelled) -> None:
    y, model, _ = labelled
    fig = _close(plots.plot_confusion_matrix(y, model, 0.5))
    annotations = [int(text.get_text()) for text in fig.axes[0].texts]
    alerts = model >= 0.5
    expected = [
        ((y == 0) & ~alerts).sum(),
        ((y == 0) & alerts).sum(),
        ((y == 1) & ~alerts).sum(),
        ((y == 1) & alerts).sum(),
    ]
    assert annotations == expected
    assert "0.5" in fig.axes[0].get_title()


def test_score_distributions_one_histogram_per_class(labelled) -> None:
    y, model, _ = labelled
    fig = _close(plots.plot_score_distributions(y, model, threshold=0.5))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.patches) == 2  # one step histogram per class
    assert _legend_texts(fig) == ["legitimate", "fraud", "threshold 0.5"]


def test_feature_importance_shows_top_features_in_order() -> None:
    importances = pd.Series({"V1": 0.1, "V2": 0.5, "Amount": 0.3, "V3": 0.05})
    fig = _close(plots.plot_feature_importance(importances, top=3))
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == ["V1", "Amount", "V2"]


@pytest.fixture
def history() -> pd.DataFrame:
    rows = [
        {"version": v, "metric": m, "step": s, "timestamp": 1000 * s, "value": 0.1 * v + 0.01 * s}
        for v in (1, 2, 3)
        for m in ("average_precision", "roc_auc")
        for s in range(4)
    ]
    return pd.DataFrame(rows)


def _run(version: int, run_id: str, source: str, when: str, values: list[float]) -> list[dict]:
    # Every step of a run carries the same wall-clock second, as a monitoring run logs them.
    return [
        {"version": version, "run_id": run_id, "source": source, "metric": "average_precision",
         "step": step, "timestamp": pd.Timestamp(when, tz="UTC"), "value": value}
        for step, value in enumerate(values)
    ]  # fmt: skip


@pytest.fixture
def registry_history() -> pd.DataFrame:
    """Two versions: training, a six-window monitoring run each, shuffled as a store returns."""
    rows = (
        _run(2, "m2", "monitoring", "2026-01-03", [0.5, 0.45, 0.4, 0.3, 0.2, 0.1])
        + _run(1, "t1", "training", "2026-01-01", [0.8])
        + _run(1, "m1", "monitoring", "2026-01-02", [0.78, 0.77, 0.76, 0.7, 0.6, 0.55])
        + _run(2, "t2", "training", "2026-01-02 12:00", [0.75])
    )
    return pd.DataFrame(rows).sample(frac=1, random_state=0)


def _points(fig: Figure) -> list[tuple[float, float]]:
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    return sorted(
        (float(x), float(y)) for line in lines for x, y in zip(*line.get_data(), strict=True)
    )


def test_metric_history_puts_runs_and_windows_in_order(registry_history: pd.DataFrame) -> None:
    fig = _close(plots.plot_metric_history(registry_history))
    points = _points(fig)
    positions = [x for x, _ in points]
    assert positions == list(range(14))  # 2 trainings + 12 windows, each its own position
    expected = [0.8, 0.78, 0.77, 0.76, 0.7, 0.6, 0.55, 0.75, 0.5, 0.45, 0.4, 0.3, 0.2, 0.1]
    assert [y for _, y in points] == pytest.approx(expected)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[:3] == ["v1 · training", "v1 · window 0", "v1 · window 1"]
    assert labels[7:9] == ["v2 · training", "v2 · window 0"]
    assert _legend_texts(fig) == ["version 1", "version 2"]
    assert "time order" in fig.axes[0].get_xlabel()
    assert fig.axes[0].get_ylabel() == "AUPRC (average_precision)"


def test_metric_history_six_windows_of_one_second_are_six_points(registry_history) -> None:
    one_run = registry_history[registry_history["run_id"] == "m1"]
    assert one_run["timestamp"].nunique() == 1
    fig = _close(plots.plot_metric_history(one_run, by="source"))
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 1, 2, 3, 4, 5]
    assert list(line.get_ydata()) == [0.78, 0.77, 0.76, 0.7, 0.6, 0.55]
    assert _legend_texts(fig) == ["source monitoring"]


def test_metric_history_shows_a_step_logged_twice_once(registry_history) -> None:
    training = registry_history[registry_history["run_id"] == "t1"]
    again = training.assign(value=0.81, timestamp=training["timestamp"] + pd.Timedelta("1s"))
    fig = _close(plots.plot_metric_history(pd.concat([again, training]), by="source"))
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == [0.81]  # the latest value of step 0
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["v1 · training"]


def test_metric_history_one_line_per_version_without_run_ids(history: pd.DataFrame) -> None:
    fig = _close(plots.plot_metric_history(history, metric="roc_auc", x="timestamp"))
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(lines) == 3
    assert [list(line.get_xdata()) for line in lines] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
    ]
    assert ax.get_ylabel() == "ROC AUC (roc_auc)"


def test_metric_history_unknown_metric_lists_available(history: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="available: average_precision, roc_auc"):
        plots.plot_metric_history(history, metric="f1")
    with pytest.raises(DataValidationError, match="lacks column"):
        plots.plot_metric_history(history.drop(columns="step"))


def test_windows_with_onset_marker() -> None:
    frame = pd.DataFrame({"window": range(6), "average_precision": 0.8, "psi": np.arange(6.0)})
    fig = _close(plots.plot_windows(frame, ["average_precision", "psi"], onset=3))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    assert list(lines[-1].get_xdata()) == [3, 3]
    assert _legend_texts(fig)[-1] == "drift onset"


def test_drift_heatmap_puts_features_down_and_windows_across() -> None:
    features = [f"V{i}" for i in range(1, 29)] + ["Amount"]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.random((8, 29)), columns=features).rename_axis(
        index="window", columns="feature"
    )
    fig = _close(plots.plot_drift_heatmap(table, label="KS distance to reference"))
    heatmap, colour_bar = fig.axes
    assert [t.get_text() for t in heatmap.get_yticklabels()] == features  # every one named
    assert [t.get_text() for t in heatmap.get_xticklabels()] == [str(i) for i in range(8)]
    assert (heatmap.get_ylabel(), heatmap.get_xlabel()) == ("feature", "window")
    cells = heatmap.collections[0].get_array().reshape(29, 8)
    assert np.allclose(cells, table.to_numpy().T)
    assert colour_bar.get_ylabel() == "KS distance to reference"
    assert colour_bar.get_ylim()[0] == 0  # a distance: the colour scale starts at none
    width, height = fig.get_size_inches()
    assert height > width and width <= 8  # long axis down, fits a page's width
    assert all(t.get_fontsize() >= 8 for t in heatmap.get_yticklabels())


def test_drift_heatmap_marks_the_cells_the_test_flagged() -> None:
    table = pd.DataFrame(np.full((3, 4), 0.01), columns=["V1", "V2", "V3", "Amount"])
    flagged = table > 1
    flagged.loc[2, "V2"] = flagged.loc[1, "Amount"] = True
    fig = _close(plots.plot_drift_heatmap(table, flagged=flagged))
    heatmap = fig.axes[0]
    marks = sorted((t.get_position(), t.get_text()) for t in heatmap.texts)
    # x = window + 0.5, y = feature row + 0.5 (features down: V2 is row 1, Amount row 3)
    assert marks == [((1.5, 3.5), "●"), ((2.5, 1.5), "●")]
    assert "drift detected by the test (2 cells)" in heatmap.get_xlabel()
    veil = heatmap.collections[1].get_array().reshape(4, 3)  # features down, windows across
    assert veil.sum() == 2 and veil[1, 2] == veil[3, 1] == 1  # flagged cells stay unfaded
    with pytest.raises(DataValidationError, match=r"windows .* and features"):
        plots.plot_drift_heatmap(table, flagged=flagged.drop(columns="V3"))


def test_drift_heatmap_sized_to_its_content() -> None:
    small = pd.DataFrame(np.ones((3, 4)), columns=["V1", "V2", "V3", "Amount"])
    fig = _close(plots.plot_drift_heatmap(small))
    assert fig.get_size_inches()[1] < 4  # four features need no page-long figure
    assert fig.axes[1].get_ylabel() == "drift statistic"
    with pytest.raises(DataValidationError, match="empty"):
        plots.plot_drift_heatmap(pd.DataFrame())


@pytest.mark.parametrize(
    ("low", "high", "verdict"), [(0.01, 0.05, "excludes"), (-0.01, 0.05, "includes")]
)
def test_metric_difference(low: float, high: float, verdict: str) -> None:
    fig = _close(plots.plot_metric_difference(0.02, low, high, metric="average_precision"))
    ax = fig.axes[0]
    assert verdict in ax.get_title()
    assert ax.get_xlabel() == "difference in average_precision"
    assert len(ax.get_lines()) >= 2  # the estimate marker and the zero line


def test_metric_difference_rejects_inconsistent_interval() -> None:
    with pytest.raises(DataValidationError, match="ci_low <= diff <= ci_high"):
        plots.plot_metric_difference(0.2, 0.0, 0.1, metric="average_precision")


def test_reliability_diagram_shows_expected_and_actual_counts(labelled) -> None:
    y, scores, _ = labelled
    figure = plots.plot_reliability_diagram(y, {"calibrated": scores, "inflated": scores / 2})
    ax = figure.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(f"calibrated (expected {scores.sum():.0f} frauds, actual {y.sum()})" in label
               for label in labels)  # fmt: skip
    assert ax.get_title() == "Reliability diagram"
    plt.close(figure)
    with pytest.raises(DataValidationError, match="both legitimate"):
        plots.plot_reliability_diagram([0, 0, 0], [0.1, 0.2, 0.3])


def test_estimate_against_realised_marks_unreliable_windows() -> None:
    frame = pd.DataFrame(
        {
            "window": [0, 1, 2, 3],
            "average_precision": [0.8, 0.7, np.nan, np.nan],  # the newest are unlabelled
            "estimated_average_precision": [0.75, 0.72, 0.74, 0.5],
            "estimated_average_precision_lower": [0.65, 0.62, 0.64, 0.4],
            "estimated_average_precision_upper": [0.85, 0.82, 0.84, 0.6],
            "estimate_reliable": [1, 1, 1, 0],
        }
    )
    figure = plots.plot_estimate_against_realised(frame, onset=3)
    ax = figure.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == [
        "estimate interval", "estimated", "realised", "estimate unreliable", "drift onset"
    ]  # fmt: skip
    realised = next(line for line in ax.get_lines() if line.get_label() == "realised")
    assert list(realised.get_ydata()[:2]) == [0.8, 0.7]
    crosses = next(c for c in ax.collections if c.get_label() == "estimate unreliable")
    assert crosses.get_offsets().tolist() == [[3.0, 0.5]]
    plt.close(figure)
    with pytest.raises(DataValidationError, match="estimated_average_precision_lower"):
        plots.plot_estimate_against_realised(
            frame.drop(columns="estimated_average_precision_lower")
        )
