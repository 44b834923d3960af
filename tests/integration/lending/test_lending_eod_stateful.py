"""A random life of a portfolio, run by the set-based SQL end of day and by the domain.

Hypothesis draws loans (every method, day count, rounding, grace and write-off age),
repays them (arrears, part of the principal ahead, full payoff) and closes runs of
business days with `SqlEndOfDay`; a twin of every loan lives the same life through
`Loan.repay` and `Loan.close_day`, the per-loan rules the SQL job mirrors. After every
step each loan read back from the database equals its twin, the journal nets to zero and
agrees with the loan records; after each end of day a line is frozen exactly when one of
its loans is overdue or written off; re-running a closed day changes nothing. It runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from creditline.lending import service
from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.lending.domain.credit_line import LineStatus
from creditline.lending.domain.journal import EntryId
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.terms import (
    Component,
    DayCount,
    LoanStatus,
    RepaymentMethod,
    Rounding,
)
from creditline.shared.clock import FixedClock
from creditline.shared.errors import BusinessRuleError
from creditline.shared.money import Currency, Money
from creditline.storage.engine import create_db_engine, make_session_factory
from creditline.storage.metadata import metadata

START = date(2026, 1, 30)
LINES = ("CL0", "CL1")
ARREARS = (Component.PENALTY, Component.OVERDUE_INTEREST, Component.OVERDUE_PRINCIPAL)
DELINQUENT = (LoanStatus.OVERDUE, LoanStatus.WRITTEN_OFF)


class EndOfDayAgreement(RuleBasedStateMachine):
    def fresh_database(self) -> str:
        """The URL of an empty, migrated database (each database's test says which)."""
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock()
        self.engine = create_db_engine(self.fresh_database())
        self.sessions = make_session_factory(self.engine)
        self.eod = SqlEndOfDay(self.engine, self.clock)
        self.today = START
        self.twins: dict[str, Loan] = {}
        self.steps = 0
        for line_id in LINES:
            service.open_credit_line(
                self.uow(),
                line_id=line_id,
                customer_id=f"C-{line_id}",
                limit=Money.yuan(50_000),
                daily_rate=Decimal("0.0005") if line_id == "CL0" else Decimal("0.00033"),
                on=START,
            )

    def uow(self) -> SqlLendingUnitOfWork:
        return SqlLendingUnitOfWork(self.sessions, self.clock)

    def teardown(self) -> None:
        self.engine.dispose()

    @rule(
        line_id=st.sampled_from(LINES),
        amount=st.integers(min_value=1_000, max_value=2_000_000),
        months=st.sampled_from([3, 6]),
        method=st.sampled_from(list(RepaymentMethod)),
        day_count=st.sampled_from(list(DayCount)),
        rounding=st.sampled_from(list(Rounding)),
        grace_days=st.integers(min_value=0, max_value=3),
        write_off_days=st.sampled_from([20, 45, 180]),
    )
    def draw(
        self,
        line_id: str,
        amount: int,
        months: int,
        method: RepaymentMethod,
        day_count: DayCount,
        rounding: Rounding,
        grace_days: int,
        write_off_days: int,
    ) -> None:
        self.steps += 1
        product = service.Product(
            day_count=day_count,
            rounding=rounding,
            grace_days=grace_days,
            write_off_days=write_off_days,
        )
        try:
            loan = service.draw(
                self.uow(),
                line_id=line_id,
                request_key=f"k{self.steps}",
                amount=Money(amount, Currency.CNY),
                term_months=months,
                method=method,
                on=self.today,
                product=product,
            )
        except BusinessRuleError:
            return  # a frozen line or not enough available: refused, nothing moved
        self.twins[loan.loan_id] = loan

    @precondition(lambda self: any(t.is_open for t in self.twins.values()))
    @rule(
        pick=st.integers(min_value=0, max_value=1_000),
        how=st.sampled_from(["arrears", "principal_part", "payoff", "a_little"]),
    )
    def repay(self, pick: int, how: str) -> None:
        self.steps += 1
        open_ids = sorted(i for i, t in self.twins.items() if t.is_open)
        loan_id = open_ids[pick % len(open_ids)]
        twin = self.twins[loan_id]
        owed = twin.owed(self.today)
        amount = {
            "arrears": sum(owed[c] for c in ARREARS),
            "principal_part": sum(owed[c] for c in ARREARS)
            + owed[Component.CURRENT_INTEREST]
            + owed[Component.CURRENT_PRINCIPAL] // 3,
            "payoff": sum(owed.values()),
            "a_little": min(sum(owed.values()), 777),
        }[how]
        if amount <= 0:
            return
        money = Money(amount, twin.currency)
        twin.repay(money, on=self.today, entry_id=EntryId(f"twin-{self.steps}"))
        service.repay(
            self.uow(), loan_id=loan_id, repayment_id=f"r{self.steps}", amount=money, on=self.today
        )

    @rule(days=st.integers(min_value=1, max_value=40))
    def close_days(self, days: int) -> None:
        for _ in range(days):
            summary = self.eod.close_day(self.today)
            assert not summary.already_ran
            for twin in self.twins.values():
                twin.close_day(self.today)
            self.today += timedelta(days=1)
        for line_id in LINES:
            delinquent = any(
                t.status in DELINQUENT for t in self.twins.values() if t.line_id == line_id
            )
            status = service.get_line(self.uow(), line_id).status
            assert (status is LineStatus.FROZEN) == delinquent, (line_id, status)

    @precondition(lambda self: self.today > START)
    @rule()
    def re_run_the_last_day(self) -> None:
        summary = self.eod.close_day(self.today - timedelta(days=1))
        assert summary.already_ran
        assert not summary.interest_accrued.is_positive

    @invariant()
    def every_loan_equals_its_twin(self) -> None:
        for loan_id, twin in self.twins.items():
            stored = service.get_loan(self.uow(), loan_id)
            assert stored.instalments == twin.instalments, loan_id
            assert (stored.status, stored.days_past_due) == (twin.status, twin.days_past_due)
            assert (stored.accrual_from, stored.accrual_fixed) == (
                twin.accrual_from,
                twin.accrual_fixed,
            )
            assert stored.written_off_on == twin.written_off_on

    @invariant()
    def the_journal_nets_to_zero_and_agrees_with_the_loans(self) -> None:
        balance = service.trial_balance(self.uow())
        assert balance.nets_to_zero
        assert balance.agrees_with_loans


def _sqlite_databases(template: Path, folder: Path) -> Callable[[], str]:
    def fresh() -> str:
        target = folder / f"eod-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"

    return fresh


def _postgres_databases(url: str) -> Callable[[], str]:
    def fresh() -> str:
        engine = create_db_engine(url)
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if "lending" in t.name)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {names} CASCADE"))
        engine.dispose()
        return url

    return fresh


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_sql_end_of_day_agrees_with_the_domain(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "sqlite":
        fresh = _sqlite_databases(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        fresh = _postgres_databases(request.getfixturevalue("postgres_database"))

    class OnThisDatabase(EndOfDayAgreement):
        def fresh_database(self) -> str:
            return fresh()

    run_state_machine_as_test(
        OnThisDatabase,
        settings=settings(
            # Each example empties a database and closes up to a few hundred days.
            max_examples=10 if kind == "sqlite" else 6,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
