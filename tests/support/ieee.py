"""A transaction file nobody here wrote: shaped like IEEE-CIS, with its own schema file.

Columns ``TransactionID``, ``TransactionDT`` (seconds from an origin), ``TransactionAmt``,
``card1``, ``addr1``, ``ProductCD``, ``P_emaildomain``, ``isFraud``. Fraud shows *only* in
card velocity: a stolen card makes a burst of transactions within minutes, each drawn
from the same amount, product and e-mail distributions as everyone's. A model on the
columns as they are sees nothing; one on the card's behavioural features sees the bursts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SCHEMA_YAML = """\
time: TransactionDT
time_unit: s
label: isFraud
amount: TransactionAmt
id: TransactionID
entities: [card1, addr1]
categorical: [ProductCD, P_emaildomain]
numeric: []
label_time: null
"""
PRODUCTS = ["W", "C", "R", "H", "S"]
DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "anonymous.com", "aol.com"]


def ieee_like_frame(n_cards: int = 2_000, days: int = 30, seed: int = 0) -> pd.DataFrame:
    """Legitimate cards spend about once a day; 2 % of cards are stolen once, for a burst
    of 4-8 transactions a few minutes apart."""
    rng = np.random.default_rng(seed)
    per_card = rng.poisson(days, n_cards)
    card = np.repeat(np.arange(n_cards), per_card)
    seconds = rng.uniform(0, days * 86_400, len(card))
    fraud = np.zeros(len(card), dtype=np.int64)
    stolen = rng.choice(n_cards, max(1, n_cards // 50), replace=False)
    burst_cards, burst_times = [], []
    for victim in stolen:
        start = rng.uniform(86_400, days * 86_400 - 3_600)
        size = rng.integers(4, 9)
        burst_cards.append(np.full(size, victim))
        burst_times.append(start + np.cumsum(rng.uniform(30, 300, size)))
    card = np.concatenate([card, *burst_cards])
    seconds = np.concatenate([seconds, *burst_times])
    fraud = np.concatenate([fraud, np.ones(len(card) - len(fraud), dtype=np.int64)])
    n = len(card)
    frame = pd.DataFrame(
        {
            "TransactionDT": np.round(seconds).astype(np.int64),
            "TransactionAmt": np.round(rng.lognormal(3.5, 1.0, n), 2),
            "card1": 1_000 + card,
            "addr1": 100 + card % 300,
            "ProductCD": rng.choice(PRODUCTS, n, p=[0.6, 0.15, 0.1, 0.1, 0.05]),
            "P_emaildomain": rng.choice(DOMAINS, n),
            "isFraud": fraud,
        }
    ).sample(frac=1.0, random_state=seed)  # an export in no particular order
    frame.insert(0, "TransactionID", np.arange(3_000_000, 3_000_000 + n))
    return frame.reset_index(drop=True)


def write_ieee_like(folder: Path, **kwargs: int) -> tuple[Path, Path]:
    """Write ``transactions.csv`` and ``schema.yaml`` into ``folder``; return both paths."""
    data, schema = folder / "transactions.csv", folder / "schema.yaml"
    ieee_like_frame(**kwargs).to_csv(data, index=False)
    schema.write_text(SCHEMA_YAML)
    return data, schema
