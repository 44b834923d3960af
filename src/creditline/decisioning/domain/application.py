"""What a decision is made from, and what it says.

`ApplicantFacts` gathers, at decision time, everything the rules read about the applicant
(ages, consents, other lines, the device graph and activity counts, the online features
for the model); it holds ids and numbers only, never a name or an ID number, so it can be
fingerprinted and stored. It carries measurements, not verdicts: whether a device cluster
is a fraud ring or a file is thin is decided by rows of the admission table, so their
thresholds are policy data, versioned and recorded with each decision.
`DecisionDraft` is the pipeline's result before it is stored and a line is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from creditline.decisioning.domain.pipeline import Outcome, RuleHit
from creditline.decisioning.domain.reasons import Reason
from creditline.shared.money import Currency, Money

#: The fields the admission table may read (`ApplicantFacts.rule_context`).
ADMISSION_FIELDS = frozenset(
    {
        "applicant.age",
        "applicant.annual_income_yuan",
        "credit.has_open_line",
        "credit.max_days_past_due",
        "graph.shared_device_customers",
        "graph.neighbour_delinquent_share",
        "graph.shared_device_cluster_size",
        "history.payments_and_orders_365d",
        "history.has_bill_history",
    }
)
#: The tables after admission also read the score and the admission table's thin-file
#: finding (`history.thin_file`: its `THIN_FILE` row fired).
SCORED_FIELDS = ADMISSION_FIELDS | {"history.thin_file", "score.value", "score.tier"}
#: What each table may read; a table reading anything else fails to load.
TABLE_FIELDS = {
    "admission": ADMISSION_FIELDS,
    "score_cutoff": SCORED_FIELDS,
    "limit": SCORED_FIELDS,
    "price": SCORED_FIELDS,
}


@dataclass(frozen=True, slots=True)
class ApplicantFacts:
    customer_id: str
    age: int
    consents: frozenset[str]
    declared_income: Money
    has_open_line: bool = False
    max_days_past_due: int = 0
    other_limits: Money = field(default_factory=lambda: Money.zero(Currency.CNY))
    shared_device_customers: int = 0
    neighbour_delinquent_share: float = 0.0
    payments_and_orders_365d: int = 0
    has_bill_history: bool = True
    features: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def shared_device_cluster_size(self) -> int:
        """The customers on the applicant's devices, the applicant included."""
        return self.shared_device_customers + 1

    def rule_context(self) -> dict[str, Any]:
        """The nested context the admission table reads."""
        return {
            "applicant": {
                "age": self.age,
                "annual_income_yuan": float(self.declared_income.amount),
            },
            "credit": {
                "has_open_line": self.has_open_line,
                "max_days_past_due": self.max_days_past_due,
            },
            "graph": {
                "shared_device_customers": self.shared_device_customers,
                "neighbour_delinquent_share": self.neighbour_delinquent_share,
                "shared_device_cluster_size": self.shared_device_cluster_size,
            },
            "history": {
                "payments_and_orders_365d": self.payments_and_orders_365d,
                "has_bill_history": self.has_bill_history,
            },
        }

    def fingerprint_source(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "age": self.age,
            "consents": sorted(self.consents),
            "declared_income_fen": self.declared_income.minor_units,
            "has_open_line": self.has_open_line,
            "max_days_past_due": self.max_days_past_due,
            "other_limits_fen": self.other_limits.minor_units,
            "shared_device_customers": self.shared_device_customers,
            "neighbour_delinquent_share": self.neighbour_delinquent_share,
            "payments_and_orders_365d": self.payments_and_orders_365d,
            "has_bill_history": self.has_bill_history,
            "features": dict(sorted(self.features.items())),
        }


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """What the champion model said: score (350–950), PD, tier and its reasons."""

    score: int
    pd: float
    tier: str
    reasons: tuple[Reason, ...]
    model_version: str


@dataclass(frozen=True, slots=True)
class DecisionDraft:
    outcome: Outcome
    limit: Money
    daily_rate: Decimal | None
    apr: Decimal | None
    apr_simple: Decimal | None
    score: ScoreResult | None
    reasons: tuple[Reason, ...]
    policy_version: str
    trace: tuple[RuleHit, ...]
    inputs_fingerprint: str
    fired_rows: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def model_version(self) -> str | None:
        return self.score.model_version if self.score else None


@dataclass(frozen=True, slots=True)
class CreditSummary:
    """The customer's credit with us, as lending reports it at decision time."""

    has_open_line: bool
    max_days_past_due: int
    other_limits: Money


@dataclass(frozen=True, slots=True)
class FeatureSnapshot:
    """The customer's online features and the measurements the admission rules read from
    them (see `ApplicantFacts`)."""

    values: Mapping[str, float | None]
    shared_device_customers: int = 0
    neighbour_delinquent_share: float = 0.0
    payments_and_orders_365d: int = 0
    has_bill_history: bool = True
