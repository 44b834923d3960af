"""The credit line (授信额度): a revolving limit that draws use and repayments restore.

Rule kept: available = limit − outstanding principal − holds, and it never goes below
zero; a draw above the available amount, on a frozen or closed line, or past the number
of open draws is refused. Every change of limit or status is kept in `history` with its
reason code. Repaid principal becomes available again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from creditline.shared.errors import BusinessRuleError
from creditline.shared.money import Money

MAX_OPEN_DRAWS = 50


class LineStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class ReasonCode(StrEnum):
    OPENED = "opened"
    PERIODIC_REVIEW = "periodic_review"
    OVERDUE = "overdue"
    OVERDUE_CURED = "overdue_cured"
    CUSTOMER_REQUEST = "customer_request"
    RISK_SIGNAL = "risk_signal"


@dataclass(frozen=True, slots=True)
class LineChange:
    """One change of a line's limit or status, with why and when."""

    on: date
    reason: ReasonCode
    limit: Money
    status: LineStatus


@dataclass
class CreditLine:
    line_id: str
    customer_id: str
    limit: Money
    daily_rate: Decimal
    opened_on: date
    outstanding: Money
    holds: Money
    status: LineStatus = LineStatus.ACTIVE
    reviewed_on: date | None = None
    open_draws: int = 0
    history: list[LineChange] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.limit.is_negative or self.outstanding.is_negative or self.holds.is_negative:
            raise ValueError("limit, outstanding and holds cannot be negative")

    @classmethod
    def open(
        cls, line_id: str, customer_id: str, limit: Money, daily_rate: Decimal, on: date
    ) -> CreditLine:
        if not limit.is_positive:
            raise ValueError(f"a credit line needs a positive limit, got {limit}")
        zero = Money.zero(limit.currency)
        line = cls(line_id, customer_id, limit, daily_rate, on, zero, zero)
        line.history.append(LineChange(on, ReasonCode.OPENED, limit, LineStatus.ACTIVE))
        return line

    @property
    def available(self) -> Money:
        room = self.limit - self.outstanding - self.holds
        return room if room.minor_units > 0 else Money.zero(self.limit.currency)

    def check_draw(self, amount: Money) -> None:
        """Raise `BusinessRuleError` with the reason if a draw of `amount` is not allowed."""
        if self.status is not LineStatus.ACTIVE:
            raise BusinessRuleError(
                f"the credit line is {self.status}", code=f"line_{self.status}", field="amount"
            )
        if self.open_draws >= MAX_OPEN_DRAWS:
            raise BusinessRuleError(
                f"the line already has {MAX_OPEN_DRAWS} open draws", code="too_many_open_draws"
            )
        if amount > self.available:
            raise BusinessRuleError(
                f"{amount.to_str()} asked, {self.available.to_str()} available",
                code="limit_exceeded",
                field="amount",
            )

    def draw(self, amount: Money) -> None:
        self.check_draw(amount)
        self.outstanding += amount
        self.open_draws += 1

    def restore(self, principal: Money, *, loan_closed: bool) -> None:
        """Repaid (or written-off) principal leaves the outstanding balance."""
        if principal > self.outstanding:
            raise ValueError(f"cannot restore {principal}; only {self.outstanding} outstanding")
        self.outstanding -= principal
        if loan_closed:
            self.open_draws -= 1

    def change_status(self, status: LineStatus, reason: ReasonCode, on: date) -> bool:
        """Move to `status`; False (and no history) if the line is already there."""
        if status is self.status or self.status is LineStatus.CLOSED:
            return False
        self.status = status
        self.history.append(LineChange(on, reason, self.limit, status))
        return True

    def change_limit(self, limit: Money, reason: ReasonCode, on: date) -> None:
        """A new limit; lowering below outstanding is allowed (available is then zero)."""
        if not limit.is_positive:
            raise ValueError(f"a limit must be positive, got {limit}")
        self.limit = limit
        self.reviewed_on = on
        self.history.append(LineChange(on, reason, limit, self.status))

    def reflect_delinquency(self, has_overdue_draw: bool, on: date) -> bool:
        """Freeze while any draw is overdue; unfreeze when cured (only our own freeze).

        Returns True if the status changed. A line frozen for another reason (a risk
        signal, say) stays frozen when its draws are cured.
        """
        if has_overdue_draw and self.status is LineStatus.ACTIVE:
            return self.change_status(LineStatus.FROZEN, ReasonCode.OVERDUE, on)
        frozen_by_overdue = bool(self.history) and self.history[-1].reason is ReasonCode.OVERDUE
        if not has_overdue_draw and self.status is LineStatus.FROZEN and frozen_by_overdue:
            return self.change_status(LineStatus.ACTIVE, ReasonCode.OVERDUE_CURED, on)
        return False
