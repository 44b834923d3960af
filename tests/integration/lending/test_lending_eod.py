"""The set-based SQL end of day agrees with the domain's `Loan.close_day`, day by day.

Loans of every method and day count are drawn; some are repaid early, partly, on time,
late or never; the SQL job and the domain close the same days; afterwards every loan
read back from the database equals its domain twin, and the journal still nets to zero
and agrees with the loan records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from creditline.lending import service
from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.lending.domain.credit_line import LineStatus
from creditline.lending.domain.journal import EntryId
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.terms import Component, DayCount, LoanStatus, RepaymentMethod
from creditline.shared.clock import FixedClock
from creditline.shared.money import Money
from creditline.storage.business_date import SqlBusinessDateStore
from creditline.storage.engine import make_session_factory

ON = date(2026, 1, 31)
UowFactory = Callable[[], SqlLendingUnitOfWork]


@pytest.fixture
def new_uow(engine: Engine, clock: FixedClock) -> UowFactory:
    factory = make_session_factory(engine)
    return lambda: SqlLendingUnitOfWork(factory, clock)


def portfolio(new_uow: UowFactory) -> dict[str, Loan]:
    loans = {}
    n = 0
    for line in range(3):
        service.open_credit_line(
            new_uow(),
            line_id=f"CL{line}",
            customer_id=f"C{line}",
            limit=Money.yuan(200_000),
            daily_rate=Decimal("0.00045"),
            on=ON,
        )
    for day_count in DayCount:
        for method in RepaymentMethod:
            for term in (3, 6):
                n += 1
                loan = service.draw(
                    new_uow(),
                    line_id=f"CL{n % 3}",
                    request_key=f"k{n}",
                    amount=Money(1_234_567 + 1_001 * n, Money.yuan(1).currency),
                    term_months=term,
                    method=method,
                    on=ON,
                    product=service.Product(day_count=day_count),
                )
                loans[loan.loan_id] = loan
    return loans


def repayment_for(index: int, loan: Loan, day: date) -> int:
    """A varied repayment habit per loan: early, partial, on time, late, never."""
    owed = loan.owed(day)
    habit = index % 5
    due_today = any(i.due_on == day for i in loan.instalments)
    if habit == 0 and day == ON + timedelta(days=17):
        return sum(owed.values())  # early full payoff
    if habit == 1 and day == ON + timedelta(days=10):
        return owed[Component.CURRENT_PRINCIPAL] // 3 + owed[Component.CURRENT_INTEREST]
    if habit == 2 and due_today:
        return owed[Component.OVERDUE_INTEREST] + owed[Component.OVERDUE_PRINCIPAL]
    if habit == 3 and any(i.due_on == day - timedelta(days=20) for i in loan.instalments):
        return sum(owed[c] for c in Component if c.name.startswith(("PENALTY", "OVERDUE")))
    return 0


@pytest.mark.slow
def test_sql_end_of_day_matches_the_domain_loan_by_loan(
    new_uow: UowFactory, engine: Engine, clock: FixedClock
) -> None:
    twins = portfolio(new_uow)
    eod = SqlEndOfDay(engine, clock)
    dates = SqlBusinessDateStore(engine, clock, ON)
    ids = sorted(twins)

    for offset in range(215):
        day = ON + timedelta(days=offset)
        for index, loan_id in enumerate(ids):
            twin = twins[loan_id]
            amount = repayment_for(index, twin, day) if twin.status is not LoanStatus.CLOSED else 0
            if amount > 0:
                money = Money(amount, twin.currency)
                twin.repay(money, on=day, entry_id=EntryId(f"t{offset}{index}"))
                service.repay(
                    new_uow(),
                    loan_id=loan_id,
                    repayment_id=f"r{offset}-{index}",
                    amount=money,
                    on=day,
                )
        service.run_end_of_day(eod, dates)
        for twin in twins.values():
            twin.close_day(day)

    for loan_id, twin in twins.items():
        stored = service.get_loan(new_uow(), loan_id)
        assert stored.instalments == twin.instalments, loan_id
        assert (stored.status, stored.days_past_due) == (twin.status, twin.days_past_due)
        assert (stored.accrual_from, stored.accrual_fixed) == (
            twin.accrual_from,
            twin.accrual_fixed,
        )
    statuses = {twin.status for twin in twins.values()}
    assert {LoanStatus.CLOSED, LoanStatus.WRITTEN_OFF} <= statuses
    balance = service.trial_balance(new_uow())
    assert balance.nets_to_zero
    assert balance.agrees_with_loans
    frozen = [service.get_line(new_uow(), f"CL{n}").status for n in range(3)]
    assert LineStatus.FROZEN in frozen


def test_re_running_a_day_changes_nothing(
    new_uow: UowFactory, engine: Engine, clock: FixedClock
) -> None:
    twins = portfolio(new_uow)
    eod = SqlEndOfDay(engine, clock)
    first = eod.close_day(ON)
    before = {loan_id: service.get_loan(new_uow(), loan_id) for loan_id in twins}

    again = eod.close_day(ON)

    assert first.interest_accrued.is_positive
    assert again.already_ran
    after = {loan_id: service.get_loan(new_uow(), loan_id) for loan_id in twins}
    assert after == before
    assert service.trial_balance(new_uow()).balances == service.trial_balance(new_uow()).balances


def test_a_cured_line_is_unfrozen(new_uow: UowFactory, engine: Engine, clock: FixedClock) -> None:
    service.open_credit_line(
        new_uow(),
        line_id="CL",
        customer_id="C",
        limit=Money.yuan(5000),
        daily_rate=Decimal("0.0005"),
        on=ON,
    )
    loan = service.draw(
        new_uow(),
        line_id="CL",
        request_key="k",
        amount=Money.yuan(3000),
        term_months=3,
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        on=ON,
    )
    dates = SqlBusinessDateStore(engine, clock, ON)
    eod = SqlEndOfDay(engine, clock)
    late_day = loan.instalments[0].due_on + timedelta(days=3)
    service.run_end_of_day(eod, dates, to=late_day)
    assert service.get_line(new_uow(), "CL").status is LineStatus.FROZEN
    owed = service.payoff_quote(new_uow(), loan_id=loan.loan_id, on=late_day)
    arrears = owed[Component.PENALTY] + owed[Component.OVERDUE_INTEREST]
    arrears += owed[Component.OVERDUE_PRINCIPAL]
    service.repay(new_uow(), loan_id=loan.loan_id, repayment_id="r", amount=arrears, on=late_day)

    service.run_end_of_day(eod, dates)

    line = service.get_line(new_uow(), "CL")
    assert line.status is LineStatus.ACTIVE
    assert [c.reason.value for c in line.history] == ["opened", "overdue", "overdue_cured"]
