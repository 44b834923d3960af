"""What the lending capability needs from outside: storage, in domain types, and EOD."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from creditline.lending.domain.credit_line import CreditLine
from creditline.lending.domain.journal import AccountCode, JournalEntry
from creditline.lending.domain.loan import Allocation, Loan
from creditline.shared.money import Currency, Money
from creditline.shared.uow import CommittingUnitOfWork


@dataclass(frozen=True, slots=True)
class StoredRepayment:
    """A repayment as recorded, so a retry with the same id returns the same result."""

    repayment_id: str
    loan_id: str
    fingerprint: str
    paid_on: date
    allocation: Allocation


@dataclass(frozen=True, slots=True)
class LoanRecordTotals:
    """What the loan records say is receivable (loans not written off), in minor units."""

    principal: int
    interest: int
    penalty: int


class CreditLineRepository(Protocol):
    def add(self, line: CreditLine) -> None: ...

    def get(self, line_id: str, *, for_update: bool = False) -> CreditLine | None:
        """The line; `for_update` locks its row until the transaction ends (PostgreSQL)."""
        ...

    def get_for_loan(self, loan_id: str) -> CreditLine | None:
        """The line `loan_id` was drawn on, locked like `get(..., for_update=True)`; None if
        there is no such loan."""
        ...

    def save(self, line: CreditLine) -> None:
        """Store balances and status, and append history entries not yet stored."""
        ...


class LoanRepository(Protocol):
    def add(self, loan: Loan, *, request_key: str, fingerprint: str) -> None: ...

    def get(self, loan_id: str) -> Loan | None: ...

    def find_by_request_key(self, request_key: str) -> tuple[Loan, str] | None:
        """The loan a draw request created, with that request's fingerprint."""
        ...

    def save(self, loan: Loan) -> None: ...

    def for_customer(self, customer_id: str) -> list[Loan]: ...

    def for_line(self, line_id: str) -> list[Loan]: ...

    def totals(self, currency: Currency) -> LoanRecordTotals: ...


class RepaymentRepository(Protocol):
    def get(self, repayment_id: str) -> StoredRepayment | None: ...

    def add(self, repayment: StoredRepayment, entry_id: str) -> None: ...


class JournalRepository(Protocol):
    def add(self, entry: JournalEntry) -> None: ...

    def balances(self, as_of: date | None) -> dict[tuple[AccountCode, Currency], int]:
        """Debits minus credits per account, over entries effective on or before `as_of`."""
        ...


class LendingUnitOfWork(CommittingUnitOfWork, Protocol):
    @property
    def lines(self) -> CreditLineRepository: ...

    @property
    def loans(self) -> LoanRepository: ...

    @property
    def repayments(self) -> RepaymentRepository: ...

    @property
    def journal(self) -> JournalRepository: ...


@dataclass(frozen=True, slots=True)
class DaySummary:
    """What one end-of-day run did."""

    business_date: date
    already_ran: bool
    interest_accrued: Money
    penalty_accrued: Money
    loans_written_off: int
    lines_frozen: int
    lines_unfrozen: int


class EndOfDay(Protocol):
    def close_day(self, day: date) -> DaySummary:
        """Close business day `day` for every loan, once (a re-run changes nothing)."""
        ...


class BusinessDates(Protocol):
    def get(self) -> date: ...

    def advance_to(self, new_date: date) -> None: ...
