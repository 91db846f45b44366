"""A declared transaction schema: which column is the time, the label, the amount, the keys.

A team's own file names its columns in a small YAML file (or picks a preset), and
:class:`TransactionSchema` checks a frame against it before anything is computed or
logged::

    time: TransactionDT         # a datetime column, or numbers with time_unit
    time_unit: s                # s or ms when time is numeric; omit for datetimes
    label: isFraud
    amount: TransactionAmt
    id: TransactionID           # optional
    entities: [card1, addr1]    # keys the behavioural features aggregate over
    categorical: [ProductCD, P_emaildomain]
    numeric: []                 # other columns used as features as they are
    label_time: null            # optional: when each label became known

The presets are ``kaggle`` (the ``creditcard.csv`` columns) and ``handbook`` (the entity
simulator's: the columns of the Fraud-Detection-Handbook's simulated transactions, and
``LABEL_DATETIME``, when each label arrived).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fraudkit.core.exceptions import SchemaError
from fraudkit.core.schema import AMOUNT_COLUMN, LABEL_COLUMN, TIME_COLUMN, V_COLUMNS
from fraudkit.science.checks import CheckedTransactions, check_transactions, read_table

__all__ = [
    "NS_PER_DAY",
    "PRESETS",
    "TIME_UNITS",
    "CheckedTransactions",
    "TransactionSchema",
    "read_transactions",
]

# Nanoseconds per unit of a numeric time column; datetimes are nanoseconds already.
TIME_UNITS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000}
NS_PER_DAY = 86_400 * TIME_UNITS["s"]
# The list keys of a schema file, and the role each gives its columns.
_LIST_KEYS = {"entities": "entity", "categorical": "categorical", "numeric": "numeric"}
_OPTIONAL_COLUMN_KEYS = ("id", "label_time")
_REQUIRED_KEYS = ("time", "label", "amount")


@dataclass(frozen=True)
class TransactionSchema:
    """The roles of a transaction file's columns.

    Parameters
    ----------
    time : str
        When the transaction happened: a datetime column, or numbers in ``time_unit``.
    label : str
        The fraud label, 0 or 1.
    amount : str
        The amount, a number >= 0.
    time_unit : {"s", "ms"} or None
        The unit of a numeric ``time`` column; None when it holds datetimes.
    id : str or None
        A unique transaction id, if the file has one.
    entities : tuple of str
        Keys the behavioural features aggregate over (card, customer, terminal, ...).
    categorical : tuple of str
        Categorical columns used as features.
    numeric : tuple of str
        Other numeric columns used as features as they are.
    label_time : str or None
        When each label became known, of the same kind as ``time``; empty while unknown.
    name : str or None
        The preset or file the schema came from (for messages and logging; not a key).
    """

    time: str
    label: str
    amount: str
    time_unit: str | None = None
    id: str | None = None
    entities: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    label_time: str | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = self.name or "schema"
        if self.time_unit is not None and self.time_unit not in TIME_UNITS:
            raise SchemaError(
                f"{where}: time_unit {self.time_unit!r} is not one of "
                f"{', '.join(TIME_UNITS)}; omit it when the time column holds datetimes"
            )
        roles: dict[str, str] = {}
        for role, column in self.column_roles():
            if column in roles:
                raise SchemaError(
                    f"{where}: column {column!r} is named both as {roles[column]} and as "
                    f"{role}; give each column one role"
                )
            roles[column] = role

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | TransactionSchema) -> TransactionSchema:
        """Return a schema from a preset name, a YAML file, a mapping or a schema.

        Raises
        ------
        SchemaError
            If the preset or file does not exist, or the schema is not valid.
        """
        if isinstance(source, TransactionSchema):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        text = str(source)
        if text in PRESETS:
            return PRESETS[text]
        path = Path(text)
        if path.suffix.lower() not in {".yaml", ".yml"} or not path.is_file():
            raise SchemaError(
                f"schema {text!r} is neither a preset ({', '.join(PRESETS)}) nor an "
                "existing .yaml/.yml file; name a preset or the path of a schema file"
            )
        try:
            mapping = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise SchemaError(f"{path}: not valid YAML ({error})") from error
        if not isinstance(mapping, Mapping):
            raise SchemaError(f"{path}: expected a mapping of schema keys, got {mapping!r}")
        return cls.from_dict(mapping, name=str(path))

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, name: str | None = None) -> TransactionSchema:
        """Return a schema from the keys of a schema file; a misspelt key is an error."""
        where = name or "schema"
        keys = [*_REQUIRED_KEYS, "time_unit", *_OPTIONAL_COLUMN_KEYS, *_LIST_KEYS]
        for key in mapping:
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"the keys are {', '.join(keys)}"
                raise SchemaError(f"{where}: unknown key {key!r}; {hint}")
        missing = [key for key in _REQUIRED_KEYS if not mapping.get(key)]
        if missing:
            raise SchemaError(
                f"{where}: missing key(s) {', '.join(missing)}; a schema names at least the "
                "time, label and amount columns"
            )
        values: dict[str, Any] = {}
        for key in keys:
            value = mapping.get(key)
            if key in _LIST_KEYS:
                value = _column_list(value, key, where)
            elif value is not None and not isinstance(value, str):
                raise SchemaError(f"{where}: {key} must be a column name, got {value!r}")
            values[key] = value
        return cls(**values, name=name)

    def to_dict(self) -> dict[str, Any]:
        """The schema as the keys of a schema file (lists, not tuples; no name)."""
        values = asdict(self)
        values.pop("name")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def to_yaml(self) -> str:
        """The schema as a schema file's text; :meth:`load` reads it back."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def column_roles(self) -> list[tuple[str, str]]:
        """``(role, column)`` for every column the schema names, in file-key order."""
        roles = [("time", self.time), ("label", self.label), ("amount", self.amount)]
        roles += [(key, getattr(self, key)) for key in _OPTIONAL_COLUMN_KEYS if getattr(self, key)]
        for key, role in _LIST_KEYS.items():
            roles += [(role, column) for column in getattr(self, key)]
        return roles

    @property
    def card(self) -> str | None:
        """The column investigators review by: the first entity (card, customer); None
        when the schema has no entity, and each row then stands for its own card."""
        return self.entities[0] if self.entities else None

    def review_keys(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Each row's review day and card: alert budgets and Card Precision@k count per
        card and day on them.

        Parameters
        ----------
        frame : pandas.DataFrame
            A frame checked against this schema.

        Returns
        -------
        tuple of (numpy.ndarray, numpy.ndarray or None)
            Whole days since the epoch (since ``Time`` 0 on a numeric clock), and each
            row's card, None without an entity (see :attr:`card`).
        """
        days = self.timestamps(frame) // NS_PER_DAY
        cards = frame[self.card].to_numpy() if self.card is not None else None
        return days, cards

    @property
    def feature_columns(self) -> list[str]:
        """The columns used as features as they are: amount, numeric and categorical."""
        return [self.amount, *self.numeric, *self.categorical]

    def timestamps(self, frame: pd.DataFrame, column: str | None = None) -> np.ndarray:
        """A checked frame's time (or ``column``) as int64 nanoseconds; NaT is int64 min."""
        values = frame[column or self.time]
        if self.time_unit is None:
            return values.to_numpy(dtype="datetime64[ns]").view(np.int64)
        scaled = np.round(values.to_numpy(dtype=np.float64) * TIME_UNITS[self.time_unit])
        return np.where(np.isnan(scaled), np.iinfo(np.int64).min, scaled).astype(np.int64)

    def validate(
        self, frame: pd.DataFrame, *, source: str = "transactions", require_labels: bool = True
    ) -> CheckedTransactions:
        """Check ``frame`` against the schema; return it in time order with notes.

        Raises
        ------
        DataValidationError
            Naming the column, the first bad row and the fix: a missing column, a wrong
            type, an entity key with nulls, labels other than 0/1, duplicate ids, a label
            known before its transaction happened.
        """
        return check_transactions(self, frame, source=source, require_labels=require_labels)


def _column_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise SchemaError(f"{where}: {key} must be a list of column names, got {value!r}")
    return tuple(value)


PRESETS: dict[str, TransactionSchema] = {
    "kaggle": TransactionSchema(
        time=TIME_COLUMN,
        time_unit="s",
        label=LABEL_COLUMN,
        amount=AMOUNT_COLUMN,
        numeric=tuple(V_COLUMNS),
        name="kaggle",
    ),
    # The entity simulator's columns (fraudkit.science.entities): those of the
    # Fraud-Detection-Handbook's simulated transactions, and when each label arrived.
    "handbook": TransactionSchema(
        time="TX_DATETIME",
        label="TX_FRAUD",
        amount="TX_AMOUNT",
        id="TRANSACTION_ID",
        entities=("CUSTOMER_ID", "TERMINAL_ID"),
        label_time="LABEL_DATETIME",
        name="handbook",
    ),
}


def read_transactions(
    path: str | Path, schema: str | Path | Mapping[str, Any] | TransactionSchema = "kaggle"
) -> CheckedTransactions:
    """Read a CSV (optionally compressed) or Parquet file and check it against ``schema``.

    Raises
    ------
    DataValidationError
        If the file is missing, of an unknown type, unreadable, or fails the schema.
    SchemaError
        If the schema is not a preset or a valid schema file.
    """
    checked_schema = TransactionSchema.load(schema)
    return checked_schema.validate(read_table(path), source=str(path))
