"""Applicants for the decision benches: valid identities, registration with consent, and
the simulated population's feature vectors standing in for the online store.

Shared by `bench/decision_latency.py` (in process) and `bench/decision_http.py` (over
HTTP), so both decide for the same kind of customer.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from creditline.bootstrap import Container
from creditline.privacy import service as privacy
from creditline.shared.clock import Clock

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CONSENTS = ["credit_assessment", "credit_bureau_query"]


#: Beijing districts: each gives 21,000 distinct IDs below.
REGIONS = ("110105", "110101", "110102", "110106", "110107", "110108")


def national_id(n: int) -> str:
    """A valid resident ID (checksum included), distinct for n < 126,000, born 1980-1999."""
    region = REGIONS[n // 21_000]
    first17 = f"{region}{1980 + n % 20}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]
    return first17 + check


def register_applicant(container: Container, clock: Clock, n: int, notice_version: str) -> str:
    """Register applicant `n` (of working age, ¥240,000 a year) and grant the consents a
    decision needs; the customer id."""
    customer, _ = privacy.register_customer(
        container.privacy_uow(),
        clock,
        privacy.RegistrationRequest(f"c{n}", national_id(n), f"139{n:08d}", "240000.00"),
        today=container.business_date(),
    )
    privacy.grant_consents(
        container.privacy_uow(),
        clock,
        customer.customer_id,
        CONSENTS,
        notice_version=notice_version,
    )
    return str(customer.customer_id)


def load_vectors(features: Path) -> list[dict[str, Any]]:
    """The feature vectors of a batch feature file, missing values as None."""
    records = pd.read_parquet(features).drop(columns="customer_id").to_dict("records")
    return [{str(k): (None if pd.isna(v) else v) for k, v in r.items()} for r in records]


class SimulatedVectors:
    """The online feature port, answering each new customer with the next simulated vector
    (the online store's own read path is measured in bench/features_online.py)."""

    def __init__(self, vectors: list[dict[str, Any]]) -> None:
        self._vectors = vectors
        self._assigned: dict[str, dict[str, Any]] = {}

    def apply(self, events: object) -> int:
        return 0

    def read(self, customer_id: str, as_of: date) -> dict[str, Any]:
        if customer_id not in self._assigned:
            self._assigned[customer_id] = self._vectors[len(self._assigned) % len(self._vectors)]
        return dict(self._assigned[customer_id])

    def customers(self) -> list[str]:
        return []
