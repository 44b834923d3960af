"""Lending use cases: open a line, quote, draw, repay, payoff quote, reads, trial balance.

Each function takes a unit of work and returns domain objects. Writes are idempotent on a
caller-chosen id (C3): a retry with the same id and the same inputs returns the first
result; the same id with other inputs is a `ConflictError`. A draw locks its credit line
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite serialises writers), so concurrent draws can
never overdraw it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from creditline.lending.domain.credit_line import CreditLine
from creditline.lending.domain.journal import (
    INTEREST_RECEIVABLE,
    PENALTY_RECEIVABLE,
    PRINCIPAL_RECEIVABLE,
    AccountCode,
    EntryId,
)
from creditline.lending.domain.loan import Allocation, Loan
from creditline.lending.domain.schedule import (
    TERMS_MONTHS,
    Schedule,
    build_schedule,
    effective_apr,
)
from creditline.lending.domain.terms import (
    Component,
    DayCount,
    LoanStatus,
    LoanTerms,
    RepaymentMethod,
    Rounding,
    simple_apr,
)
from creditline.lending.ports import (
    BusinessDates,
    DaySummary,
    EndOfDay,
    LendingUnitOfWork,
    StoredRepayment,
)
from creditline.shared.errors import ConflictError, FieldIssue, InvalidInputError, NotFoundError
from creditline.shared.ids import new_id
from creditline.shared.money import Currency, Money
from creditline.shared.uow import RequestRecord

MIN_LIMIT = Money.yuan(1_000)
MAX_LIMIT = Money.yuan(200_000)


@dataclass(frozen=True, slots=True)
class Product:
    """The product terms a new draw gets (versioned data; these are DOMAIN.md's defaults)."""

    day_count: DayCount = DayCount.THIRTY_360
    rounding: Rounding = Rounding.HALF_UP
    penalty_multiplier: Decimal = Decimal("1.5")
    grace_days: int = 0
    write_off_days: int = 180

    def terms_for(self, line: CreditLine) -> LoanTerms:
        return LoanTerms(
            daily_rate=line.daily_rate,
            day_count=self.day_count,
            rounding=self.rounding,
            penalty_multiplier=self.penalty_multiplier,
            grace_days=self.grace_days,
            write_off_days=self.write_off_days,
        )


DEFAULT_PRODUCT = Product()


@dataclass(frozen=True, slots=True)
class Quote:
    amount: Money
    term_months: int
    method: RepaymentMethod
    terms: LoanTerms
    schedule: Schedule
    apr: Decimal
    simple_apr: Decimal


@dataclass(frozen=True, slots=True)
class RepaymentResult:
    repayment_id: str
    loan: Loan
    allocation: Allocation
    paid_on: date


@dataclass(frozen=True, slots=True)
class TrialBalance:
    as_of: date | None
    balances: dict[tuple[AccountCode, Currency], int]
    loan_records: dict[tuple[AccountCode, Currency], int]

    @property
    def nets_to_zero(self) -> bool:
        return sum(self.balances.values()) == 0

    @property
    def agrees_with_loans(self) -> bool:
        return all(self.balances.get(key, 0) == value for key, value in self.loan_records.items())


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def _check_term(term_months: int) -> None:
    if term_months not in TERMS_MONTHS:
        raise InvalidInputError(
            FieldIssue("term_months", "unsupported_term", f"term must be one of {TERMS_MONTHS}")
        )


def _check_amount(amount: Money, field: str = "amount") -> None:
    if not amount.is_positive:
        raise InvalidInputError(FieldIssue(field, "must_be_positive", "must be more than 0"))


def open_credit_line(
    uow: LendingUnitOfWork,
    *,
    line_id: str,
    customer_id: str,
    limit: Money,
    daily_rate: Decimal,
    on: date,
) -> CreditLine:
    """Open a line (called by the decision pipeline); idempotent on `line_id`."""
    if not MIN_LIMIT <= limit <= MAX_LIMIT:
        raise InvalidInputError(
            FieldIssue("limit", "out_of_range", f"a limit is {MIN_LIMIT} to {MAX_LIMIT}")
        )
    LoanTerms(daily_rate)  # validates the rate (range, at most 8 places)
    with uow:
        existing = uow.lines.get(line_id)
        if existing is not None:
            same = (existing.customer_id, existing.limit, existing.daily_rate) == (
                customer_id,
                limit,
                daily_rate,
            )
            if not same:
                raise ConflictError(f"credit line {line_id} exists with other terms")
            return existing
        line = CreditLine.open(line_id, customer_id, limit, daily_rate, on)
        uow.lines.add(line)
        uow.commit()
    return line


def get_line(uow: LendingUnitOfWork, line_id: str) -> CreditLine:
    with uow:
        line = uow.lines.get(line_id)
    if line is None:
        raise NotFoundError(f"credit line {line_id} not found")
    return line


def quote(
    uow: LendingUnitOfWork,
    *,
    line_id: str,
    amount: Money,
    term_months: int,
    method: RepaymentMethod,
    on: date,
    product: Product = DEFAULT_PRODUCT,
) -> Quote:
    """The schedule, total interest and APR a draw would get today; nothing moves."""
    _check_amount(amount)
    _check_term(term_months)
    line = get_line(uow, line_id)
    terms = product.terms_for(line)
    schedule = build_schedule(amount, terms, method, term_months, on)
    return Quote(
        amount,
        term_months,
        method,
        terms,
        schedule,
        effective_apr(amount, schedule, on),
        simple_apr(terms.daily_rate),
    )


def draw(
    uow: LendingUnitOfWork,
    *,
    line_id: str,
    request_key: str,
    amount: Money,
    term_months: int,
    method: RepaymentMethod,
    on: date,
    product: Product = DEFAULT_PRODUCT,
    record: RequestRecord[Loan] | None = None,
) -> Loan:
    """Lend `amount` on the line; a retry with the same `request_key` returns the same loan.

    `record`, if given, is claimed first and completed last in the same transaction."""
    _check_amount(amount)
    _check_term(term_months)
    fingerprint = _fingerprint(line_id, amount.minor_units, amount.currency, term_months, method)
    with uow:
        if record is not None:
            record.claim()
        line = uow.lines.get(line_id, for_update=True)
        if line is None:
            raise NotFoundError(f"credit line {line_id} not found")
        found = uow.loans.find_by_request_key(request_key)
        if found is not None:
            loan, stored = found
            if stored != fingerprint:
                raise ConflictError(
                    "this Idempotency-Key was used for another draw", code="idempotency_conflict"
                )
            if record is not None:
                record.complete(loan)
                uow.commit()
            return loan
        line.draw(amount)
        loan, entry = Loan.draw(
            new_id("ln"),
            line.line_id,
            line.customer_id,
            amount,
            product.terms_for(line),
            method,
            term_months,
            on,
        )
        with uow.committing():
            uow.lines.save(line)
            uow.loans.add(loan, request_key=request_key, fingerprint=fingerprint)
            uow.journal.add(entry)
            if record is not None:
                record.complete(loan)
    return loan


def get_loan(uow: LendingUnitOfWork, loan_id: str) -> Loan:
    with uow:
        loan = uow.loans.get(loan_id)
    if loan is None:
        raise NotFoundError(f"loan {loan_id} not found")
    return loan


def loans_for_customer(uow: LendingUnitOfWork, customer_id: str) -> list[Loan]:
    with uow:
        return uow.loans.for_customer(customer_id)


def payoff_quote(uow: LendingUnitOfWork, *, loan_id: str, on: date) -> dict[Component, Money]:
    """Today's full payoff, per component (interest only for the days used)."""
    loan = get_loan(uow, loan_id)
    if loan.status is LoanStatus.CLOSED:
        return {component: loan.money(0) for component in Component}
    return {component: loan.money(v) for component, v in loan.owed(on).items()}


def repay(
    uow: LendingUnitOfWork,
    *,
    loan_id: str,
    repayment_id: str,
    amount: Money,
    on: date,
    record: RequestRecord[RepaymentResult] | None = None,
) -> RepaymentResult:
    """Apply a repayment in the loan's allocation order; overpayment is refused.

    `record`, if given, is claimed first and completed last in the same transaction."""
    _check_amount(amount)
    fingerprint = _fingerprint(loan_id, amount.minor_units, amount.currency)
    with uow:
        if record is not None:
            record.claim()
        # Lock the loan's line first (the same order as a draw), then read the loan under it.
        line = uow.lines.get_for_loan(loan_id)
        if line is None:
            raise NotFoundError(f"loan {loan_id} not found")
        stored = uow.repayments.get(repayment_id)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise ConflictError(
                    "this Idempotency-Key was used for another repayment",
                    code="idempotency_conflict",
                )
            loan = uow.loans.get(loan_id)
            assert loan is not None
            earlier = RepaymentResult(repayment_id, loan, stored.allocation, stored.paid_on)
            if record is not None:
                record.complete(earlier)
                uow.commit()
            return earlier
        loan = uow.loans.get(loan_id)
        assert loan is not None
        entry_id = EntryId(f"repayment:{repayment_id}")
        allocation, entry = loan.repay(amount, on=on, entry_id=entry_id)
        line.restore(allocation.principal, loan_closed=loan.status is LoanStatus.CLOSED)
        result = RepaymentResult(repayment_id, loan, allocation, on)
        with uow.committing():
            uow.loans.save(loan)
            uow.lines.save(line)
            uow.journal.add(entry)
            uow.repayments.add(
                StoredRepayment(repayment_id, loan_id, fingerprint, on, allocation), entry_id
            )
            if record is not None:
                record.complete(result)
    return result


def trial_balance(
    uow: LendingUnitOfWork, *, as_of: date | None = None, currency: Currency = Currency.CNY
) -> TrialBalance:
    """Balances per account (debits − credits), and what the loan records say they should be.

    The comparison with the loan records is only meaningful for the current state
    (`as_of` None or today), since the loan records hold no history.
    """
    with uow:
        balances = uow.journal.balances(as_of)
        totals = uow.loans.totals(currency)
    return TrialBalance(
        as_of,
        balances,
        {
            (PRINCIPAL_RECEIVABLE, currency): totals.principal,
            (INTEREST_RECEIVABLE, currency): totals.interest,
            (PENALTY_RECEIVABLE, currency): totals.penalty,
        },
    )


def run_end_of_day(
    eod: EndOfDay, dates: BusinessDates, *, to: date | None = None
) -> list[DaySummary]:
    """Close business days one at a time until the business date is `to`.

    Without `to`, closes the current business day only (the date moves on by one). A day
    that already ran is not run again; the business date still moves past it (this also
    finishes a run that stopped between closing a day and moving the date).
    """
    current = dates.get()
    target = to if to is not None else current + timedelta(days=1)
    if target <= current:
        raise ConflictError(
            f"the business date is already {current}; --to must be later",
            code="business_date_backwards",
            field="to",
        )
    summaries = []
    while current < target:
        summaries.append(eod.close_day(current))
        current += timedelta(days=1)
        dates.advance_to(current)
    return summaries
