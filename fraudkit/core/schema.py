"""The columns of the Kaggle/ULB ``creditcard.csv`` schema, and its long-run fraud rate.

Defined here, below the science layer, so that the data loader and the simulator that
writes the same columns both import them without importing each other.
"""

from __future__ import annotations

__all__ = [
    "AMOUNT_COLUMN",
    "DEFAULT_FRAUD_RATE",
    "FEATURE_COLUMNS",
    "KAGGLE_COLUMNS",
    "LABEL_COLUMN",
    "TIME_COLUMN",
    "V_COLUMNS",
]

V_COLUMNS: list[str] = [f"V{i}" for i in range(1, 29)]
TIME_COLUMN: str = "Time"
AMOUNT_COLUMN: str = "Amount"
LABEL_COLUMN: str = "Class"
FEATURE_COLUMNS: list[str] = [*V_COLUMNS, AMOUNT_COLUMN]
KAGGLE_COLUMNS: list[str] = [TIME_COLUMN, *V_COLUMNS, AMOUNT_COLUMN, LABEL_COLUMN]

# The fraud rate of creditcard.csv (492 frauds in 284,807 transactions).
DEFAULT_FRAUD_RATE: float = 0.00172
