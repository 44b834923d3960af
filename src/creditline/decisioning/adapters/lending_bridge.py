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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from functools import lru_cache
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session

from creditline.decisioning.adapters.sql import CREDIT_SUMMARY, credit_summary_of
from creditline.decisioning.domain.application import CreditSummary
from creditline.lending import service as lending_service
from creditline.lending.adapters.sql import (
    SqlCreditLineRepository,
    SqlJournalRepository,
    SqlLoanRepository,
    SqlRepaymentRepository,
)
from creditline.lending.domain.credit_line import CreditLine
from creditline.lending.domain.schedule import build_schedule, effective_apr
from creditline.lending.domain.terms import LoanTerms, RepaymentMethod
from creditline.shared.clock import Clock
from creditline.shared.money import Currency, Money
from creditline.storage.uow import transaction_connection


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

    @contextmanager
    def committing(self) -> Iterator[None]:
        """The writes, then `commit` (a flush): the owner's commit ends the transaction."""
        yield
        self.commit()

    def commit(self) -> None:
        self._session.flush()


class _NewLines:
    """Lending's line repository for a line id that no stored line can hold yet: the
    look-up `open_credit_line` makes for a retried opening is answered without a query."""

    def __init__(self, lines: SqlCreditLineRepository) -> None:
        self._lines = lines

    def add(self, line: CreditLine) -> None:
        self._lines.add(line)

    def get(self, line_id: str, *, for_update: bool = False) -> CreditLine | None:
        return None

    def save(self, line: CreditLine) -> None:
        self._lines.save(line)


class _NewLineUnitOfWork(SessionLendingUnitOfWork):
    """Lending's unit of work on the application's session, for a line id that is new."""

    def __init__(self, session: Session, clock: Clock) -> None:
        super().__init__(session, clock)
        self.lines = _NewLines(SqlCreditLineRepository(session, clock))  # type: ignore[assignment]


class LendingLineOpener:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def open_line(
        self,
        *,
        line_id: str,
        customer_id: str,
        limit: Money,
        daily_rate: Decimal,
        on: date,
        new: bool = False,
    ) -> str:
        kind = _NewLineUnitOfWork if new else SessionLendingUnitOfWork
        uow = kind(self._session, self._clock)
        line = lending_service.open_credit_line(
            uow,
            line_id=line_id,
            customer_id=customer_id,
            limit=limit,
            daily_rate=daily_rate,
            on=on,
        )
        return line.line_id


def line_opener(clock: Clock) -> Callable[[Session], LendingLineOpener]:
    return lambda session: LendingLineOpener(session, clock)


def credit_summary(session: Session) -> Callable[[str, date], CreditSummary]:
    """The credit summary as a statement of its own (the unit of work's default reads it
    with the consents, in one statement)."""

    def read(customer_id: str, on: date) -> CreditSummary:
        connection = transaction_connection(session)
        return credit_summary_of(
            connection.execute(CREDIT_SUMMARY, {"customer_id": customer_id}).one()._mapping
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
