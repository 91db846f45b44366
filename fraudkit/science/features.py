"""Behavioural features, point in time: what each entity did before each transaction.

For every entity key of the schema (a card, a customer, a terminal) and every window
(by default 1 h, 1 d, 7 d and 30 d), :func:`build_features` gives each transaction:

- ``{entity}_count_{w}``: the entity's transactions in the window ``(t - w, t]``, this one
  included;
- ``{entity}_amount_sum_{w}`` and ``{entity}_amount_mean_{w}`` of those transactions;
- ``{entity}_amount_to_mean_{w}``: this amount over that mean (1 when the window's
  amounts are all 0);
- ``{entity}_seconds_since_previous``: since the entity's previous transaction (empty for
  its first);
- ``{entity}_fraud_rate_{w}`` and ``{entity}_known_labels_{w}`` for the label windows:
  the share of fraud among the entity's labels that became known in ``(t - w, t]``,
  before this transaction (0 when none did).

**Point in time.** A transaction at time ``t`` sees the entity's rows up to and including
itself in the file's time order (rows at the same instant that come later in the file are
later), and only the labels known before it: a label becomes known at its ``label_time``
or, without that column, ``label_delay`` after its transaction. So a row's features are
bit-identical whatever happens to any later row or to any label not yet known at its
time. Amounts are summed as whole millionths of the currency unit, so that a window's sum
is the exact decimal sum of its amounts (rounded to a millionth), whatever rows lie
outside it, and one pass over a file equals the day-by-day :class:`FeatureState`
exactly.

All of it is integer arithmetic on sorted positions (``numpy.searchsorted``): no Python
loop over rows or entities.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from fraudkit.core.exceptions import DataValidationError
from fraudkit.science.schema import TransactionSchema

__all__ = [
    "DEFAULT_LABEL_DELAY",
    "DEFAULT_LABEL_WINDOWS",
    "DEFAULT_WINDOWS",
    "FeatureSpec",
    "FeatureState",
    "build_features",
    "duration_ns",
    "feature_frame",
]

DEFAULT_WINDOWS: tuple[str, ...] = ("1h", "1d", "7d", "30d")
# The Handbook's terminal-risk windows; 1 d catches a compromised terminal soonest.
DEFAULT_LABEL_WINDOWS: tuple[str, ...] = ("1d", "7d", "30d")
# Chargebacks take weeks; the Handbook waits a week before it trusts a label.
DEFAULT_LABEL_DELAY = "7d"
# Amounts are summed as integers in millionths of the currency unit: exact decimal sums.
_FIXED_POINT = 1_000_000
# Beyond 2**53 millionths an amount is no longer an exact integer in float64.
_LARGEST_AMOUNT = 2**53 / _FIXED_POINT
_NS_PER_SECOND = 1_000_000_000
# The time at which a label that is never known becomes known.
_NEVER = np.iinfo(np.int64).max
# Window lengths: a number and a unit, as in 30min, 1h, 7d.
_UNITS = {"s": _NS_PER_SECOND, "min": 60 * _NS_PER_SECOND, "h": 3600 * _NS_PER_SECOND}
_UNITS["d"] = 24 * _UNITS["h"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|h|d)\s*$")


@dataclass(frozen=True)
class FeatureSpec:
    """The definitions of the behavioural features: they travel with the logged model.

    Parameters
    ----------
    entities : tuple of str
        Entity key columns to aggregate over; empty means the schema's ``entities``.
    windows : tuple of str
        Windows of the count and amount features, as pandas Timedelta strings.
    label_windows : tuple of str
        Windows of the fraud-rate features; empty for none.
    label_delay : str
        How long after a transaction its label is known, when the schema has no
        ``label_time`` column.
    """

    entities: tuple[str, ...] = ()
    windows: tuple[str, ...] = DEFAULT_WINDOWS
    label_windows: tuple[str, ...] = DEFAULT_LABEL_WINDOWS
    label_delay: str = DEFAULT_LABEL_DELAY

    def __post_init__(self) -> None:
        for window in (*self.windows, *self.label_windows, self.label_delay):
            duration_ns(window)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FeatureSpec:
        """Return the spec that :meth:`to_dict` wrote."""
        known = {"entities", "windows", "label_windows", "label_delay"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataValidationError(
                f"unknown feature setting(s) {', '.join(unknown)}; the settings are "
                f"{', '.join(sorted(known))}"
            )
        return cls(
            entities=tuple(values.get("entities", ())),
            windows=tuple(values.get("windows", DEFAULT_WINDOWS)),
            label_windows=tuple(values.get("label_windows", DEFAULT_LABEL_WINDOWS)),
            label_delay=str(values.get("label_delay", DEFAULT_LABEL_DELAY)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain, loggable values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def for_schema(self, schema: TransactionSchema) -> FeatureSpec:
        """This spec with its entities filled in from ``schema`` when empty."""
        return self if self.entities else replace(self, entities=schema.entities)

    def names(self) -> list[str]:
        """The feature columns :func:`build_features` returns, in order."""
        names: list[str] = []
        for entity in self.entities:
            for window in self.windows:
                names += [f"{entity}_{kind}_{window}" for kind in _AMOUNT_KINDS]
            names.append(f"{entity}_seconds_since_previous")
            for window in self.label_windows:
                names += [f"{entity}_fraud_rate_{window}", f"{entity}_known_labels_{window}"]
        return names


_AMOUNT_KINDS = ("count", "amount_sum", "amount_mean", "amount_to_mean")


def duration_ns(window: str) -> int:
    """A feature spec's duration (``30min``, ``1h``, ``7d``) in nanoseconds.

    Parameters
    ----------
    window : str
        A number and one of the units s, min, h or d.

    Returns
    -------
    int

    Raises
    ------
    DataValidationError
        ``window`` is not such a duration, or is not longer than zero.
    """
    match = _DURATION.match(str(window))
    if not match:
        raise DataValidationError(
            f"window {window!r} is not a duration; write a number and s, min, h or d, "
            "as in 30min, 1h or 7d"
        )
    value = round(float(match.group(1)) * _UNITS[match.group(2)])
    if value <= 0:
        raise DataValidationError(f"window {window!r} must be longer than zero")
    return value


def build_features(
    frame: pd.DataFrame, schema: TransactionSchema, spec: FeatureSpec | None = None
) -> pd.DataFrame:
    """Compute the behavioural features of every row of a checked frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        Transactions that passed ``schema`` (:meth:`TransactionSchema.validate`), in time
        order.
    schema : TransactionSchema
        Its schema: time, amount, label, label time and entity columns.
    spec : FeatureSpec, optional
        Entities and windows; by default every entity of the schema and the default
        windows.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``frame`` (same index), the columns of ``spec.names()``.

    Raises
    ------
    DataValidationError
        If the frame is not in time order, an entity column is missing, or an amount is
        too large for exact sums in millionths (about 9e9).
    """
    spec = (spec or FeatureSpec()).for_schema(schema)
    times = schema.timestamps(frame)
    if np.any(np.diff(times) < 0):
        raise DataValidationError(
            "transactions are not in time order; check them with TransactionSchema.validate "
            "first, which sorts them"
        )
    amounts = _fixed_point(frame[schema.amount].to_numpy(dtype=np.float64))
    events = None
    if spec.label_windows and schema.label in frame.columns:
        known_at = _label_known_at(frame, schema, spec, times)
        events = _LabelEvents.of(times, known_at, frame[schema.label].to_numpy(dtype=np.int64))
    columns: dict[str, np.ndarray] = {}
    for entity in spec.entities:
        if entity not in frame.columns:
            raise DataValidationError(
                f"entity column {entity!r} is not in the frame; the columns are "
                f"{', '.join(map(str, frame.columns))}"
            )
        groups = _Groups(frame[entity])
        for window in spec.windows:
            columns |= _amount_window(groups, times, amounts, entity, window)
        columns[f"{entity}_seconds_since_previous"] = groups.since_previous(times)
        if events is not None:
            columns |= _label_windows(groups, times, events, entity, spec.label_windows)
        else:  # unlabelled rows (scoring): no label is known
            columns |= {
                f"{entity}_{kind}_{window}": np.zeros(len(frame))
                for window in spec.label_windows
                for kind in ("fraud_rate", "known_labels")
            }
    return pd.DataFrame(columns, index=frame.index, columns=spec.names())


def _fixed_point(amounts: np.ndarray) -> np.ndarray:
    """Amounts in whole millionths. Prefix sums of int64 may wrap around; their
    differences, the window sums, stay exact (modular arithmetic) while each fits."""
    if len(amounts) and amounts.max() >= _LARGEST_AMOUNT:
        raise DataValidationError(
            f"an amount of {amounts.max():.3g} is past what the exact window sums hold "
            f"({_LARGEST_AMOUNT:.3g}); express amounts in a larger currency unit"
        )
    return np.round(amounts * _FIXED_POINT).astype(np.int64)


def _label_known_at(
    frame: pd.DataFrame, schema: TransactionSchema, spec: FeatureSpec, times: np.ndarray
) -> np.ndarray:
    """When each label became known, in nanoseconds; _NEVER for never (yet)."""
    if schema.label_time and schema.label_time in frame.columns:
        known = schema.timestamps(frame, schema.label_time)
        return np.where(frame[schema.label_time].isna().to_numpy(), _NEVER, known)
    return times + duration_ns(spec.label_delay)


class _Groups:
    """The rows of a frame grouped by an entity key, each group in time order.

    Every row has a position in the frame (time order, ties in file order). The rows are
    re-sorted by ``(group, position)``, and every computation runs in that order: the
    integer key ``group * stride + position`` then finds any position range of a group
    with one ``searchsorted`` of sorted queries, and :meth:`scatter` puts the results back.
    """

    def __init__(self, keys: pd.Series) -> None:
        codes, _ = pd.factorize(keys, sort=False)
        self.n = len(codes)
        self.stride = self.n + 2
        self.codes = codes.astype(np.int64)
        self.order = np.argsort(self.codes, kind="stable")
        self.base = self.codes[self.order] * self.stride
        self.keys = self.base + self.order
        self.rank = np.arange(self.n)
        # Each sorted row's group starts at the first sorted row of the same code.
        first = np.ones(self.n, dtype=bool)
        first[1:] = self.base[1:] != self.base[:-1]
        self.start = np.maximum.accumulate(np.where(first, self.rank, 0))

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Values computed in sorted order, back in the frame's order."""
        out = np.empty(self.n, dtype=np.float64)
        out[self.order] = values
        return out

    def since_previous(self, times: np.ndarray) -> np.ndarray:
        """Seconds since the same group's previous row; NaN for a group's first row."""
        gaps = np.full(self.n, np.nan)
        later = self.rank > self.start
        sorted_times = times[self.order]
        gaps[later] = (sorted_times[later] - sorted_times[self.rank[later] - 1]) / _NS_PER_SECOND
        return self.scatter(gaps)

    def count_events(
        self, event_position: np.ndarray, weights: np.ndarray, query: np.ndarray, *, inclusive: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per sorted row: its group's events at positions ``< query`` (``<=`` when
        ``inclusive``), and the sum of their ``weights``; each row is one event."""
        keys = self.codes * self.stride + np.minimum(event_position, self.n + 1)
        order = np.argsort(keys, kind="stable")
        prefix = np.concatenate([[0], np.cumsum(weights[order])])
        side = "right" if inclusive else "left"
        stop = np.searchsorted(keys[order], self.base + query[self.order], side=side)
        # Every group holds as many events as rows: its events start where its rows do.
        return (stop - self.start).astype(np.float64), prefix[stop] - prefix[self.start]


def _amount_window(
    groups: _Groups, times: np.ndarray, amounts: np.ndarray, entity: str, window: str
) -> dict[str, np.ndarray]:
    # The first position whose time is inside (t - w, t]; the window ends at the row.
    low = np.searchsorted(times, times - duration_ns(window), side="right")
    start = np.searchsorted(groups.keys, groups.base + low[groups.order], side="left")
    sorted_amounts = amounts[groups.order]
    prefix = np.concatenate([[0], np.cumsum(sorted_amounts)])
    count = groups.rank + 1 - start
    mean = (prefix[groups.rank + 1] - prefix[start]) / _FIXED_POINT / count
    # An amount of 0 in a window whose amounts are all 0 is as usual as can be: 1.
    ratio = np.divide(sorted_amounts / _FIXED_POINT, mean, out=np.ones(groups.n), where=mean > 0)
    return {
        f"{entity}_count_{window}": groups.scatter(count),
        f"{entity}_amount_sum_{window}": groups.scatter(mean * count),
        f"{entity}_amount_mean_{window}": groups.scatter(mean),
        f"{entity}_amount_to_mean_{window}": groups.scatter(ratio),
    }


@dataclass(frozen=True)
class _LabelEvents:
    """Where each label becomes known, as positions among the rows (window-independent).

    A label known at ``k`` is seen from ``seen_from``: the first position whose (time,
    position) follows (``k``, its own position), so after every row at an earlier instant
    and after itself. ``rank`` counts the label times below ``k`` (exact comparisons with
    any ``t - w`` through ``searchsorted`` on ``grid``).
    """

    labels: np.ndarray
    seen_from: np.ndarray
    grid: np.ndarray
    rank: np.ndarray

    @classmethod
    def of(cls, times: np.ndarray, known_at: np.ndarray, labels: np.ndarray) -> _LabelEvents:
        first_equal = np.searchsorted(times, known_at, side="left")
        after_equal = np.searchsorted(times, known_at, side="right")
        seen_from = np.minimum(np.maximum(np.arange(len(times)) + 1, first_equal), after_equal)
        grid = np.sort(known_at)
        return cls(labels, seen_from, grid, np.searchsorted(grid, known_at, side="left"))


def _label_windows(
    groups: _Groups, times: np.ndarray, events: _LabelEvents, entity: str, windows: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Per window: the share of fraud among the labels of the row's group that became
    known in ``(t - w, t]``, before the row, and how many they are."""
    positions = np.arange(groups.n)
    seen, seen_frauds = groups.count_events(
        events.seen_from, events.labels, positions, inclusive=True
    )
    columns = {}
    for window in windows:
        # Labels known at or before t - w left the window (and were all seen by then).
        limit = np.searchsorted(events.grid, times - duration_ns(window), side="right")
        early, early_frauds = groups.count_events(
            events.rank, events.labels, limit, inclusive=False
        )
        known = seen - early
        rate = np.divide(seen_frauds - early_frauds, known, out=np.zeros(groups.n), where=known > 0)
        columns[f"{entity}_fraud_rate_{window}"] = groups.scatter(rate)
        columns[f"{entity}_known_labels_{window}"] = groups.scatter(known)
    return columns


