"""A random life of a credit line: draws, early/partial/late repayments, end-of-day runs.

Invariants after every step: each journal entry balances and so does the whole journal;
the line's available + outstanding equals its limit; the general ledger agrees with the
loans; every fen paid is allocated exactly once; nothing goes negative.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from creditline.lending.domain.credit_line import CreditLine, LineStatus
from creditline.lending.domain.journal import (
    CASH,
    INTEREST_RECEIVABLE,
    PENALTY_RECEIVABLE,
    PRINCIPAL_RECEIVABLE,
    EntryId,
    JournalEntry,
    net_movements,
)
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.terms import DayCount, LoanStatus, LoanTerms, RepaymentMethod
from creditline.shared.errors import BusinessRuleError
from creditline.shared.money import Currency, Money

START = date(2026, 1, 30)
LIMIT = Money.yuan(10_000)


class CreditLineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.line = CreditLine.open("CL1", "C1", LIMIT, Decimal("0.0005"), START)
        self.loans: list[Loan] = []
        self.entries: list[JournalEntry] = []
        self.today = START
        self.ids = count(1)
        self.paid_in = 0

    @rule(
        amount=st.integers(min_value=1, max_value=600_000),
        method=st.sampled_from(list(RepaymentMethod)),
        months=st.sampled_from([3, 6, 12]),
        day_count=st.sampled_from(list(DayCount)),
    )
    def draw(self, amount: int, method: RepaymentMethod, months: int, day_count: DayCount) -> None:
        money = Money(amount, Currency.CNY)
        try:
            self.line.check_draw(money)
        except BusinessRuleError:
            assert self.line.status is not LineStatus.ACTIVE or money > self.line.available
            return
        terms = LoanTerms(Decimal("0.0005"), day_count=day_count)
        loan, entry = Loan.draw(
            f"L{next(self.ids)}", "CL1", "C1", money, terms, method, months, self.today
        )
        self.line.draw(money)
        self.loans.append(loan)
        self.entries.append(entry)

    @precondition(lambda self: any(loan.status is not LoanStatus.CLOSED for loan in self.loans))
    @rule(pick=st.integers(min_value=0), share=st.fractions(min_value=0, max_value=1.2))
    def repay(self, pick: int, share: object) -> None:
        open_loans = [loan for loan in self.loans if loan.status is not LoanStatus.CLOSED]
        loan = open_loans[pick % len(open_loans)]
        payoff = loan.payoff_amount(self.today).minor_units
        amount = max(1, int(payoff * share))  # type: ignore[operator]
        if amount > payoff:
            with pytest.raises(BusinessRuleError, match="more than the payoff"):
                loan.repay(Money(amount, Currency.CNY), on=self.today, entry_id=EntryId("x"))
            return
        before = loan.principal_outstanding
        allocation, entry = loan.repay(
            Money(amount, Currency.CNY), on=self.today, entry_id=EntryId(f"r{next(self.ids)}")
        )
        assert sum(part.minor_units for _, part in allocation.parts) == amount
        assert before - loan.principal_outstanding == allocation.principal
        self.line.restore(allocation.principal, loan_closed=loan.status is LoanStatus.CLOSED)
        self.entries.append(entry)
        self.paid_in += amount

    @rule(days=st.integers(min_value=1, max_value=45))
    def end_of_day(self, days: int) -> None:
        for _ in range(days):
            for loan in self.loans:
                self.entries += loan.close_day(self.today)
            self.today += timedelta(days=1)
            has_overdue = any(
                loan.status in (LoanStatus.OVERDUE, LoanStatus.WRITTEN_OFF) for loan in self.loans
            )
            self.line.reflect_delinquency(has_overdue, self.today)

    @invariant()
    def the_journal_balances(self) -> None:
        assert sum(net_movements(self.entries).values()) == 0

    @invariant()
    def available_plus_outstanding_is_the_limit(self) -> None:
        if self.line.status is LineStatus.ACTIVE:
            assert self.line.available + self.line.outstanding == self.line.limit
        on_loans = sum(loan.principal_outstanding.minor_units for loan in self.loans)
        assert self.line.outstanding.minor_units == on_loans

    @invariant()
    def the_ledger_agrees_with_the_loans(self) -> None:
        nets = net_movements(self.entries)
        on_books = [loan for loan in self.loans if loan.written_off_on is None]
        expected = {
            PRINCIPAL_RECEIVABLE: sum(loan.principal_outstanding.minor_units for loan in on_books),
            INTEREST_RECEIVABLE: sum(i.interest_unpaid for x in on_books for i in x.instalments),
            PENALTY_RECEIVABLE: sum(i.penalty_unpaid for x in on_books for i in x.instalments),
        }
        for account, value in expected.items():
            assert nets.get((account, Currency.CNY), 0) == value, account
        disbursed = sum(loan.principal.minor_units for loan in self.loans)
        assert nets.get((CASH, Currency.CNY), 0) == self.paid_in - disbursed

    @invariant()
    def nothing_is_negative(self) -> None:
        for loan in self.loans:
            for item in loan.instalments:
                assert item.principal_due >= 0
                assert item.interest_due >= 0
                assert item.principal_unpaid >= 0
                assert item.interest_unpaid >= 0
                assert item.penalty_unpaid >= 0
        assert not self.line.available.is_negative


CreditLineMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCreditLine = CreditLineMachine.TestCase
TestCreditLine.pytestmark = [pytest.mark.slow]  # type: ignore[attr-defined]  # about 10 s
