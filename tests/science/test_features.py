"""Behavioural features: equal to a plain reference, no leakage, batch equals day by day."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudkit.core.exceptions import DataValidationError
from fraudkit.science.features import FeatureSpec, FeatureState, build_features, feature_frame
from fraudkit.science.schema import TransactionSchema

HOUR, DAY = 3600, 86_400
SPEC = FeatureSpec(windows=("1h", "1d"), label_windows=("1d", "2d"), label_delay="1d")
WINDOW_SECONDS = {"1h": HOUR, "1d": DAY, "2d": 2 * DAY}


def _schema(with_label_time: bool) -> TransactionSchema:
    return TransactionSchema(
        time="t",
        time_unit="s",
        label="y",
        amount="amount",
        entities=("card", "terminal"),
        label_time="known" if with_label_time else None,
    )


@st.composite
def transactions(draw: st.DrawFn) -> tuple[pd.DataFrame, TransactionSchema]:
    """Small files with ties in time, repeated entities, zero amounts and late labels."""
    n = draw(st.integers(1, 30))
    gaps = draw(st.lists(st.sampled_from([0, 1, 600, HOUR, 5000, DAY]), min_size=n, max_size=n))
    frame = pd.DataFrame(
        {
            "t": np.cumsum(gaps).astype(float),
            "card": draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n)),
            "terminal": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
            "amount": draw(
                st.lists(st.sampled_from([0.0, 0.1, 7.5, 120.25]), min_size=n, max_size=n)
            ),
            "y": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
        }
    )
    with_label_time = draw(st.booleans())
    if with_label_time:
        delays = draw(
            st.lists(
                st.sampled_from([0.0, 1.0, HOUR, DAY, 2 * DAY, math.nan]), min_size=n, max_size=n
            )
        )
        frame["known"] = frame["t"] + delays
    schema = _schema(with_label_time)
    return schema.validate(frame).frame, schema


def _reference(frame: pd.DataFrame, schema: TransactionSchema, spec: FeatureSpec) -> pd.DataFrame:
    """The definitions, row by row, as the module docstring states them."""
    t, amount, y = (frame[c].to_numpy() for c in ("t", "amount", "y"))
    known = frame["known"].to_numpy() if schema.label_time else t + WINDOW_SECONDS[spec.label_delay]
    known = np.where(np.isnan(known), np.inf, known)
    rows = []
    for i in range(len(frame)):
        row: dict[str, float] = {}
        for entity in spec.entities:
            keys = frame[entity].to_numpy()
            mine = [j for j in range(len(frame)) if keys[j] == keys[i]]
            for window in spec.windows:
                inside = [j for j in mine if j <= i and t[j] > t[i] - WINDOW_SECONDS[window]]
                total = sum(amount[j] for j in inside)
                mean = total / len(inside)
                row |= {
                    f"{entity}_count_{window}": len(inside),
                    f"{entity}_amount_sum_{window}": total,
                    f"{entity}_amount_mean_{window}": mean,
                    f"{entity}_amount_to_mean_{window}": amount[i] / mean if mean > 0 else 1.0,
                }
            before = [j for j in mine if j < i]
            row[f"{entity}_seconds_since_previous"] = t[i] - t[before[-1]] if before else np.nan
            for window in spec.label_windows:
                seen = [
                    j
                    for j in mine
                    if (known[j] < t[i] or (known[j] == t[i] and j < i))
                    and known[j] > t[i] - WINDOW_SECONDS[window]
                ]
                row[f"{entity}_fraud_rate_{window}"] = (
                    sum(y[j] for j in seen) / len(seen) if seen else 0.0
                )
                row[f"{entity}_known_labels_{window}"] = len(seen)
        rows.append(row)
    return pd.DataFrame(rows, columns=spec.for_schema(schema).names(), index=frame.index)


def _bits(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=np.float64).view(np.int64)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions())
def test_features_equal_the_row_by_row_definitions(case) -> None:
    frame, schema = case
    got = build_features(frame, schema, SPEC)
    expected = _reference(frame, schema, SPEC.for_schema(schema))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9, atol=1e-6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions(), st.data())
def test_no_later_row_and_no_unknown_label_changes_a_rows_features(case, data) -> None:
    """The leakage contract: mutate the future, and every earlier row's bits stay put."""
    frame, schema = case
    i = data.draw(st.integers(0, len(frame) - 1), label="row")
    before = build_features(frame, schema, SPEC).iloc[: i + 1]
    changed = frame.copy()
    t = changed["t"].to_numpy()
    later = np.arange(len(frame)) > i
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    changed.loc[later, "amount"] = rng.choice([0.0, 3.0, 999.0], later.sum())
    changed.loc[later, "y"] = rng.integers(0, 2, later.sum())
    changed.loc[later, "card"] = rng.choice(list("abcd"), later.sum())
    changed.loc[later, "t"] = t[later] + rng.integers(0, 2) * DAY  # still later, in order
    if schema.label_time:
        changed.loc[later, "known"] = changed.loc[later, "t"] + rng.choice([0.0, DAY], later.sum())
        known_at = np.nan_to_num(frame["known"].to_numpy(), nan=np.inf)
    else:
        known_at = t + DAY
    # Known to row i: before its instant, or at it by a row before it in the file.
    known = (known_at < t[i]) | ((known_at == t[i]) & (np.arange(len(frame)) < i))
    unknown_yet = ~known & ~later
    unknown_yet[i] = True  # its own label is never known to itself
    changed.loc[unknown_yet, "y"] = 1 - changed.loc[unknown_yet, "y"]
    after = build_features(schema.validate(changed).frame, schema, SPEC).iloc[: i + 1]
    np.testing.assert_array_equal(_bits(before), _bits(after))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions(), st.integers(1, 4))
