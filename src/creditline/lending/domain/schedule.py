"""Repayment schedules: due dates, and how principal and interest split per instalment.

Instalment `k` of a loan drawn on `d` falls due `k` calendar months after `d` (the 31st
becomes the last day of a shorter month). The period before it has `A` calendar days and
`D` interest days by the loan's day count; its interest is `balance × daily rate × D`,
rounded once by the loan's rounding mode, which is exactly what the end-of-day job accrues
over the `A` days of the period.

- `equal_installment` (等额本息): a level payment `pmt(daily rate × D̄, n, principal)` with
  `D̄` = 30 or 365/12 (`ACTUAL_365` levels on 365/12); each instalment pays its interest and
  the rest of the payment as principal; the last instalment clears the balance.
- `equal_principal` (等额本金): principal split evenly (fen left over go to the first
  instalments), interest on the falling balance.
- `interest_first` (先息后本): interest every month, all principal at maturity.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction

from creditline.lending.domain.terms import RATE_SCALE, DayCount, LoanTerms, RepaymentMethod
from creditline.shared.money import Money

TERMS_MONTHS = (3, 6, 12)


@dataclass(frozen=True, slots=True)
class ScheduledInstalment:
    number: int
    due_on: date
    period_days: int
    principal: Money
    interest: Money

    @property
    def total(self) -> Money:
        return self.principal + self.interest


@dataclass(frozen=True, slots=True)
class Schedule:
    instalments: tuple[ScheduledInstalment, ...]

    @property
    def total_interest(self) -> Money:
        result = self.instalments[0].interest - self.instalments[0].interest
        for item in self.instalments:
            result += item.interest
        return result

    @property
    def total_principal(self) -> Money:
        result = self.instalments[0].principal - self.instalments[0].principal
        for item in self.instalments:
            result += item.principal
        return result


def add_months(start: date, months: int) -> date:
    """The same day `months` later, or the last day of that month if it is shorter."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_dates(drawn_on: date, term_months: int) -> list[date]:
    return [add_months(drawn_on, k) for k in range(1, term_months + 1)]


def period_interest_minor(balance_minor: int, terms: LoanTerms, calendar_days: int) -> int:
    """Interest of one full period on a constant balance, rounded once."""
    return accrued_minor(balance_minor, terms, calendar_days, calendar_days)


def accrued_minor(balance_minor: int, terms: LoanTerms, calendar_days: int, elapsed: int) -> int:
    """Interest accrued after `elapsed` of the period's `calendar_days` days, rounded once.

    `balance × rate × D × elapsed / A` is computed exactly in integers (the same formula
    the SQL end-of-day job uses), then rounded by the loan's rounding mode.
    """
    days = terms.day_count.interest_days(calendar_days)
    numerator = balance_minor * terms.rate_e8 * days.numerator * elapsed
    denominator = RATE_SCALE * days.denominator * calendar_days
    return terms.rounding.divide(numerator, denominator)


def level_payment_minor(principal_minor: int, terms: LoanTerms, periods: int) -> int:
    """The equal-instalment payment, `P·r / (1 − (1+r)^−n)`, rounded by the loan's mode."""
    days = Fraction(30) if terms.day_count is DayCount.THIRTY_360 else Fraction(365, 12)
    with localcontext() as context:
        context.prec = 40
        rate = terms.daily_rate * Decimal(days.numerator) / Decimal(days.denominator)
        if rate == 0:
            exact = Decimal(principal_minor) / periods
        else:
            exact = Decimal(principal_minor) * rate / (1 - (1 + rate) ** -periods)
        return int(exact.quantize(Decimal(1), rounding=terms.rounding.value))


def principal_parts(
    balance_minor: int,
    terms: LoanTerms,
    method: RepaymentMethod,
    period_days: Sequence[int],
) -> list[int]:
    """How `balance` is repaid over the periods (interest follows from the balances)."""
    n = len(period_days)
    if method is RepaymentMethod.INTEREST_FIRST:
        return [0] * (n - 1) + [balance_minor]
    if method is RepaymentMethod.EQUAL_PRINCIPAL:
        base, extra = divmod(balance_minor, n)
        return [base + (1 if k < extra else 0) for k in range(n)]
    payment = level_payment_minor(balance_minor, terms, n)
    parts: list[int] = []
    remaining = balance_minor
    for k, days in enumerate(period_days):
        if k == n - 1:
            parts.append(remaining)
            break
        interest = period_interest_minor(remaining, terms, days)
        part = min(max(payment - interest, 0), remaining)
        parts.append(part)
        remaining -= part
    return parts


def build_schedule(
    principal: Money,
    terms: LoanTerms,
    method: RepaymentMethod,
    term_months: int,
    drawn_on: date,
) -> Schedule:
    """The schedule of a new draw of `principal` on `drawn_on`."""
    if term_months <= 0:
        raise ValueError(f"term_months must be positive, got {term_months}")
    if not principal.is_positive:
        raise ValueError(f"a draw lends a positive amount, got {principal}")
    dates = due_dates(drawn_on, term_months)
    starts = [drawn_on, *dates[:-1]]
    days = [(end - start).days for start, end in zip(starts, dates, strict=True)]
    parts = principal_parts(principal.minor_units, terms, method, days)
    instalments = []
    balance = principal.minor_units
    for k, (due_on, period, part) in enumerate(zip(dates, days, parts, strict=True), start=1):
        interest = period_interest_minor(balance, terms, period)
        instalments.append(
            ScheduledInstalment(
                k,
                due_on,
                period,
                Money(part, principal.currency),
                Money(interest, principal.currency),
            )
        )
        balance -= part
    return Schedule(tuple(instalments))


def effective_apr(principal: Money, schedule: Schedule, drawn_on: date) -> Decimal:
    """The annualised rate (IRR of the cash flows, compounded monthly: ×12), 6 places.

    This is what PBoC [2021] No. 3 asks to show next to a daily rate: the rate at which the
    payments are worth the principal. Found by bisection on the monthly rate.
    """
    flows = [Decimal(item.total.minor_units) for item in schedule.instalments]
    target = Decimal(principal.minor_units)
    with localcontext() as context:
        context.prec = 34

        def present_value(rate: Decimal) -> Decimal:
            discount = 1 / (1 + rate)
            value, factor = Decimal(0), Decimal(1)
            for flow in flows:
                factor *= discount
                value += flow * factor
            return value

        low, high = Decimal(0), Decimal(1)
        for _ in range(70):
            middle = (low + high) / 2
            if present_value(middle) > target:
                low = middle
            else:
                high = middle
        return (low * 12).quantize(Decimal("0.000001"))
