"""A file nobody here wrote: fraud visible only through card velocity, read through its
schema file, is invisible to the raw columns and plain to the behavioural features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import average_precision_score
from support.ieee import write_ieee_like

from fraudkit.science.features import build_features
from fraudkit.science.models import build_model
from fraudkit.science.schema import read_transactions


def test_velocity_fraud_is_seen_only_through_the_features(tmp_path: Path) -> None:
    data, schema = write_ieee_like(tmp_path)
    checked = read_transactions(data, schema)
    frame = checked.frame
    assert checked.notes and "sorted stably by TransactionDT" in checked.notes[0]
    behaviour = build_features(frame, checked.schema)
    raw = pd.DataFrame(
        {
            "amount": frame["TransactionAmt"],
            "product": frame["ProductCD"].astype("category").cat.codes,
            "domain": frame["P_emaildomain"].astype("category").cat.codes,
        }
    )
    label = frame["isFraud"].to_numpy()
    train = np.arange(len(frame)) < 0.6 * len(frame)
    scores = {}
    for name, columns in (("raw", raw), ("features", pd.concat([raw, behaviour], axis=1))):
        model = clone(build_model("hist_gradient_boosting").named_steps["classifier"])
        model.fit(columns[train], label[train])
        scores[name] = average_precision_score(
            label[~train], model.predict_proba(columns[~train])[:, 1]
        )
    base_rate = label[~train].mean()
    assert scores["raw"] < 3 * base_rate  # the columns as they are: next to chance
    # The card's last hour makes every burst plain but its first transaction: 4-8 a burst.
    assert scores["features"] > 0.6
    assert scores["features"] > 10 * scores["raw"]
