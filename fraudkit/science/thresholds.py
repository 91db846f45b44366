"""Choosing an operating threshold on labelled scores.

A calibrated model (:func:`fraudkit.science.models.train_model`) gives fraud probabilities;
an alert needs a cut. :func:`choose_threshold` picks it on labelled validation scores by a
precision target, a recall target or the least expected cost (review cost per alert plus
the amount of every missed fraud), and returns a :class:`ThresholdChoice` with how the
threshold performs there and the frauds it rests on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fraudkit.core.exceptions import DataValidationError, ModelError
from fraudkit.science.metrics import validate_amounts, validate_labels_and_scores

__all__ = ["DEFAULT_THRESHOLD_RULE", "THRESHOLD_RULES", "ThresholdChoice", "choose_threshold"]

THRESHOLD_RULES: tuple[str, ...] = ("precision", "recall", "cost")
#: The rule :func:`choose_threshold` applies when none is given.
DEFAULT_THRESHOLD_RULE = "precision"


@dataclass(frozen=True)
class ThresholdChoice:
    """An operating threshold and how it performs on the data it was chosen on.

    Attributes
    ----------
    threshold : float
        Alert when ``score >= threshold``.
    rule : str
        ``"precision"``, ``"recall"`` or ``"cost"``.
    target : float or None
        The precision or recall target (None for the cost rule).
    precision, recall : float
        Fraud precision and recall at ``threshold``.
    expected_cost : float or None
        Review cost of the alerts plus the amount of missed frauds (None without amounts).
    n_fraud : int
        Frauds in the data the threshold was chosen on: the evidence behind it.
    fallback : bool
        No threshold reached the target; this is the best achievable operating point.
    note : str or None
        Why the choice is a fallback, in words (None otherwise).
    """

    threshold: float
    rule: str
    target: float | None
    precision: float
    recall: float
    expected_cost: float | None = None
    n_fraud: int = 0
    fallback: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


def _operating_points(
    y: np.ndarray, s: np.ndarray, amount: np.ndarray | None, review_cost: float
) -> pd.DataFrame:
    """Precision, recall and cost at every distinct threshold, highest threshold first.

    The first row is "no alerts" (a threshold just above the top score), so the cost rule
    can choose not to alert at all.
    """
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    alerts = np.r_[0, last_of_tie + 1]
    caught = np.r_[0, np.cumsum(y_sorted)[last_of_tie]]
    points = pd.DataFrame(
        {
            "threshold": np.r_[np.nextafter(s_sorted[0], np.inf), s_sorted[last_of_tie]],
            "precision": np.divide(caught, alerts, out=np.zeros(alerts.size), where=alerts > 0),
            "recall": caught / y.sum(),
        }
    )
    if amount is not None:
        caught_amount = np.r_[0.0, np.cumsum(amount[order] * y_sorted)[last_of_tie]]
        points["expected_cost"] = review_cost * alerts + amount[y == 1].sum() - caught_amount
    return points


def choose_threshold(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    rule: str = DEFAULT_THRESHOLD_RULE,
    target: float = 0.9,
    amount: ArrayLike | None = None,
    review_cost: float = 5.0,
) -> ThresholdChoice:
    """Choose an operating threshold on labelled (validation) scores.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 0 or 1, both present.
    scores : array-like of shape (n,)
        Fraud scores.
    rule : {"precision", "recall", "cost"}, default "precision"
        ``"precision"``: the lowest threshold whose precision reaches ``target`` (the most
        recall at that precision). ``"recall"``: the highest threshold whose recall
        reaches ``target`` (the fewest alerts for that recall). ``"cost"``: the threshold
        of least expected cost (``review_cost`` per alert plus the amount of every missed
        fraud); needs ``amount``.
    target : float, default 0.9
        Precision or recall target in (0, 1]; ignored by the cost rule.
    amount : array-like of shape (n,), optional
        Transaction amounts; required by the cost rule, and adds ``expected_cost`` to
        the result of the other rules.
    review_cost : float, default 5.0
        Cost of reviewing one alert.

    Returns
    -------
    ThresholdChoice
        When no threshold reaches a precision target (few frauds, or a weak model), the
        operating point of highest precision (and, among those, most recall), with
        ``fallback=True`` and a ``note`` saying so, rather than an error.

    Raises
    ------
    ModelError
        For an unknown rule, a target outside (0, 1] or the cost rule without ``amount``.
    DataValidationError
        For invalid labels/scores/amounts or labels of a single class.
    """
    if rule not in THRESHOLD_RULES:
        raise ModelError(
            f"unknown threshold rule {rule!r}; choose one of: {', '.join(THRESHOLD_RULES)}"
        )
    if rule != "cost" and not 0.0 < target <= 1.0:
        raise ModelError(f"{rule} target must lie in (0, 1], got {target!r}")
    if rule == "cost" and amount is None:
        raise ModelError("the cost rule needs the transaction amounts: pass amount=df['Amount']")
    y, s = validate_labels_and_scores(y_true, scores)
    if np.unique(y).size < 2:
        raise DataValidationError(
            "choosing a threshold needs both legitimate (0) and fraud (1) labels"
        )
    amounts = None if amount is None else validate_amounts(amount, y.size)
    points = _operating_points(y, s, amounts, review_cost)
    note = None
    if rule == "cost":
        best = points.iloc[int(np.argmin(points["expected_cost"].to_numpy()))]
    else:
        reached = points[points[rule] >= target]
        if reached.empty:
            # Only a precision target can be out of reach (recall 1 always is). Rows run
            # from the highest threshold down: the last row of top precision has the most
            # recall.
            reached = points[points[rule] == points[rule].max()]
            note = (
                f"no threshold reaches {rule} {target:g} on {int(y.sum())} frauds; using the "
                f"best achievable operating point ({rule} {reached[rule].iloc[0]:.3f}). "
                "Lower the target, or choose on more data"
            )
        # Rows run from the highest threshold down. Precision rule: the lowest threshold
        # (most recall); recall rule: the highest (fewest alerts).
        best = reached.iloc[-1] if rule == "precision" else reached.iloc[0]
    return ThresholdChoice(
        threshold=float(best["threshold"]),
        rule=rule,
        target=None if rule == "cost" else float(target),
        precision=float(best["precision"]),
        recall=float(best["recall"]),
        expected_cost=float(best["expected_cost"]) if amounts is not None else None,
        n_fraud=int(y.sum()),
        fallback=note is not None,
        note=note,
    )
