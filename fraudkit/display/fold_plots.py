"""Plots of rolling (prequential) validation: each model's metrics fold by fold.

A single time split is one draw; the folds of
:func:`fraudkit.science.prequential.run_prequential` are several, and how much a model's
numbers move from one test period to the next is what a reader needs to see before
believing a ranking. The plot follows the conventions of :mod:`fraudkit.display.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fraudkit.core.exceptions import DataValidationError
from fraudkit.display.glossary import label as metric_label

__all__ = ["plot_fold_spread"]


def plot_fold_spread(
    folds: pd.DataFrame,
    metrics: Sequence[str] = ("average_precision", "card_precision_at_k"),
    *,
    model: str = "model",
    fold: str = "fold",
) -> Figure:
    """Each model's metric on every fold, with its mean across the folds.

    Models are scored on the same folds, so their lines are paired: a model above another
    on every fold is a firmer ranking than the same means with crossing lines.

    Parameters
    ----------
    folds : pandas.DataFrame
        One row per model and fold, with columns ``model``, ``fold`` and each of
        ``metrics`` (the ``folds`` table of a prequential result).
    metrics : sequence of str, default ("average_precision", "card_precision_at_k")
        One panel per metric, side by side; metrics absent from ``folds`` are skipped.
    model, fold : str
        Names of the model and fold columns.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per metric: a line per model across the folds and a dashed line at its
        mean.

    Raises
    ------
    DataValidationError
        When ``folds`` lacks the model or fold column, or holds none of ``metrics``.
    """
    missing = [column for column in (model, fold) if column not in folds.columns]
    shown = [name for name in metrics if name in folds.columns]
    if missing or not shown:
        raise DataValidationError(
            f"folds needs the columns {model!r}, {fold!r} and one of {list(metrics)}; "
            f"it has {list(folds.columns)}: pass the folds table of a prequential result"
        )
    fig, axes = plt.subplots(
        1, len(shown), figsize=(5.2 * len(shown), 4.0), layout="constrained", squeeze=False
    )
    for ax, name in zip(axes[0], shown, strict=True):
        for i, (model_name, rows) in enumerate(folds.groupby(model, sort=False)):
            ordered = rows.sort_values(fold)
            colour = f"C{i}"
            ax.plot(ordered[fold], ordered[name], marker="o", color=colour, label=model_name)
            ax.axhline(float(np.nanmean(ordered[name])), color=colour, linestyle="--", lw=1)
        ax.set(xlabel="fold (test period)", ylabel=metric_label(name), title=metric_label(name))
        ax.set_xticks(sorted(folds[fold].unique()))
    axes[0][0].legend(title="model (dashed: mean)", fontsize="small")
    return cast(Figure, fig)
