"""Lending, inside the application's transaction.

An approval opens the credit line through lending's own use case
(`lending.service.open_credit_line`, which keeps lending's rules), but on the session of
the application, so the decision and the line commit or roll back together.
`SessionLendingUnitOfWork` is lending's unit of work on a session it does not own: entering
it opens nothing and its `commit` only flushes; the application's unit of work commits.
The credit summary (open lines, their limits, the worst days past due) is read from
lending's tables on the same session, after the customer's row is locked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import lru_cache
from types import TracebackType
from typing import Self

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from creditline.decisioning.adapters.sql import transaction_connection
from creditline.decisioning.domain.application import CreditSummary
from creditline.lending import service as lending_service
from creditline.lending.adapters.sql import (
    SqlCreditLineRepository,
    SqlJournalRepository,
    SqlLoanRepository,
    SqlRepaymentRepository,
)
from creditline.lending.adapters.tables import credit_lines, loans
from creditline.lending.domain.credit_line import LineStatus
from creditline.lending.domain.schedule import build_schedule, effective_apr
from creditline.lending.domain.terms import LoanStatus, LoanTerms, RepaymentMethod
from creditline.shared.clock import Clock
from creditline.shared.money import Currency, Money


class SessionLendingUnitOfWork:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self.lines = SqlCreditLineRepository(session, clock)
        self.loans = SqlLoanRepository(session, clock)
        self.repayments = SqlRepaymentRepository(session, clock)
        self.journal = SqlJournalRepository(session, clock)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The owner of the session decides; nothing is rolled back here."""

    def commit(self) -> None:
        self._session.flush()


class LendingLineOpener:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._uow = SessionLendingUnitOfWork(session, clock)

    def open_line(
        self, *, line_id: str, customer_id: str, limit: Money, daily_rate: Decimal, on: date
    ) -> str:
        line = lending_service.open_credit_line(
            self._uow,
            line_id=line_id,
            customer_id=customer_id,
            limit=limit,
            daily_rate=daily_rate,
            on=on,
        )
        return line.line_id


def line_opener(clock: Clock) -> Callable[[Session], LendingLineOpener]:
    return lambda session: LendingLineOpener(session, clock)


# One round trip for the whole summary: the lines' count and limits and the worst days past
# due of the open loans, as scalar subqueries of one statement built once.
_SUMMARY = select(
    select(func.count())
    .where(credit_lines.c.customer_id == bindparam("customer_id"))
    .where(credit_lines.c.status != LineStatus.CLOSED.value)
    .scalar_subquery()
    .label("open_lines"),
    select(func.coalesce(func.sum(credit_lines.c.limit_minor), 0))
    .where(credit_lines.c.customer_id == bindparam("customer_id"))
    .where(credit_lines.c.status != LineStatus.CLOSED.value)
    .scalar_subquery()
    .label("limits_minor"),
    select(func.coalesce(func.max(loans.c.days_past_due), 0))
    .where(loans.c.customer_id == bindparam("customer_id"))
    .where(loans.c.status != LoanStatus.CLOSED.value)
    .scalar_subquery()
    .label("worst_dpd"),
)


def credit_summary(session: Session) -> Callable[[str, date], CreditSummary]:
    def read(customer_id: str, on: date) -> CreditSummary:
        row = transaction_connection(session).execute(_SUMMARY, {"customer_id": customer_id}).one()
        return CreditSummary(
            has_open_line=int(row.open_lines or 0) > 0,
            max_days_past_due=int(row.worst_dpd or 0),
            other_limits=Money(int(row.limits_minor or 0), Currency.CNY),
        )

    return read


@lru_cache(maxsize=1024)
def representative_apr(daily_rate: Decimal) -> Decimal:
    """APR (IRR method) of ¥10,000 over 12 months, equal instalments, on the product's
    default terms: the figure shown beside the daily rate in a decision.

    A pure function of the rate (the product's terms and the drawing date are constants),
    so it is computed once per rate: the price table has a handful of rates, and solving
    the IRR of a 12-period schedule costs more than the rest of a decision's arithmetic."""
    product = lending_service.DEFAULT_PRODUCT
    terms = LoanTerms(
        daily_rate=daily_rate,
        day_count=product.day_count,
        rounding=product.rounding,
        penalty_multiplier=product.penalty_multiplier,
        grace_days=product.grace_days,
        write_off_days=product.write_off_days,
    )
    principal = Money(1_000_000, Currency.CNY)
    schedule = build_schedule(principal, terms, RepaymentMethod.EQUAL_INSTALLMENT, 12, _DRAWN_ON)
    return effective_apr(principal, schedule, _DRAWN_ON)


# A fixed, ordinary drawing date: the representative APR must not vary with the calendar.
_DRAWN_ON = date(2026, 1, 15)
