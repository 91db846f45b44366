from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fraudkit.core.exceptions import DataValidationError
from fraudkit.display.fold_plots import plot_fold_spread


def _folds() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["logistic"] * 3 + ["hgb"] * 3,
            "fold": [0, 1, 2] * 2,
            "average_precision": [0.5, 0.6, 0.55, 0.7, 0.75, 0.72],
            "card_precision_at_k": [0.2, 0.25, 0.22, 0.3, 0.35, 0.31],
        }
    )


def test_one_panel_per_metric_with_a_line_and_a_mean_per_model() -> None:
    plt.close("all")
    fig = plot_fold_spread(_folds())
    assert plt.get_fignums() == [fig.number]
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    means = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_label() for line in lines] == ["logistic", "hgb"]
    np.testing.assert_allclose(lines[1].get_ydata(), [0.7, 0.75, 0.72])
    assert sorted(float(line.get_ydata()[0]) for line in means) == pytest.approx([0.55, 0.7233333])
    assert ax.get_ylabel() == "AUPRC" and fig.axes[1].get_ylabel() == "card precision@k"
    plt.close(fig)


def test_metrics_absent_are_skipped_and_a_wrong_table_is_refused() -> None:
    fig = plot_fold_spread(_folds().drop(columns="card_precision_at_k"))
    assert len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(DataValidationError, match="folds table of a prequential result"):
        plot_fold_spread(_folds().drop(columns="fold"))
    with pytest.raises(DataValidationError, match="one of"):
        plot_fold_spread(_folds(), metrics=("roc_auc",))
