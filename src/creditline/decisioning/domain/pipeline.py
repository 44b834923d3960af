"""The credit decision as arithmetic and rules, given what the tables and the model said.

The service runs the steps (it calls the policy engine and the scorer); each step here is
a pure function that returns its reasons. The outcome is `declined` if any rule declines,
else `review` if any rule asks for a person, else `approved`. Limits are rounded *down* to
the product's step: a limit is never rounded up past what the rules allow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from creditline.decisioning.domain.policy import PolicyParameters, TableResult, decimal_output
from creditline.decisioning.domain.reasons import MAX_REASONS, Reason, reason
from creditline.shared.money import ROUND_HALF_EVEN, Currency, Money

DAYS_IN_YEAR = 365
RATE_QUANTUM = Decimal("0.000001")
APR_QUANTUM = Decimal("0.0001")
#: The admission row's reason for a thin file; the score cut-off and limit tables read
#: whether it fired as `history.thin_file`.
THIN_FILE = "THIN_FILE"


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REVIEW = "review"


class RuleOutcome(StrEnum):
    DECLINE = "decline"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired: which table, which row, what it said."""

    table: str
    rule_id: str
    code: str
    outcome: RuleOutcome


def rule_hits(result: TableResult) -> list[RuleHit]:
    """The decline/review rows a `collect` table returned, with their rule ids."""
    hits = []
    for index, row in enumerate(result.rows):
        outcome = RuleOutcome(str(row["outcome"]))
        reason(str(row["code"]))  # every emitted code must have texts
        rule_id = result.fired[index] if index < len(result.fired) else f"row-{index}"
        hits.append(RuleHit(result.table, rule_id, str(row["code"]), outcome))
    return hits


def missing_consents(granted: Iterable[str], params: PolicyParameters) -> list[Reason]:
    have = set(granted)
    return [
        reason(f"CONSENT_{purpose.upper()}_MISSING")
        for purpose in params.required_consents
        if purpose not in have
    ]


def outcome_of(hits: Sequence[RuleHit]) -> Outcome:
    if any(hit.outcome is RuleOutcome.DECLINE for hit in hits):
        return Outcome.DECLINED
    if any(hit.outcome is RuleOutcome.REVIEW for hit in hits):
        return Outcome.REVIEW
    return Outcome.APPROVED


def principal_reasons(
    rule_reasons: Sequence[Reason], model_reasons: Sequence[Reason]
) -> tuple[Reason, ...]:
    """At most four reasons: the rules' first (they decided), then the model's, no repeats."""
    chosen: dict[str, Reason] = {}
    for item in (*rule_reasons, *model_reasons):
        chosen.setdefault(item.code, item)
    return tuple(chosen.values())[:MAX_REASONS]


@dataclass(frozen=True, slots=True)
class LimitDecision:
    limit: Money
    reasons: tuple[Reason, ...]
    matrix_limit: Money
    regulatory_room: Money


def decide_limit(
    limit_table: TableResult,
    *,
    declared_income: Money,
    other_limits: Money,
    params: PolicyParameters,
) -> LimitDecision:
    """The matrix limit, cut to the product maximum and to the customer's regulatory room.

    Room = min(¥300,000, ⅓ of annual income) less the limits of the customer's other
    lines (CBIRC/PBoC online micro-loan draft, 2020); the result is rounded down to the
    product's step, and below the product minimum there is no line at all.
    """
    matrix = Money.from_decimal(
        decimal_output(limit_table.first, "limit", limit_table.table),
        Currency.CNY,
        rounding=ROUND_DOWN,
    )
    income_room = Money(declared_income.minor_units // params.income_cap_divisor, Currency.CNY)
    customer_room = min(params.customer_cap_absolute, income_room) - other_limits
    candidates = [
        (matrix, None),
        (params.product_max_limit, "LIMIT_CAPPED_BY_REGULATION"),
        (
            customer_room,
            "LIMIT_CAPPED_BY_INCOME"
            if income_room <= params.customer_cap_absolute
            else "LIMIT_CAPPED_BY_REGULATION",
        ),
    ]
    amount, code = min(candidates, key=lambda c: c[0].minor_units)
    step = params.limit_step.minor_units
    stepped = Money(max(amount.minor_units, 0) // step * step, Currency.CNY)
    reasons: list[Reason] = [reason(code)] if code and amount < matrix else []
    if declared_income.is_zero:
        reasons = [reason("NO_INCOME_DECLARED")]
    if stepped < params.product_min_limit:
        reasons.append(reason("LIMIT_BELOW_MINIMUM"))
        stepped = Money.zero(Currency.CNY)
    return LimitDecision(stepped, tuple(reasons), matrix, customer_room)


@dataclass(frozen=True, slots=True)
class PriceDecision:
    daily_rate: Decimal
    apr: Decimal
    apr_simple: Decimal
    reasons: tuple[Reason, ...]
    apr_cap: Decimal


def decide_price(
    price_table: TableResult, params: PolicyParameters, apr_of: Callable[[Decimal], Decimal]
) -> PriceDecision:
    """The table's daily rate, lowered if its all-in APR would pass the cap.

    The cap is 24 % a year (regulator guidance for micro-lenders, 2026), or 4 × the
    one-year LPR when the policy enforces the courts' line. `apr_of` gives the APR by the
    IRR method (PBoC announcement [2021] No. 3) of a representative draw under the
    product's own terms, so the rate shown is the rate the customer will be charged.
    """
    daily = decimal_output(price_table.first, "daily_rate", price_table.table)
    cap = params.apr_cap
    if params.enforce_four_times_lpr:
        cap = min(cap, 4 * params.lpr_one_year)
    reasons: list[Reason] = []
    if apr_of(daily) > cap:
        daily = (cap / DAYS_IN_YEAR).quantize(RATE_QUANTUM, rounding=ROUND_DOWN)
        reasons.append(reason("PRICE_CAPPED"))
    simple = (daily * DAYS_IN_YEAR).quantize(APR_QUANTUM, rounding=ROUND_HALF_EVEN)
    apr = apr_of(daily).quantize(APR_QUANTUM, rounding=ROUND_HALF_EVEN)
    return PriceDecision(daily, apr, simple, tuple(reasons), cap)


def fingerprint_payload(facts: Mapping[str, Any]) -> str:
    """A stable digest of the decision's inputs (ids and numbers only, never names)."""
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