@dataclass
class FeatureState:
    """Day-by-day features: each call sees the new rows and the history it needs.

    ``state.update(day)`` returns the features of ``day``'s rows, equal to what
    :func:`build_features` gives them in one pass over the whole file, and keeps only the
    rows later days can still see: the last window's rows, labels still to become known
    inside a label window, and each entity's last row.

    Parameters
    ----------
    schema : TransactionSchema
        The schema of the rows.
    spec : FeatureSpec, optional
        The features; by default as :func:`build_features`.
    """

    schema: TransactionSchema
    spec: FeatureSpec | None = None
    history: pd.DataFrame | None = None

    def update(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Features of ``rows`` (checked, in time order, after every earlier update)."""
        spec = (self.spec or FeatureSpec()).for_schema(self.schema)
        if self.history is not None and len(rows) and len(self.history):
            first = self.schema.timestamps(rows)[0]
            if first < self.schema.timestamps(self.history)[-1]:
                raise DataValidationError(
                    "these rows start before the last update's end; feed the days in order"
                )
        combined = rows if self.history is None else pd.concat([self.history, rows])
        combined = combined.reset_index(drop=True)
        features = build_features(combined, self.schema, spec)
        self.history = self._still_needed(combined, spec)
        out = features.iloc[len(combined) - len(rows) :]
        return out.set_axis(rows.index)

    def _still_needed(self, combined: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
        times = self.schema.timestamps(combined)
        now = times[-1] if len(times) else 0
        horizon = max(duration_ns(w) for w in (*spec.windows, *spec.label_windows))
        keep = times > now - horizon
        # Labels still to arrive, or arrived inside a label window; never known: dropped.
        known_at = _label_known_at(combined, self.schema, spec, times)
        label_horizon = max((duration_ns(w) for w in spec.label_windows), default=0)
        keep |= (known_at > now - label_horizon) & (known_at < _NEVER)
        for entity in spec.entities:
            keep |= ~combined[entity].duplicated(keep="last").to_numpy()
        return combined[keep]


def feature_frame(
    frame: pd.DataFrame, schema: TransactionSchema, spec: FeatureSpec | None = None
) -> pd.DataFrame:
    """The schema's feature columns and the behavioural features, side by side."""
    features = build_features(frame, schema, spec)
    return pd.concat([frame[schema.feature_columns], features], axis=1)
