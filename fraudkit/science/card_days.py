"""Transactions grouped by day and card: what an investigator's review queue counts.

Alert budgets count cards, not rows: a card alerted five times in a day is one card to
call. :class:`CardDays` numbers the (day, card) pairs of a set of transactions so that a
per-pair maximum or sum is one ``reduceat``, and ranks the pairs within each day.
:mod:`fraudkit.science.alerts` builds Card Precision@k and the alert load on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fraudkit.core.exceptions import DataValidationError

__all__ = ["CardDays"]


def _codes(name: str, values: ArrayLike, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``values`` in sorted order of the values, and the sorted values."""
    array = np.asarray(values).ravel()
    if array.size != n:
        raise DataValidationError(
            f"{name} has {array.size:,} values for {n:,} transactions; pass one per transaction"
        )
    try:
        codes, uniques = pd.factorize(array, sort=True)
    except TypeError as error:
        raise DataValidationError(
            f"{name} must hold values of one comparable type: {error}"
        ) from None
    missing = codes < 0
    if missing.any():
        raise DataValidationError(
            f"{name} row {int(np.argmax(missing))} is missing ({int(missing.sum())} rows); "
            "drop those transactions or fill them in"
        )
    return codes.astype(np.int64), np.asarray(uniques)


@dataclass(frozen=True)
class CardDays:
    """The (day, card) pairs of a set of transactions, and their ranking within each day.

    Pairs are numbered in (day, card) order; ``order`` and ``starts`` gather the rows of
    each pair, so a per-pair maximum or sum is one ``reduceat``.
    """

    days: np.ndarray  # the distinct days, sorted
    pair_day: np.ndarray  # day code of each pair
    pair_card: np.ndarray  # card code of each pair (ascending card id breaks ties)
    order: np.ndarray  # rows sorted by pair
    starts: np.ndarray  # first position in ``order`` of each pair
    by_card: bool

    @classmethod
    def of(cls, days: ArrayLike, card_ids: ArrayLike | None, n: int) -> CardDays:
        """The pairs of ``n`` transactions.

        Parameters
        ----------
        days : array-like of shape (n,)
            Each transaction's day (any sortable value: day numbers, dates).
        card_ids : array-like of shape (n,) or None
            Each transaction's card; None makes each row its own card.
        n : int
            Number of transactions.

        Returns
        -------
        CardDays

        Raises
        ------
        DataValidationError
            ``days`` or ``card_ids`` do not hold ``n`` comparable, non-missing values.
        """
        day_code, day_values = _codes("days", days, n)
        if card_ids is None:
            card_code = np.arange(n, dtype=np.int64)
        else:
            card_code, _ = _codes("card_ids", card_ids, n)
        width = int(card_code.max()) + 1
        key = day_code * width + card_code
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        pair_key = ordered[starts]
        return cls(
            day_values, pair_key // width, pair_key % width, order, starts, card_ids is not None
        )

    def reduce(self, ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        """``ufunc`` over each pair's rows of ``values``.

        Parameters
        ----------
        ufunc : numpy.ufunc
            E.g. ``np.maximum`` (a card's highest score) or ``np.add``.
        values : numpy.ndarray
            One value per transaction on the last axis.

        Returns
        -------
        numpy.ndarray
            One value per pair on the last axis, in pair order.
        """
        return ufunc.reduceat(values[..., self.order], self.starts, axis=-1)

    def rank(self, pair_score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs by day, most suspicious first; whether each is reviewed; cards per day.

        Ties in score are broken by card id, as
        :func:`fraudkit.science.metrics.card_precision_at_k` breaks them.

        Parameters
        ----------
        pair_score : numpy.ndarray
            One score per pair (e.g. from :meth:`reduce` with ``np.maximum``).
        k : int
            Cards reviewed a day.

        Returns
        -------
        tuple of numpy.ndarray
            Pair indices ranked by day then score, whether each ranked pair is among its
            day's first ``k``, and the number of cards of each day.
        """
        ranked = np.lexsort((self.pair_card, -pair_score, self.pair_day))
        n_cards = np.bincount(self.pair_day, minlength=self.days.size)
        day_start = np.repeat(np.cumsum(n_cards) - n_cards, n_cards)
        reviewed = np.arange(ranked.size) - day_start < k
        return ranked, reviewed, n_cards
