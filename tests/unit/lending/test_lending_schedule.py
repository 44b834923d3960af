"""Schedules against an independent computation (numpy-financial) and DOMAIN.md's example."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext

import numpy_financial as npf
import pytest

from creditline.lending.domain.schedule import (
    add_months,
    build_schedule,
    effective_apr,
    level_payment_minor,
)
from creditline.lending.domain.terms import DayCount, LoanTerms, RepaymentMethod, Rounding
from creditline.shared.money import Money

DRAWN_ON = date(2026, 1, 15)
RATE = Decimal("0.0003")


def table(schedule_rows: str) -> list[tuple[str, str, str]]:
    """Rows of 'due_on principal interest' from a readable block."""
    rows = []
    for line in schedule_rows.strip().splitlines():
        due_on, principal, interest = line.split()
        rows.append((due_on, principal, interest))
    return rows


def as_rows(
    principal: str,
    method: RepaymentMethod,
    months: int,
    day_count: DayCount = DayCount.THIRTY_360,
) -> list[tuple[str, str, str]]:
    terms = LoanTerms(RATE, day_count=day_count)
    schedule = build_schedule(Money.yuan(principal), terms, method, months, DRAWN_ON)
    return [
        (i.due_on.isoformat(), i.principal.to_str(), i.interest.to_str())
        for i in schedule.instalments
    ]


def test_equal_installment_golden_three_months_thirty_day() -> None:
    # pmt(0.009, 3, 1000) = 339.3513 -> 339.35; interest 1000 × 0.009 = 9.00, then on
    # 669.65 -> 6.03, then on 336.33 -> 3.03; the last instalment clears the balance.
    assert as_rows("1000", RepaymentMethod.EQUAL_INSTALLMENT, 3) == table(
        """
        2026-02-15 330.35 9.00
        2026-03-15 333.32 6.03
        2026-04-15 336.33 3.03
        """
    )


def test_equal_principal_golden_three_months_thirty_day() -> None:
    assert as_rows("1000", RepaymentMethod.EQUAL_PRINCIPAL, 3) == table(
        """
        2026-02-15 333.34 9.00
        2026-03-15 333.33 6.00
        2026-04-15 333.33 3.00
        """
    )


def test_interest_first_golden_three_months_actual_365() -> None:
    # 1000 × 0.0003 × days: January 15 → February 15 is 31 days, then 28, then 31.
    assert as_rows(
        "1000", RepaymentMethod.INTEREST_FIRST, 3, day_count=DayCount.ACTUAL_365
    ) == table(
        """
        2026-02-15 0.00 9.30
        2026-03-15 0.00 8.40
        2026-04-15 1000.00 9.30
        """
    )


@pytest.mark.parametrize(
    ("day_count", "days"),
    [(DayCount.THIRTY_360, Decimal(30)), (DayCount.DAYS_365_OVER_12, Decimal(365) / 12)],
)
@pytest.mark.parametrize("months", [3, 6, 12])
@pytest.mark.parametrize("principal", ["1000", "5000", "200000", "1234.56"])
def test_level_payment_matches_numpy_financial_pmt(
    day_count: DayCount, days: Decimal, months: int, principal: str
) -> None:
    terms = LoanTerms(RATE, day_count=day_count, rounding=Rounding.HALF_UP)
    expected = -npf.pmt(float(RATE * days), months, float(principal))

    payment = level_payment_minor(Money.yuan(principal).minor_units, terms, months)

    assert abs(payment - expected * 100) <= 0.5 + 1e-6
    schedule = build_schedule(
        Money.yuan(principal), terms, RepaymentMethod.EQUAL_INSTALLMENT, months, DRAWN_ON
    )
    # Every instalment but the last pays exactly the level payment.
    assert {i.total.minor_units for i in schedule.instalments[:-1]} == {payment}
    assert schedule.total_principal == Money.yuan(principal)


@pytest.mark.parametrize(
    ("day_count", "days", "expected"),
    [
        (DayCount.THIRTY_360, Decimal(30), "59.46"),
        (DayCount.DAYS_365_OVER_12, Decimal(365) / 12, "60.30"),
    ],
)
def test_domain_worked_example_exact_annuity_interest(
    day_count: DayCount, days: Decimal, expected: str
) -> None:
    """DOMAIN.md: ¥1,000, 12 months, 0.03 %/day: 59.46 (30-day) and 60.30 (365/12)."""
    with localcontext() as context:
        context.prec = 40
        rate = RATE * days
        payment = Decimal(1000) * rate / (1 - (1 + rate) ** -12)
        exact_interest = payment * 12 - 1000

    assert exact_interest.quantize(Decimal("0.01")) == Decimal(expected)


@pytest.mark.parametrize(
    ("day_count", "expected"),
    [(DayCount.THIRTY_360, "59.48"), (DayCount.DAYS_365_OVER_12, "60.30")],
)
def test_domain_worked_example_fen_rounded_schedule(day_count: DayCount, expected: str) -> None:
    """The schedule rounds each instalment's interest to the fen; with 30-day months that
    adds 0.02 to the exact annuity's 59.46 (documented in docs/lending.md)."""
    schedule = build_schedule(
        Money.yuan(1000),
        LoanTerms(RATE, day_count=day_count),
        RepaymentMethod.EQUAL_INSTALLMENT,
        12,
        DRAWN_ON,
    )

    assert schedule.total_interest == Money.yuan(expected)
    assert schedule.total_principal == Money.yuan(1000)


def test_the_thirty_first_falls_back_to_the_end_of_a_shorter_month() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 31), 2) == date(2026, 3, 31)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


def test_effective_apr_of_the_worked_example_matches_numpy_financial_rate() -> None:
    terms = LoanTerms(RATE)
    schedule = build_schedule(
        Money.yuan(1000), terms, RepaymentMethod.EQUAL_INSTALLMENT, 12, DRAWN_ON
    )
    flows = [-1000.0] + [float(i.total.amount) for i in schedule.instalments]

    apr = effective_apr(Money.yuan(1000), schedule, DRAWN_ON)

    assert abs(float(apr) - float(npf.irr(flows)) * 12) < 1e-6
    assert apr > RATE * 360  # the APR exceeds the simple rate: principal falls over time
