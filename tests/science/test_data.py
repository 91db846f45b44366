"""Tests for fraudkit.science.data: schema, loading, splits, windows, fingerprint."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudkit.core.exceptions import ConfigurationError, DataValidationError
from fraudkit.core.schema import (
    AMOUNT_COLUMN,
    FEATURE_COLUMNS,
    KAGGLE_COLUMNS,
    LABEL_COLUMN,
    TIME_COLUMN,
    V_COLUMNS,
)
from fraudkit.science.data import (
    DataSplit,
    data_fingerprint,
    load_transactions,
    require_columns,
    time_split,
    time_windows,
    validate_transactions,
)
from fraudkit.science.simulate import TransactionSimulator

# Header of the public ULB/Kaggle creditcard.csv, verbatim (its names are quoted).
KAGGLE_HEADER = (
    '"Time","V1","V2","V3","V4","V5","V6","V7","V8","V9","V10","V11","V12","V13","V14",'
    '"V15","V16","V17","V18","V19","V20","V21","V22","V23","V24","V25","V26","V27","V28",'
    '"Amount","Class"'
)


# --- schema and basic properties -------------------------------------------------------


def test_columns_equal_kaggle_header() -> None:
    assert KAGGLE_COLUMNS == [name.strip('"') for name in KAGGLE_HEADER.split(",")]
    assert V_COLUMNS == KAGGLE_COLUMNS[1:29]
    assert FEATURE_COLUMNS == [*V_COLUMNS, AMOUNT_COLUMN]
    assert (TIME_COLUMN, LABEL_COLUMN) == (KAGGLE_COLUMNS[0], KAGGLE_COLUMNS[-1])


# --- loading and validation ------------------------------------------------------------


def write_csv(path: Path, rows: list[str], header: str = KAGGLE_HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def row(time: float = 0.0, v: object = 0.1, amount: str = "1.5", label: str = '"0"') -> str:
    return ",".join([str(time), *[str(v)] * 28, amount, label])


@pytest.fixture
def good_rows() -> list[str]:
    return [row(0), row(1, label='"1"'), row(2, amount="149.62")]


def test_kaggle_style_csv_loads_as_is(tmp_path, good_rows) -> None:
    df = load_transactions(write_csv(tmp_path / "creditcard.csv", good_rows))
    assert list(df.columns) == KAGGLE_COLUMNS
    simulated = TransactionSimulator().sample(3)
    pd.testing.assert_series_equal(df.dtypes, simulated.dtypes)
    assert df[LABEL_COLUMN].tolist() == [0, 1, 0]
    assert df[AMOUNT_COLUMN].iloc[2] == 149.62


def test_simulated_frame_round_trips_through_csv_and_parquet(tmp_path) -> None:
    df = TransactionSimulator(seed=3, fraud_rate=0.1).sample(300)
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    df.to_csv(tmp_path / "t.csv.gz", index=False)
    for name in ("t.csv", "t.parquet", "t.csv.gz"):
        pd.testing.assert_frame_equal(load_transactions(tmp_path / name), df, rtol=1e-12)


def test_unlabelled_file_loads_when_labels_not_required(tmp_path) -> None:
    header = KAGGLE_HEADER.rsplit(",", 1)[0]
    path = write_csv(tmp_path / "u.csv", [row()[: row().rindex(",")]], header=header)
    assert list(load_transactions(path, require_labels=False).columns) == KAGGLE_COLUMNS[:-1]
    with pytest.raises(DataValidationError, match=r"missing column.*Class"):
        load_transactions(path)


@pytest.mark.parametrize(
    ("header", "rows", "pattern"),
    [
        (KAGGLE_HEADER.replace('"V3",', ""), [row().replace(",0.1", "", 1)], r"missing .*V3"),
        (KAGGLE_HEADER + ',"Extra"', [row() + ",7"], r"unexpected column\(s\) Extra"),
        (KAGGLE_HEADER, [row(), row(1, v="abc")], r"V1, data row 2: non-numeric value 'abc'"),
        (KAGGLE_HEADER, [row(), row(), row(2, amount="")], r"Amount, data row 3: .*not a finite"),
        (KAGGLE_HEADER, [row(), row(1, amount="inf")], r"Amount, data row 2: .*not a finite"),
        (KAGGLE_HEADER, [row(), row(1, amount="-3.5")], r"Amount, data row 2: negative amount"),
        (KAGGLE_HEADER, [row(label='"2"')], r"column Class, data row 1: label 2"),
        (KAGGLE_HEADER, [], r"no data rows"),
        (KAGGLE_HEADER, [row(), row(1, v="1,2")], r"cannot read"),
    ],
)
def test_invalid_csv_names_problem(tmp_path, header, rows, pattern) -> None:
    with pytest.raises(DataValidationError, match=pattern):
        load_transactions(write_csv(tmp_path / "bad.csv", rows, header=header))


def test_single_class_is_rejected_only_when_both_are_needed(tmp_path) -> None:
    path = write_csv(tmp_path / "one.csv", [row(0), row(1)])
    assert len(load_transactions(path)) == 2
    with pytest.raises(DataValidationError, match=r"only class 0 .*both classes"):
        load_transactions(path, require_both_classes=True)


def test_file_level_errors(tmp_path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet at all")
    for name, pattern in [
        ("missing.csv", "no such file"),
        ("empty.csv", "empty"),
        ("data.json", "unknown file type '.json'"),
        ("garbage.parquet", "cannot read"),
    ]:
        with pytest.raises(DataValidationError, match=pattern):
            load_transactions(tmp_path / name)


def test_validate_transactions_names_index_and_normalises() -> None:
    df = TransactionSimulator().sample(4)
    shuffled = df[list(reversed(KAGGLE_COLUMNS))].set_axis([10, 11, 12, 13])
    shuffled[LABEL_COLUMN] = shuffled[LABEL_COLUMN].astype(float)
    clean = validate_transactions(shuffled)
    assert list(clean.columns) == KAGGLE_COLUMNS
    assert clean[LABEL_COLUMN].dtype == np.int64
    assert list(clean.index) == [10, 11, 12, 13]
    shuffled.loc[12, "V9"] = np.nan
    with pytest.raises(DataValidationError, match="column V9, index 12"):
        validate_transactions(shuffled)


def test_loading_a_full_size_file_is_fast(tmp_path) -> None:
    block = TransactionSimulator(seed=1).sample(1_000).to_csv(header=False, index=False)
    path = tmp_path / "creditcard.csv"
    # 285 copies of one block: the size of the real file without minutes of to_csv.
    path.write_text(KAGGLE_HEADER + "\n" + block * 285)
    start = time.perf_counter()
    loaded = load_transactions(path)
    assert time.perf_counter() - start < 10.0  # about 1-2 s on a quiet machine
    assert loaded.shape == (285_000, 31)


# --- time split ------------------------------------------------------------------------


def test_time_split_orders_and_sizes_parts() -> None:
    df = TransactionSimulator(seed=41).sample(10_000).sample(frac=1.0, random_state=0)
    split = time_split(df)
    assert isinstance(split, DataSplit)
    parts = [split.train, split.validation, split.test]
    assert [len(p) for p in parts] == [6_000, 2_000, 2_000]
    for part in parts:
        assert part[TIME_COLUMN].is_monotonic_increasing
    assert split.train[TIME_COLUMN].max() < split.validation[TIME_COLUMN].min()
    assert split.validation[TIME_COLUMN].max() < split.test[TIME_COLUMN].min()
    summary = split.to_dict()
    assert summary["train_rows"] == 6_000
    assert summary["test_frauds"] == int(split.test[LABEL_COLUMN].sum())
    # The monitoring reference is what the model never trained on, and the base rate
    # counts every labelled row.
    assert split.reference[TIME_COLUMN].tolist() == [
        *split.validation[TIME_COLUMN],
        *split.test[TIME_COLUMN],
    ]
    assert split.base_rate == (int(df[LABEL_COLUMN].sum()), 10_000)
    assert time_split(df.drop(columns=LABEL_COLUMN)).base_rate is None


def test_time_split_drops_feedback_delay_gap() -> None:
    df = TransactionSimulator(seed=42).sample(20_000)
    split = time_split(df, train=0.5, validation=0.25, test=0.25, delay_seconds=600)
    assert split.validation[TIME_COLUMN].min() - split.train[TIME_COLUMN].max() > 600
    assert split.test[TIME_COLUMN].min() - split.validation[TIME_COLUMN].max() > 600
    kept = sum(len(p) for p in (split.train, split.validation, split.test))
    assert 0 < 20_000 - kept < 2 * 600 * 2.5  # two gaps at < 2.5 transactions per second


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train": 0.0, "validation": 0.5, "test": 0.5},
        {"train": 0.7, "validation": 0.2, "test": 0.2},
        {"train": -0.2, "validation": 0.6, "test": 0.6},
        {"delay_seconds": -1.0},
    ],
)
def test_time_split_rejects_bad_settings(kwargs) -> None:
    with pytest.raises(ConfigurationError):
        time_split(TransactionSimulator().sample(100), **kwargs)


def test_time_split_reports_needed_rows() -> None:
    with pytest.raises(DataValidationError, match="at least 5 rows"):
        time_split(TransactionSimulator().sample(3), train=0.6, validation=0.2, test=0.2)
    with pytest.raises(DataValidationError, match="validation part is empty"):
        time_split(TransactionSimulator().sample(1_000), delay_seconds=1e6)


# --- fingerprint -----------------------------------------------------------------------


def test_fingerprint_is_stable_and_sensitive() -> None:
    df = TransactionSimulator(seed=51).sample(1_000)
    same = TransactionSimulator(seed=51).sample(1_000)
    fingerprint = data_fingerprint(df)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert fingerprint == data_fingerprint(same) == data_fingerprint(df.copy())
    changed = df.copy()
    changed.loc[500, "V3"] += 1e-9
    renamed = df.rename(columns={"V3": "v3"})
    reordered = df.iloc[::-1]
    assert len({fingerprint, *map(data_fingerprint, [changed, renamed, reordered])}) == 4


def test_small_sample_warnings_name_each_thin_part() -> None:
    # 10,000 rows at the default rate: the validation and test periods hold a few frauds.
    split = time_split(TransactionSimulator(seed=3).sample(10_000))
    warnings = split.small_sample_warnings()
    assert [w.split(" holds")[0] for w in warnings] == [
        "the training period", "the validation period", "the test period"
    ]  # fmt: skip
    frauds = int(split.validation["Class"].sum())
    assert (
        f"the validation period holds only {frauds} frauds in {len(split.validation):,}"
        in (warnings[1])
    )
    # Enough frauds in every part: nothing to say.
    rich = time_split(TransactionSimulator(seed=3, fraud_rate=0.05).sample(10_000))
    assert rich.small_sample_warnings() == []


# --- time windows ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shuffled() -> pd.DataFrame:
    return TransactionSimulator(seed=43).sample(1_003).sample(frac=1.0, random_state=1)


def test_time_windows_cut_near_equal_windows_in_time_order(shuffled) -> None:
    windows = time_windows(shuffled, 4)
    assert [len(w) for w in windows] == [250, 251, 251, 251]
    for window in windows:
        assert window[TIME_COLUMN].is_monotonic_increasing
    for earlier, later in itertools.pairwise(windows):
        assert earlier[TIME_COLUMN].max() < later[TIME_COLUMN].min()
    # Every row once, with its original index (the rows of the frame passed in).
    combined = pd.concat(windows)
    assert sorted(combined.index) == sorted(shuffled.index)
    pd.testing.assert_frame_equal(combined.loc[shuffled.index], shuffled)
    assert len(time_windows(shuffled, 1)) == 1


def test_time_windows_of_fixed_rows_keep_the_remainder_last(shuffled) -> None:
    windows = time_windows(shuffled, window_rows=300)
    assert [len(w) for w in windows] == [300, 300, 300, 103]
    ordered = shuffled.sort_values(TIME_COLUMN, kind="stable")
    pd.testing.assert_frame_equal(pd.concat(windows), ordered)
    assert [len(w) for w in time_windows(shuffled, window_rows=5_000)] == [1_003]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((), {}, ConfigurationError, "not neither"),
        ((2,), {"window_rows": 10}, ConfigurationError, "not both"),
        ((0,), {}, ConfigurationError, "n_windows = 0 must be a positive integer"),
        ((2.5,), {}, ConfigurationError, "n_windows = 2.5"),
        ((True,), {}, ConfigurationError, "n_windows = True"),
        ((), {"window_rows": -1}, ConfigurationError, "window_rows = -1"),
        ((20,), {}, DataValidationError, "10 rows cannot fill n_windows=20"),
    ],
)
def test_time_windows_reject_bad_arguments(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        time_windows(TransactionSimulator().sample(10), *args, **kwargs)


def test_time_windows_need_time_and_rows() -> None:
    df = TransactionSimulator().sample(10)
    with pytest.raises(DataValidationError, match="Time column"):
        time_windows(df.drop(columns=[TIME_COLUMN]), 2)
    with pytest.raises(DataValidationError, match="no rows"):
        time_windows(df.iloc[:0], window_rows=5)


# --- argument checks and the notebooks' first step -------------------------------------


def test_require_columns_names_the_argument_and_the_missing_columns() -> None:
    df = TransactionSimulator().sample(5)
    assert require_columns(df, "test_data", [LABEL_COLUMN, AMOUNT_COLUMN]) is df
    with pytest.raises(DataValidationError, match=r"test_data lacks columns \['Class'\]"):
        require_columns(df.drop(columns=[LABEL_COLUMN]), "test_data", (LABEL_COLUMN,))
    with pytest.raises(DataValidationError, match="outcomes must be a DataFrame, got list"):
        require_columns([1, 2], "outcomes", (LABEL_COLUMN,))
