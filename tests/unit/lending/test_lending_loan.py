"""The loan aggregate: accrual, payoff, prepayment, allocation, delinquency, write-off."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from creditline.lending.domain.delinquency import Bucket, RegulatoryClass, bucket, regulatory_class
from creditline.lending.domain.journal import (
    CREDIT_LOSSES,
    INTEREST_INCOME,
    PENALTY_INCOME,
    PRINCIPAL_RECEIVABLE,
    EntryId,
    JournalEntry,
    net_movements,
)
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.terms import (
    Component,
    DayCount,
    LoanStatus,
    LoanTerms,
    RepaymentMethod,
)
from creditline.shared.errors import BusinessRuleError
from creditline.shared.money import Currency, Money

DRAWN_ON = date(2026, 1, 15)


def a_loan(
    amount: str = "1000",
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT,
    months: int = 3,
    day_count: DayCount = DayCount.ACTUAL_365,
) -> Loan:
    terms = LoanTerms(Decimal("0.0003"), day_count=day_count)
    loan, _ = Loan.draw("L1", "CL1", "C1", Money.yuan(amount), terms, method, months, DRAWN_ON)
    return loan


def run_days(loan: Loan, first: date, last: date) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    day = first
    while day <= last:
        entries += loan.close_day(day)
        day += timedelta(days=1)
    return entries


@pytest.mark.parametrize("day_count", list(DayCount))
@pytest.mark.parametrize("method", list(RepaymentMethod))
def test_daily_accrual_over_a_period_equals_the_scheduled_interest(
    day_count: DayCount, method: RepaymentMethod
) -> None:
    loan = a_loan("7777.77", method, 6, day_count)

    entries = run_days(loan, DRAWN_ON, loan.instalments[-1].due_on - timedelta(days=1))

    assert [i.interest_accrued for i in loan.instalments] == [
        i.interest_due for i in loan.instalments
    ]
    income = -net_movements(entries)[INTEREST_INCOME, Currency.CNY]
    assert income == sum(i.interest_due for i in loan.instalments)


def test_payoff_on_the_draw_day_is_the_principal_alone() -> None:
    loan = a_loan()

    assert loan.payoff_amount(DRAWN_ON) == Money.yuan(1000)


def test_payoff_after_ten_days_charges_ten_days_of_interest() -> None:
    loan = a_loan()
    run_days(loan, DRAWN_ON, DRAWN_ON + timedelta(days=9))

    # 1000 × 0.0003 × 10 days = 3.00 (ACTUAL_365: interest days are calendar days).
    assert loan.payoff_amount(DRAWN_ON + timedelta(days=10)) == Money.yuan("1003.00")


def test_full_early_repayment_closes_the_loan_and_charges_days_used() -> None:
    loan = a_loan()
    run_days(loan, DRAWN_ON, DRAWN_ON + timedelta(days=4))

    allocation, entry = loan.repay(
        Money.yuan("1001.50"), on=DRAWN_ON + timedelta(days=5), entry_id=EntryId("r1")
    )

    assert allocation.interest == Money.yuan("1.50")
    assert allocation.principal == Money.yuan(1000)
    assert loan.status is LoanStatus.CLOSED
    assert net_movements([entry])[PRINCIPAL_RECEIVABLE, Currency.CNY] == -100_000


def test_partial_prepayment_keeps_the_term_and_lowers_later_instalments() -> None:
    loan = a_loan("1000", RepaymentMethod.EQUAL_INSTALLMENT, 3, DayCount.THIRTY_360)
    before = [i.principal_due + i.interest_due for i in loan.instalments]
    run_days(loan, DRAWN_ON, DRAWN_ON + timedelta(days=9))
    on = DRAWN_ON + timedelta(days=10)

    allocation, _ = loan.repay(Money.yuan(500), on=on, entry_id=EntryId("r1"))

    # Ten days of the first period: 1000 × 0.0003 × 30 × 10/31 = 2.903… -> 2.90.
    assert allocation.of(Component.CURRENT_INTEREST) == Money.yuan("2.90")
    assert allocation.of(Component.CURRENT_PRINCIPAL) == Money.yuan("497.10")
    assert len(loan.instalments) == 3
    assert loan.principal_outstanding == Money.yuan("502.90")
    assert sum(i.principal_due - i.principal_paid for i in loan.instalments) == 50_290
    after = [i.principal_due + i.interest_due for i in loan.instalments]
    assert all(a < b for a, b in zip(after, before, strict=True))
    assert loan.instalments[0].interest_due > loan.instalments[0].interest_accrued


def test_an_unpaid_instalment_makes_the_loan_overdue_with_penalty_interest() -> None:
    loan = a_loan("1000", RepaymentMethod.INTEREST_FIRST, 3, DayCount.ACTUAL_365)
    first_due = loan.instalments[0].due_on

    entries = run_days(loan, DRAWN_ON, first_due + timedelta(days=4))

    assert loan.days_past_due == 5
    assert loan.status is LoanStatus.OVERDUE
    # Interest-first: the first instalment has no principal, so no penalty yet.
    assert -net_movements(entries).get((PENALTY_INCOME, Currency.CNY), 0) == 0


def test_penalty_is_one_and_a_half_times_the_rate_on_overdue_principal() -> None:
    loan = a_loan("1000", RepaymentMethod.EQUAL_PRINCIPAL, 3, DayCount.ACTUAL_365)
    first = loan.instalments[0]
    run_days(loan, DRAWN_ON, first.due_on + timedelta(days=9))

    # Overdue principal 333.34 × 0.0003 × 1.5 × 9 days (the due date itself is not late)
    # = 1.350027 -> 1.35.
    assert first.penalty_accrued == 135
    owed = loan.owed(first.due_on + timedelta(days=10))
    assert owed[Component.PENALTY] == 135
    assert owed[Component.OVERDUE_PRINCIPAL] == 33_334


def test_a_late_repayment_pays_penalty_then_overdue_interest_then_principal() -> None:
    loan = a_loan("1000", RepaymentMethod.EQUAL_PRINCIPAL, 3, DayCount.ACTUAL_365)
    first = loan.instalments[0]
    run_days(loan, DRAWN_ON, first.due_on + timedelta(days=9))
    on = first.due_on + timedelta(days=10)

    allocation, _ = loan.repay(Money.yuan(100), on=on, entry_id=EntryId("r1"))

    assert allocation.parts == (
        (Component.PENALTY, Money.yuan("1.35")),
        (Component.OVERDUE_INTEREST, Money.yuan("9.30")),
        (Component.OVERDUE_PRINCIPAL, Money.yuan("89.35")),
    )
    assert loan.status is LoanStatus.OVERDUE


def test_curing_the_arrears_makes_the_loan_current_again() -> None:
    loan = a_loan("1000", RepaymentMethod.EQUAL_PRINCIPAL, 3, DayCount.ACTUAL_365)
    first = loan.instalments[0]
    run_days(loan, DRAWN_ON, first.due_on + timedelta(days=2))
    on = first.due_on + timedelta(days=3)
    owed = loan.owed(on)
    arrears = sum(owed[c] for c in (Component.PENALTY, Component.OVERDUE_INTEREST))
    arrears += owed[Component.OVERDUE_PRINCIPAL]

    loan.repay(Money(arrears, Currency.CNY), on=on, entry_id=EntryId("r1"))

    assert loan.status is LoanStatus.ACTIVE
    assert loan.days_past_due == 0


def test_overpayment_is_refused() -> None:
    loan = a_loan()

    with pytest.raises(BusinessRuleError) as raised:
        loan.repay(Money.yuan("1000.01"), on=DRAWN_ON, entry_id=EntryId("r1"))

    assert raised.value.code == "overpayment"


def test_a_loan_is_written_off_at_180_days_past_due() -> None:
    loan = a_loan("1000", RepaymentMethod.EQUAL_PRINCIPAL, 3, DayCount.ACTUAL_365)
    first_due = loan.instalments[0].due_on

    entries = run_days(loan, DRAWN_ON, first_due + timedelta(days=181))

    assert loan.status is LoanStatus.WRITTEN_OFF
    assert loan.written_off_on == first_due + timedelta(days=179)
    nets = net_movements(entries)
    assert nets[PRINCIPAL_RECEIVABLE, Currency.CNY] == -100_000
    assert nets[CREDIT_LOSSES, Currency.CNY] > 100_000
    assert sum(nets.values()) == 0


@pytest.mark.parametrize(
    ("dpd", "expected_bucket", "expected_class"),
    [
        (0, Bucket.CURRENT, RegulatoryClass.NORMAL),
        (1, Bucket.DPD_1_30, RegulatoryClass.SPECIAL_MENTION),
        (30, Bucket.DPD_1_30, RegulatoryClass.SPECIAL_MENTION),
        (31, Bucket.DPD_31_60, RegulatoryClass.SPECIAL_MENTION),
        (90, Bucket.DPD_61_90, RegulatoryClass.SPECIAL_MENTION),
        (91, Bucket.DPD_91_180, RegulatoryClass.SUBSTANDARD),
        (180, Bucket.DPD_91_180, RegulatoryClass.SUBSTANDARD),
        (181, Bucket.DPD_180_PLUS, RegulatoryClass.SUBSTANDARD),
        (271, Bucket.DPD_180_PLUS, RegulatoryClass.DOUBTFUL),
        (361, Bucket.DPD_180_PLUS, RegulatoryClass.LOSS),
    ],
)
def test_buckets_and_regulatory_classes(
    dpd: int, expected_bucket: Bucket, expected_class: RegulatoryClass
) -> None:
    assert bucket(dpd) is expected_bucket
    assert regulatory_class(dpd) is expected_class
