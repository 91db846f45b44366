"""The declared transaction schema: loading, presets, and every check naming its fix."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudkit.core.exceptions import DataValidationError, SchemaError
from fraudkit.core.schema import KAGGLE_COLUMNS
from fraudkit.science.data import load_transactions
from fraudkit.science.schema import PRESETS, TransactionSchema, read_transactions
from fraudkit.science.simulate import TransactionSimulator

IEEE = {
    "time": "TransactionDT",
    "time_unit": "s",
    "label": "isFraud",
    "amount": "TransactionAmt",
    "id": "TransactionID",
    "entities": ["card1", "addr1"],
    "categorical": ["ProductCD", "P_emaildomain"],
}


def _ieee_frame(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "TransactionID": np.arange(n) + 100,
            "TransactionDT": np.arange(n) * 60.0,
            "TransactionAmt": np.linspace(1, 50, n),
            "card1": [1, 2, 1, 3, 2, 1][:n],
            "addr1": 7,
            "ProductCD": ["W", "C", "W", "R", None, "W"][:n],
            "P_emaildomain": "gmail.com",
            "isFraud": [0, 0, 1, 0, 0, 1][:n],
            "unused": "kept out",
        }
    )


def test_a_schema_file_loads_round_trips_and_names_its_roles(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(TransactionSchema.from_dict(IEEE).to_yaml())
    schema = TransactionSchema.load(path)
    assert schema == TransactionSchema.from_dict(IEEE)
    assert schema.name == str(path)
    assert dict(schema.column_roles())["id"] == "TransactionID"
    assert schema.feature_columns == ["TransactionAmt", "ProductCD", "P_emaildomain"]
    assert TransactionSchema.load("kaggle") is PRESETS["kaggle"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({**IEEE, "lable": "x"}, "unknown key 'lable'; did you mean 'label'"),
        ({k: v for k, v in IEEE.items() if k != "amount"}, "missing key(s) amount"),
        ({**IEEE, "time_unit": "h"}, "time_unit 'h' is not one of s, ms"),
        ({**IEEE, "label": "card1"}, "'card1' is named both as label and as entity"),
        ({**IEEE, "entities": [1, 2]}, "entities must be a list of column names"),
        ({**IEEE, "id": ["a"]}, "id must be a column name"),
    ],
)
def test_bad_schemas_are_refused_with_the_fix(mapping: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=re.escape(message)):
        TransactionSchema.from_dict(mapping)


def test_unknown_presets_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"neither a preset \(kaggle, handbook\)"):
        TransactionSchema.load("kagle")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(SchemaError, match="expected a mapping"):
        TransactionSchema.load(bad)


def test_a_frame_is_checked_sorted_stably_and_trimmed_to_its_schema() -> None:
    frame = _ieee_frame().iloc[[2, 0, 1, 3, 4, 5]]
    frame.loc[:, "TransactionDT"] = [60.0, 0.0, 60.0, 180.0, 240.0, 300.0]
    checked = TransactionSchema.from_dict(IEEE).validate(frame)
    assert checked.frame["TransactionID"].tolist() == [100, 102, 101, 103, 104, 105]
    assert checked.notes and "sorted stably by TransactionDT" in checked.notes[0]
    assert "unused" not in checked.frame.columns
    assert checked.frame["isFraud"].dtype == np.int64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="card1"), r"missing column\(s\) card1 \(entity\)"),
        (lambda f: f.assign(isFraud=[0, 2, 0, 0, 0, 1]), "row 2: a label other than 0 or 1"),
        (lambda f: f.assign(card1=[1, None, 1, 3, 2, 1]), "card1, row 2: an empty key"),
        (lambda f: f.assign(TransactionID=[1, 1, 2, 3, 4, 5]), "id '1' appears more than once"),
        (lambda f: f.assign(TransactionAmt=[1, -2, 3, 4, 5, 6]), "row 2: a negative amount"),
        (lambda f: f.assign(TransactionAmt=["1", "x", 3, 4, 5, 6]), "row 2: a value that is not"),
        (lambda f: f.assign(TransactionDT=list("abcdef")), "remove 'time_unit: s'"),
        (lambda f: f.iloc[:0], "no data rows"),
    ],
)
def test_each_check_names_the_column_the_row_and_the_fix(change, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        TransactionSchema.from_dict(IEEE).validate(change(_ieee_frame()))


def test_datetimes_and_label_times_are_checked() -> None:
    schema = TransactionSchema(time="when", label="y", amount="a", label_time="known")
    frame = pd.DataFrame(
        {
            "when": ["2026-01-01 10:00", "2026-01-02 09:00"],
            "a": [1.0, 2.0],
            "y": [0, 1],
            "known": ["2026-01-20", None],
        }
    )
    checked = schema.validate(frame)
    assert checked.frame["when"].dtype == "datetime64[ns]"
    assert schema.timestamps(checked.frame)[1] - schema.timestamps(checked.frame)[0] == 23 * 3600e9
    with pytest.raises(DataValidationError, match="a label known before its transaction"):
        schema.validate(frame.assign(known=["2025-12-31", None]))
    with pytest.raises(DataValidationError, match="holds numbers, not datetimes"):
        schema.validate(frame.assign(when=[1, 2]))


def test_the_kaggle_preset_accepts_what_load_transactions_accepts(tmp_path: Path) -> None:
    path = tmp_path / "creditcard.parquet"
    TransactionSimulator(seed=3, fraud_rate=0.01).sample(500).to_parquet(path)
    checked = read_transactions(path, "kaggle")
    pd.testing.assert_frame_equal(
        checked.frame[KAGGLE_COLUMNS], load_transactions(path), check_dtype=False
    )
    assert checked.notes == ()


def test_csv_and_parquet_read_alike(tmp_path: Path) -> None:
    frame = _ieee_frame()
    frame.to_csv(tmp_path / "tx.csv", index=False)
    frame.to_parquet(tmp_path / "tx.parquet")
    from_csv = read_transactions(tmp_path / "tx.csv", IEEE).frame
    from_parquet = read_transactions(tmp_path / "tx.parquet", IEEE).frame
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_dtype=False)
    with pytest.raises(DataValidationError, match=r"unknown file type '\.xlsx'"):
        read_transactions(tmp_path / "tx.xlsx", IEEE)


def test_time_split_and_windows_follow_a_schema_with_datetimes() -> None:
    from fraudkit.science.data import time_split, time_windows

    schema = TransactionSchema(time="when", label="fraud", amount="a")
    when = pd.Timestamp("2026-03-01") + pd.to_timedelta(np.arange(100), unit="h")
    frame = schema.validate(
        pd.DataFrame({"when": when[::-1], "a": 1.0, "fraud": np.arange(100) % 10 == 0})
    ).frame
    split = time_split(frame, schema=schema, delay_seconds=3_600)
    assert (len(split.train), len(split.validation), len(split.test)) == (60, 19, 19)
    summary = split.to_dict()
    assert summary["train_time_start"] == "2026-03-01T00:00:00"
    assert summary["test_frauds"] == int(split.test["fraud"].sum())
    assert split.base_rate == (
        int(
            split.train["fraud"].sum() + split.validation["fraud"].sum() + split.test["fraud"].sum()
        ),
        98,
    )
    windows = time_windows(frame, 4, schema=schema)
    assert [len(w) for w in windows] == [25] * 4
    assert windows[0]["when"].max() < windows[1]["when"].min()


def test_review_keys_are_whole_days_and_the_first_entity() -> None:
    frame = pd.DataFrame(
        {
            "TX_DATETIME": pd.to_datetime(["2026-01-01 23:59", "2026-01-02 00:01"]),
            "CUSTOMER_ID": [7, 7],
        }
    )
    handbook = PRESETS["handbook"]
    days, cards = handbook.review_keys(frame)
    assert handbook.card == "CUSTOMER_ID" and cards is not None
    assert days[1] - days[0] == 1 and cards.tolist() == [7, 7]
    assert days[0] == (pd.Timestamp("2026-01-01") - pd.Timestamp(0)).days
    kaggle_days, no_cards = PRESETS["kaggle"].review_keys(
        pd.DataFrame({"Time": [0.0, 86_399.0, 86_400.0]})
    )
    assert PRESETS["kaggle"].card is None and no_cards is None
    assert kaggle_days.tolist() == [0, 0, 1]
