"""Cheap, exactly known inputs for the statistics tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudkit.science.simulate import TransactionSimulator


@dataclass
class OracleModel:
    """The simulator's exact posterior, fitted before any drift: a calibrated model."""

    simulator: TransactionSimulator

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        p = self.simulator.fraud_probability(df)
        return np.column_stack([1 - p, p])


def normal_frame(
    rng: np.random.Generator, n: int, shifts: dict[str, float] | None = None
) -> pd.DataFrame:
    """Independent standard-normal columns x0..x4, each shifted by ``shifts``."""
    frame = pd.DataFrame(rng.standard_normal((n, 5)), columns=[f"x{i}" for i in range(5)])
    for column, shift in (shifts or {}).items():
        frame[column] += shift
    return frame
