"""Loan terms: the conventions stored with every loan, so its arithmetic can be replayed.

A loan keeps its day count, rounding mode, penalty multiplier and allocation orders; the
code never assumes them. Rates are `Decimal` per day (0.0003 = 0.03 %/day) and must have at
most 8 decimal places, so the end-of-day job can work in exact integers (`rate_e8`).

Day counts (interest days of one monthly period; Fineract calls this "days in month"):

- `THIRTY_360`: every month has 30 interest days;
- `DAYS_365_OVER_12`: every month has 365/12 interest days;
- `ACTUAL_365`: a month has its calendar days (interest = principal × daily rate × days).

Within a period, interest accrues day by day in proportion to calendar days elapsed, so a
full period always accrues exactly its scheduled interest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction

from creditline.shared.money import ROUND_DOWN

RATE_SCALE = 10**8


class DayCount(StrEnum):
    THIRTY_360 = "thirty_360"
    DAYS_365_OVER_12 = "days_365_over_12"
    ACTUAL_365 = "actual_365"

    def interest_days(self, calendar_days: int) -> Fraction:
        """Interest days of a monthly period that has `calendar_days` calendar days."""
        if self is DayCount.THIRTY_360:
            return Fraction(30)
        if self is DayCount.DAYS_365_OVER_12:
            return Fraction(365, 12)
        return Fraction(calendar_days)


class RepaymentMethod(StrEnum):
    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_FIRST = "interest_first"  # 先息后本


class Rounding(StrEnum):
    """Rounding modes a product may name; the loan stores the one it uses."""

    HALF_UP = ROUND_HALF_UP
    HALF_EVEN = ROUND_HALF_EVEN
    DOWN = ROUND_DOWN

    def divide(self, numerator: int, denominator: int) -> int:
        """`numerator / denominator` rounded to a whole number (both non-negative)."""
        if numerator < 0 or denominator <= 0:
            raise ValueError("divide works on a non-negative numerator and positive denominator")
        quotient, remainder = divmod(numerator, denominator)
        if self is Rounding.DOWN or remainder == 0:
            return quotient
        twice = 2 * remainder
        if twice > denominator:
            return quotient + 1
        if twice == denominator and (self is Rounding.HALF_UP or quotient % 2 == 1):
            return quotient + 1
        return quotient


class Component(StrEnum):
    """What a repayment can pay, in the words of the allocation order."""

    PENALTY = "penalty"
    OVERDUE_INTEREST = "overdue_interest"
    OVERDUE_PRINCIPAL = "overdue_principal"
    CURRENT_INTEREST = "current_interest"
    CURRENT_PRINCIPAL = "current_principal"


class LoanStatus(StrEnum):
    ACTIVE = "active"
    OVERDUE = "overdue"
    WRITTEN_OFF = "written_off"
    CLOSED = "closed"


DEFAULT_ORDER: tuple[Component, ...] = (
    Component.PENALTY,
    Component.OVERDUE_INTEREST,
    Component.OVERDUE_PRINCIPAL,
    Component.CURRENT_INTEREST,
    Component.CURRENT_PRINCIPAL,
)

#: After a write-off, recoveries reduce the principal loss first (common collection practice).
WRITTEN_OFF_ORDER: tuple[Component, ...] = (
    Component.OVERDUE_PRINCIPAL,
    Component.CURRENT_PRINCIPAL,
    Component.OVERDUE_INTEREST,
    Component.CURRENT_INTEREST,
    Component.PENALTY,
)


def _default_orders() -> dict[LoanStatus, tuple[Component, ...]]:
    return {
        LoanStatus.ACTIVE: DEFAULT_ORDER,
        LoanStatus.OVERDUE: DEFAULT_ORDER,
        LoanStatus.WRITTEN_OFF: WRITTEN_OFF_ORDER,
    }


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """Everything the arithmetic of one loan depends on, stored with the loan."""

    daily_rate: Decimal
    day_count: DayCount = DayCount.THIRTY_360
    rounding: Rounding = Rounding.HALF_UP
    penalty_multiplier: Decimal = Decimal("1.5")
    grace_days: int = 0
    write_off_days: int = 180
    allocation: dict[LoanStatus, tuple[Component, ...]] = field(default_factory=_default_orders)

    def __post_init__(self) -> None:
        if not isinstance(self.daily_rate, Decimal) or not self.daily_rate.is_finite():
            raise ValueError("daily_rate must be a finite Decimal")
        if self.daily_rate < 0 or self.daily_rate >= 1:
            raise ValueError(f"daily_rate must be in [0, 1), got {self.daily_rate}")
        if (self.daily_rate * RATE_SCALE) % 1 != 0:
            raise ValueError(f"daily_rate has more than 8 decimal places: {self.daily_rate}")
        if self.penalty_multiplier < 0 or (self.penalty_multiplier * 100) % 1 != 0:
            raise ValueError("penalty_multiplier must be non-negative with at most 2 places")
        if self.grace_days < 0 or self.write_off_days <= 0:
            raise ValueError("grace_days must be >= 0 and write_off_days > 0")
        for status, order in self.allocation.items():
            if sorted(order) != sorted(Component):
                raise ValueError(f"the {status} allocation order must name each component once")

    @property
    def rate_e8(self) -> int:
        """The daily rate in units of 1e-8 per day (exact)."""
        return int(self.daily_rate * RATE_SCALE)

    @property
    def penalty_e2(self) -> int:
        """The penalty multiplier in hundredths (1.5 -> 150)."""
        return int(self.penalty_multiplier * 100)

    def order_for(self, status: LoanStatus) -> tuple[Component, ...]:
        return self.allocation.get(status, DEFAULT_ORDER)


def simple_apr(daily_rate: Decimal) -> Decimal:
    """The simple (单利) annual rate: daily rate × 365."""
    return daily_rate * 365