def test_day_by_day_equals_one_pass_bit_for_bit(case, days_per_update) -> None:
    frame, schema = case
    batch = build_features(frame, schema, SPEC)
    state = FeatureState(schema, SPEC)
    chunks = (frame["t"] // (days_per_update * DAY)).to_numpy()
    parts = [state.update(frame[chunks == chunk]) for chunk in np.unique(chunks)]
    np.testing.assert_array_equal(_bits(pd.concat(parts)), _bits(batch))


def test_the_state_keeps_only_what_later_days_can_see() -> None:
    schema = _schema(with_label_time=False)
    days = 40
    frame = pd.DataFrame(
        {
            "t": np.arange(days * 24) * HOUR * 1.0,
            "card": ["a", "b", "c"] * (days * 8),
            "terminal": 0,
            "amount": 1.0,
            "y": 0,
        }
    )
    state = FeatureState(schema, FeatureSpec(label_delay="1d"))
    for day in range(days):
        state.update(frame[frame["t"] // DAY == day])
    assert state.history is not None
    # 30 days of rows, plus the labels still to come: well under the 40 days fed.
    span = (state.history["t"].max() - state.history["t"].min()) / DAY
    assert span <= 31
    assert len(state.history) < len(frame)


def test_feature_names_and_the_spec_round_trip() -> None:
    schema = _schema(with_label_time=False)
    spec = FeatureSpec().for_schema(schema)
    assert spec.entities == ("card", "terminal")
    assert "card_count_30d" in spec.names() and "terminal_fraud_rate_7d" in spec.names()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(DataValidationError, match="not a duration"):
        FeatureSpec(windows=("a week",))
    with pytest.raises(DataValidationError, match="unknown feature setting"):
        FeatureSpec.from_dict({"window": ["1h"]})


def test_unordered_frames_and_missing_entities_are_refused() -> None:
    schema = _schema(with_label_time=False)
    frame = pd.DataFrame({"t": [5.0, 1.0], "card": "a", "terminal": 0, "amount": 1.0, "y": 0})
    with pytest.raises(DataValidationError, match="not in time order"):
        build_features(frame, schema)
    with pytest.raises(DataValidationError, match="entity column 'terminal'"):
        build_features(schema.validate(frame).frame.drop(columns="terminal"), schema)


def test_feature_frame_puts_the_raw_columns_beside_the_features() -> None:
    schema = _schema(with_label_time=False)
    frame = schema.validate(
        pd.DataFrame({"t": [1.0, 2.0], "card": "a", "terminal": 0, "amount": [1.0, 3.0], "y": 0})
    ).frame
    wide = feature_frame(frame, schema, SPEC)
    assert list(wide.columns[:1]) == ["amount"]
    assert wide["card_amount_mean_1h"].tolist() == [1.0, 2.0]
    assert wide["card_amount_to_mean_1h"].tolist() == [1.0, 1.5]
