"""Plots for fraud models: curves, confusion matrix, scores, importances, history, drift.

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``.
Given ``ax=``, a function draws on it and returns its figure; otherwise it creates one
figure through pyplot (so notebooks display it) and nothing else. Scripts should close
the figures they receive (``plt.close(fig)``). Functions set no global style, so they are
safe under the Agg backend and in any notebook theme.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from fraudkit.core.exceptions import DataValidationError
from fraudkit.display.glossary import label as metric_label
from fraudkit.science.metrics import validate_labels_and_scores

__all__ = [
    "plot_confusion_matrix",
    "plot_drift_heatmap",
    "plot_estimate_against_realised",
    "plot_feature_importance",
    "plot_metric_difference",
    "plot_metric_history",
    "plot_pr_curve",
    "plot_reliability_diagram",
    "plot_roc_curve",
    "plot_score_distributions",
    "plot_windows",
]

_FIGSIZE = (6.4, 4.8)
_CLASS_NAMES = ("legitimate", "fraud")


def _axes(ax: Axes | None, figsize: tuple[float, float] = _FIGSIZE) -> tuple[Figure, Axes]:
    if ax is not None:
        return cast(Figure, ax.figure), ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _named_scores(
    y_true: ArrayLike, scores: ArrayLike | Mapping[str, ArrayLike]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Validated labels and a name -> scores dict (one unnamed array becomes "model")."""
    named = dict(scores) if isinstance(scores, Mapping) else {"model": scores}
    if not named:
        raise DataValidationError("scores is an empty mapping; pass at least one model")
    checked = {name: validate_labels_and_scores(y_true, s) for name, s in named.items()}
    y = next(iter(checked.values()))[0]
    if np.unique(y).size < 2:
        raise DataValidationError("curves need both legitimate (0) and fraud (1) labels")
    return y, {name: s for name, (_, s) in checked.items()}


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{what} lacks column(s) {', '.join(map(str, missing))}; "
            f"it has: {', '.join(map(str, frame.columns))}"
        )


