"""What a decision is made from, and what it says.

`ApplicantFacts` gathers, at decision time, everything the rules read about the applicant
(ages, consents, other lines, graph flags, the online features for the model); it holds ids
and numbers only, never a name or an ID number, so it can be fingerprinted and stored.
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


@dataclass(frozen=True, slots=True)
class ApplicantFacts:
    customer_id: str
    age: int
    consents: frozenset[str]
    declared_income: Money
    has_open_line: bool = False
    max_days_past_due: int = 0
    other_limits: Money = field(default_factory=lambda: Money.zero(Currency.CNY))
    fraud_ring: bool = False
    shared_device_cluster_size: int = 1
    thin_file: bool = False
    features: Mapping[str, float | None] = field(default_factory=dict)

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
                "fraud_ring": self.fraud_ring,
                "shared_device_cluster_size": self.shared_device_cluster_size,
            },
            "history": {"thin_file": self.thin_file},
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
            "fraud_ring": self.fraud_ring,
            "shared_device_cluster_size": self.shared_device_cluster_size,
            "thin_file": self.thin_file,
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
    """The customer's online features and the flags the admission rules read from them."""

    values: Mapping[str, float | None]
    fraud_ring: bool = False
    shared_device_cluster_size: int = 1
    thin_file: bool = False
