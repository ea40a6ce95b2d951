"""Synthetic churn-style customers, generated in code (nothing is downloaded).

Shared by the training script and the traffic generator, so that "normal"
traffic really comes from the training distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["card", "bank-transfer", "e-check", "mailed-check"]
INTERNET = ["dsl", "fiber", "none"]

SCHEMA = [
    {"name": "tenure_months", "type": "number"},
    {"name": "monthly_charges", "type": "number"},
    {"name": "support_calls", "type": "integer"},
    {"name": "contract", "type": "category", "categories": CONTRACTS},
    {"name": "payment_method", "type": "category", "categories": PAYMENTS},
    {"name": "internet_service", "type": "category", "categories": INTERNET},
    {"name": "paperless_billing", "type": "boolean"},
]
FEATURES = [f["name"] for f in SCHEMA]
LABEL = "churn"


def customers(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, p=[0.55, 0.25, 0.20], size=n)
    internet = rng.choice(INTERNET, p=[0.35, 0.45, 0.20], size=n)
    tenure = np.clip(rng.gamma(1.6, 18.0, size=n), 0, 72).round(1)
    base = np.select([internet == "fiber", internet == "dsl"], [80.0, 55.0], 25.0)
    charges = np.clip(base + rng.normal(0, 12, size=n), 18, 120).round(2)
    calls = rng.poisson(1.2, size=n).astype(float)
    paperless = rng.uniform(size=n) < 0.6
    payment = rng.choice(PAYMENTS, p=[0.3, 0.25, 0.3, 0.15], size=n)
    logit = (
        -1.2
        - 0.045 * tenure
        + 0.025 * (charges - 60)
        + 0.35 * calls
        + np.select([contract == "month-to-month", contract == "one-year"], [1.4, 0.2], -0.8)
        + 0.5 * (payment == "e-check")
        + 0.3 * paperless
    )
    churn = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": contract.astype(object),
            "payment_method": payment.astype(object),
            "internet_service": internet.astype(object),
            "paperless_billing": paperless,
            LABEL: churn,
        }
    )


def shift(df: pd.DataFrame, kind: str, feature: str | None = None, amount: float | None = None,
          seed: int = 0) -> pd.DataFrame:
    """A copy of df with one kind of shift applied:
    mean (+amount standard deviations), variance (x amount spread around the
    mean), new-category (share amount of a category never seen in training),
    missing (share amount of values set to null)."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    if kind == "none":
        return out
    if kind == "mean":
        f = feature or "monthly_charges"
        out[f] = out[f] + (0.5 if amount is None else amount) * df[f].std()
    elif kind == "variance":
        f = feature or "monthly_charges"
        m = df[f].mean()
        out[f] = m + (df[f] - m) * (1.5 if amount is None else amount)
    elif kind == "new-category":
        f = feature or "payment_method"
        hit = rng.uniform(size=len(df)) < (0.1 if amount is None else amount)
        out.loc[hit, f] = "crypto"
    elif kind == "missing":
        f = feature or "tenure_months"
        hit = rng.uniform(size=len(df)) < (0.2 if amount is None else amount)
        out[f] = out[f].astype(object)
        out.loc[hit, f] = None
    else:
        raise ValueError(f"unknown shift {kind!r}; want none, mean, variance, new-category or missing")
    return out