def plot_pr_curve(
    y_true: ArrayLike,
    scores: ArrayLike | Mapping[str, ArrayLike],
    *,
    bayes_scores: ArrayLike | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Precision-recall curves of one or several models on the same labels.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1 (both present).
    scores : array-like of shape (n,) or mapping of str to array-like
        Fraud scores of one model, or of several models by name (one curve each).
    bayes_scores : array-like of shape (n,), optional
        True fraud probabilities (from the simulator); drawn dashed as the Bayes-optimal
        curve, the ceiling for any model on these transactions.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        One line per model (average precision in the legend), the Bayes-optimal curve
        when given, and a dotted no-skill line at the fraud rate.
    """
    y, named = _named_scores(y_true, scores)
    lines = [(name, s, "-") for name, s in named.items()]
    if bayes_scores is not None:
        lines.append(("Bayes-optimal", validate_labels_and_scores(y, bayes_scores)[1], "--"))
    fig, ax = _axes(ax)
    for name, s, style in lines:
        precision, recall, _ = precision_recall_curve(y, s)
        label = f"{name} (AP = {average_precision_score(y, s):.3f})"
        ax.step(recall, precision, where="post", linestyle=style, label=label)
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"no skill ({y.mean():.4f})")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    return fig


def plot_roc_curve(
    y_true: ArrayLike,
    scores: ArrayLike | Mapping[str, ArrayLike],
    *,
    ax: Axes | None = None,
) -> Figure:
    """ROC curves of one or several models, with ROC AUC in the legend.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1 (both present).
    scores : array-like of shape (n,) or mapping of str to array-like
        Fraud scores of one model, or of several models by name.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        One line per model plus the dashed chance diagonal.
    """
    y, named = _named_scores(y_true, scores)
    fig, ax = _axes(ax)
    for name, s in named.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC = {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return fig


def plot_confusion_matrix(
    y_true: ArrayLike, scores: ArrayLike, threshold: float, *, ax: Axes | None = None
) -> Figure:
    """Confusion matrix (counts) of alerts ``score >= threshold`` against the labels.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1.
    scores : array-like of shape (n,)
        Fraud scores.
    threshold : float
        Operating threshold.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        A 2 x 2 annotated heatmap, true class in rows, predicted class in columns.
    """
    y, s = validate_labels_and_scores(y_true, scores)
    matrix = confusion_matrix(y, (s >= threshold).astype(int), labels=[0, 1])
    fig, ax = _axes(ax, figsize=(4.8, 4.0))
    sns.heatmap(
        pd.DataFrame(matrix, index=_CLASS_NAMES, columns=_CLASS_NAMES),
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=False,
        ax=ax,
    )
    ax.set(
        xlabel="Predicted", ylabel="Actual", title=f"Confusion matrix at threshold {threshold:.4g}"
    )
    return fig


def plot_reliability_diagram(
    y_true: ArrayLike,
    probabilities: ArrayLike | Mapping[str, ArrayLike],
    *,
    n_bins: int = 10,
    ax: Axes | None = None,
) -> Figure:
    """Reliability diagram: observed fraud rate against predicted probability, per bin.

    Drawn with scikit-learn's :class:`~sklearn.calibration.CalibrationDisplay` (uniform
    bins); a calibrated model follows the diagonal. Each line is annotated with its
    expected and actual fraud counts, the number a reader can check at a glance when
    nearly every transaction sits in the lowest bin.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1 (both present).
    probabilities : array-like or mapping of str to array-like
        Fraud probabilities of one model, or of several by name.
    n_bins : int, default 10
        Equal-width probability bins.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    y, named = _named_scores(y_true, probabilities)
    fig, ax = _axes(ax)
    for name, p in named.items():
        label = f"{name} (expected {p.sum():.0f} frauds, actual {int(y.sum())})"
        CalibrationDisplay.from_predictions(y, p, n_bins=n_bins, name=label, ax=ax)
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_score_distributions(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    threshold: float | None = None,
    bins: int = 50,
    ax: Axes | None = None,
) -> Figure:
    """Score density of each class on a logarithmic score axis.

    Fraud scores span orders of magnitude (most legitimate transactions score near 0),
    so bins are spaced logarithmically; each class is normalised to unit area so that
    the rare fraud class stays visible. Scores are clipped below at the smallest
    positive score (or 1e-6).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1.
    scores : array-like of shape (n,)
        Fraud scores, non-negative.
    threshold : float, optional
        Draws the operating threshold as a vertical line.
    bins : int, default 50
        Number of logarithmic bins.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        One step histogram per class present.
    """
    y, s = validate_labels_and_scores(y_true, scores)
    positive = s[s > 0]
    low = max(positive.min() if positive.size else 1e-6, 1e-6)
    high = max(s.max(), low * 10)
    clipped = np.clip(s, low, high)
    edges = np.logspace(np.log10(low), np.log10(high), bins + 1)
    fig, ax = _axes(ax)
    for label, name in enumerate(_CLASS_NAMES):
        if (y == label).any():
            ax.hist(clipped[y == label], bins=edges, density=True, histtype="step", label=name)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xscale("log")
    ax.set(xlabel="Fraud score (log scale)", ylabel="Density", title="Score distribution by class")
    ax.legend()
    return fig


def plot_feature_importance(
    importances: pd.Series, top: int = 20, *, ax: Axes | None = None
) -> Figure:
    """Horizontal bars of the ``top`` most important features, the most important on top.

    Parameters
    ----------
    importances : pandas.Series
        Importance by feature name (e.g. from :func:`fraudkit.science.models.feature_importances`).
    top : int, default 20
        Number of features shown.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if importances.empty:
        raise DataValidationError("importances is empty; pass one value per feature")
    shown = importances.sort_values(ascending=False).head(top)
    fig, ax = _axes(ax, figsize=(6.4, 0.3 * len(shown) + 1.2))
    ax.barh([str(name) for name in shown.index[::-1]], shown.to_numpy()[::-1])
    ax.set(xlabel=str(importances.name or "importance"), title=f"Top {len(shown)} features")
    return fig


def _point_label(run_rows: pd.DataFrame, step: object) -> str:
    """``v3 · window 2`` for a monitoring window, ``v3 · training`` for a one-value run."""
    version = f"v{run_rows['version'].iloc[0]} · " if "version" in run_rows else ""
    source = str(run_rows["source"].iloc[0]) if "source" in run_rows else "monitoring"
    if len(run_rows) == 1:
        return f"{version}{source}"
    # Monitoring logs one step per window; any other run's steps are just steps.
    return f"{version}window {step}" if source == "monitoring" else f"{version}{source} step {step}"


def plot_metric_history(
    history: pd.DataFrame,
    metric: str = "average_precision",
    x: str = "timestamp",
    by: str = "version",
    *,
    ax: Axes | None = None,
) -> Figure:
    """One metric over runs and their windows, in time order, coloured by version.

    The horizontal axis is ordinal, not a clock: runs follow each other in the order of
    their first ``x`` value and, within a run, its steps (a monitoring run's windows)
    follow in order, each at its own position and labelled ``v3 · window 2`` (a run with
    one value: ``v3 · training``). Six windows logged within one second thus draw as six
    points, not a vertical line. Each run's points are joined by a line in the colour of
    its ``by`` group; thin vertical lines separate runs. A step logged twice in a run shows
    its latest value.

    Parameters
    ----------
    history : pandas.DataFrame
        Tidy history with at least the columns ``metric``, ``value``, ``step``, ``x`` and
        ``by``; ``run_id`` tells runs apart (without it each ``by`` group is one run), and
        ``version`` and ``source`` name the points (as from
        :func:`fraudkit.tracking.history.get_model_performance_history`).
    metric : str, default "average_precision"
        Metric to draw.
    x : str, default "timestamp"
        Column that orders the runs in time (``timestamp`` or ``step``).
    by : str, default "version"
        Column whose values each get their own colour (``version`` or ``source``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataValidationError
        When a column is missing or ``metric`` is absent from the history.
    """
    _require_columns(history, ["metric", "value", "step", x, by], "history")
    rows = history[history["metric"] == metric]
    if rows.empty:
        available = ", ".join(map(str, sorted(history["metric"].unique())))
        raise DataValidationError(
            f"history has no metric {metric!r}; available: {available or 'none'}"
        )
    run = "run_id" if "run_id" in rows else by
    order = ["step"] if x == "step" else ["step", x]
    # A value logged again at the same step (a run's metric re-logged with its model)
    # replaces the earlier one: one point per step.
    first = rows.groupby(run, sort=False)[x].min().sort_values(kind="stable")  # runs in time
    runs = [
        rows[rows[run] == key].sort_values(order).drop_duplicates("step", keep="last")
        for key in first.index
    ]
    n_points = sum(len(r) for r in runs)
    fig, ax = _axes(ax, figsize=(min(max(6.4, 2.5 + 0.32 * n_points), 16), 4.8))
    groups = rows[by].drop_duplicates().sort_values()
    colours = {key: f"C{i}" for i, key in enumerate(groups)}
    labels: list[str] = []
    for run_rows in runs:
        if labels:
            ax.axvline(len(labels) - 0.5, color="lightgrey", linewidth=0.8, zorder=0)
        positions = np.arange(len(labels), len(labels) + len(run_rows))
        key = run_rows[by].iloc[0]
        ax.plot(positions, run_rows["value"], marker="o", color=colours[key], label=f"{by} {key}")
        labels += [_point_label(run_rows, step) for step in run_rows["step"]]
    every = max(1, len(labels) // 40)  # past ~40 ticks, labels would overlap: thin them
    ax.set_xticks(range(0, len(labels), every), labels[::every], rotation=45, ha="right")
    ax.set_xlim(-0.5, len(labels) - 0.5)
    name = metric_label(metric)  # "AUPRC" says more than "average_precision"; keep the key too
    ax.set(
        xlabel="runs in time order, windows in order within a run",
        ylabel=metric if name == metric else f"{name} ({metric})",
    )
    ax.set_title(f"{name} by run and window")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))  # one legend entry per colour
    ax.legend(unique.values(), unique.keys(), fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_windows(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    *,
    x: str = "window",
    onset: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Metrics per monitoring window, with the drift onset marked.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per window, with column ``x`` and one column per metric.
    metrics : sequence of str
        Columns to draw, one line each.
    x : str, default "window"
        Column for the horizontal axis.
    onset : float, optional
        Window at which drift starts; drawn as a vertical dashed line.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    _require_columns(frame, [x, *metrics], "window frame")
    fig, ax = _axes(ax)
    ordered = frame.sort_values(x)
    for metric in metrics:
        ax.plot(ordered[x], ordered[metric], marker="o", label=metric)
    if onset is not None:
        ax.axvline(onset, color="red", linestyle="--", label="drift onset")
    ax.set(xlabel=x, ylabel="value", title="Metrics by window")
    ax.legend()
    return fig


def plot_estimate_against_realised(
    frame: pd.DataFrame,
    metric: str = "average_precision",
    *,
    x: str = "window",
    onset: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Label-free estimate of a metric, with its interval, against the realised value.

    Windows whose labels have arrived show both; the newest, still unlabelled windows show
    the estimate only. Windows where the estimate is unreliable (drift broke the
    score-to-probability map it rests on) are marked with a red cross.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per window with column ``x``, ``estimated_<metric>``,
        ``estimated_<metric>_lower`` and ``_upper``, optionally ``<metric>`` (NaN where
        labels are missing) and ``estimate_reliable`` (0/1).
    metric : str, default "average_precision"
        Metric name as in :func:`fraudkit.science.metrics.evaluate`.
    x : str, default "window"
        Column for the horizontal axis.
    onset : float, optional
        Window at which drift starts; drawn as a vertical dashed line.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    estimated = f"estimated_{metric}"
    _require_columns(frame, [x, estimated, f"{estimated}_lower", f"{estimated}_upper"], "frame")
    fig, ax = _axes(ax)
    ordered = frame.sort_values(x)
    ax.fill_between(
        ordered[x],
        ordered[f"{estimated}_lower"],
        ordered[f"{estimated}_upper"],
        alpha=0.2,
        label="estimate interval",
    )
    ax.plot(ordered[x], ordered[estimated], marker="o", linestyle="--", label="estimated")
    if metric in ordered:
        ax.plot(ordered[x], ordered[metric], marker="s", color="black", label="realised")
    if "estimate_reliable" in ordered:
        unreliable = ordered[ordered["estimate_reliable"] == 0]
        ax.scatter(
            unreliable[x], unreliable[estimated], marker="x", s=90, color="red",
            label="estimate unreliable", zorder=3,
        )  # fmt: skip
    if onset is not None:
        ax.axvline(onset, color="red", linestyle=":", label="drift onset")
    ax.set(xlabel=x, ylabel=metric, title=f"{metric}: label-free estimate and realised")
    ax.legend(fontsize="small")
    return fig


def plot_drift_heatmap(
    table: pd.DataFrame,
    *,
    label: str = "drift statistic",
    flagged: pd.DataFrame | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heatmap of a per-window, per-feature drift table: features down, windows across.

    Features (usually many: 29 for ``creditcard.csv``) run down the long vertical axis,
    one readable row each; windows (a handful) run across. Without ``ax``, the figure is
    sized to its content so that it reads at page width. Darker means more drift; the
    colour bar names the statistic and starts at 0 when every value is non-negative.
    Colours are relative to the largest value shown, so on undrifted traffic sampling noise
    looks dark too: ``flagged`` marks the cells a test found drifted (``●``) and fades the
    others, which says what the colours cannot.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows are windows, columns features, values a drift statistic or ``-log10 p``
        (per-window feature tables of :mod:`fraudkit.science.drift`, one row each).
    label : str, default "drift statistic"
        What the values are, written on the colour bar (e.g. "KS distance to reference").
    flagged : pandas.DataFrame of bool, optional
        Same windows and features as ``table``; True where the drift test (after its
        multiple-testing correction) found drift.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        The heatmap axes (features on y, windows on x) and its colour-bar axes.

    Raises
    ------
    DataValidationError
        ``table`` is empty, or ``flagged`` has other windows or features.
    """
    if table.empty:
        raise DataValidationError("drift table is empty; pass one row per window")
    if flagged is not None and not (
        flagged.index.equals(table.index) and flagged.columns.equals(table.columns)
    ):
        raise DataValidationError(
            "flagged must have the windows (rows) and features (columns) of table, in the "
            "same order; build both from the same drift results"
        )
    values = table.astype(float).T  # features down the long axis
    n_features, n_windows = values.shape
    size = (min(3.5 + 0.45 * n_windows, 10.0), min(1.6 + 0.26 * n_features, 24.0))
    fig, ax = _axes(ax, figsize=size)
    finite = values.to_numpy()[np.isfinite(values.to_numpy())]
    sns.heatmap(
        values,
        cmap="YlOrRd",
        vmin=0 if finite.size and finite.min() >= 0 else None,
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"label": label},
        # Every feature and window named (seaborn's default skips every other one), unless
        # there are too many to read anyway.
        yticklabels=True if n_features <= 60 else "auto",
        xticklabels=True if n_windows <= 30 else "auto",
        ax=ax,
    )
    xlabel = str(table.index.name or "window")
    if flagged is not None:
        found = flagged.astype(bool).T.to_numpy()
        # Fade the cells the test did not flag, so that the drift it found stands out and
        # noise, however dark on a relative scale, does not.
        veil = ListedColormap([(1, 1, 1, 0.65), (1, 1, 1, 0)])
        ax.pcolormesh(np.arange(n_windows + 1), np.arange(n_features + 1), found, cmap=veil)
        rows, columns = np.nonzero(found)
        for row, column in zip(rows, columns, strict=True):
            ax.text(column + 0.5, row + 0.5, "●", ha="center", va="center", fontsize=8)
        count = {0: "none", 1: "1 cell"}.get(len(rows), f"{len(rows)} cells")
        xlabel += f"\n● drift detected by the test ({count}); other cells faded"
    ax.tick_params(axis="y", labelrotation=0, labelsize=9)
    ax.tick_params(axis="x", labelrotation=0, labelsize=9)
    ax.set(xlabel=xlabel, ylabel=table.columns.name or "feature")
    ax.set_title(f"{label} by feature and window", fontsize=11)
    return fig


def plot_metric_difference(
    diff: float, ci_low: float, ci_high: float, *, metric: str, ax: Axes | None = None
) -> Figure:
    """A/B difference of one metric with its confidence interval, against zero.

    Parameters
    ----------
    diff : float
        Point estimate of the difference (B minus A, say).
    ci_low, ci_high : float
        Confidence interval bounds; ``ci_low <= diff <= ci_high``.
    metric : str
        Metric name, used for the axis label.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        The point with its interval as an error bar and a dashed line at zero; the title
        says whether the interval excludes zero.
    """
    if not ci_low <= diff <= ci_high:
        raise DataValidationError(
            f"expected ci_low <= diff <= ci_high, got {ci_low} <= {diff} <= {ci_high}"
        )
    fig, ax = _axes(ax, figsize=(6.4, 2.4))
    ax.errorbar(
        [diff], [0], xerr=[[diff - ci_low], [ci_high - diff]], fmt="o", capsize=6, label=metric
    )
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks([])
    verdict = "interval excludes 0" if ci_low > 0 or ci_high < 0 else "interval includes 0"
    ax.set(xlabel=f"difference in {metric}", title=f"{metric}: {diff:+.4f} ({verdict})")
    return fig
