"""Lending over HTTP: credit lines, draws and quotes, loans, repayments, payoff, end of day.

Amounts are decimal strings in yuan ("1000.00"); rates are decimal strings ("0.0003" per
day). Every price shows the APR (IRR method, PBoC [2021] No. 3) next to the daily rate,
and the simple rate labelled as simple (单利). Draws and repayments move money, so they
require an `Idempotency-Key`, which is also the id the service records them under.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter

from creditline.api.deps import (
    ContainerDep,
    container_of,
    idempotency_key_header,
    idempotency_key_of,
    keyed_request_of,
)
from creditline.api.hot import hot
from creditline.api.idempotent import respond_blocking, transaction_record
from creditline.api.responses import json_model, json_models
from creditline.bootstrap import Container
from creditline.lending import service
from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.lending.domain.credit_line import CreditLine
from creditline.lending.domain.delinquency import bucket, regulatory_class
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.schedule import Schedule, build_schedule, effective_apr
from creditline.lending.domain.terms import LoanTerms, RepaymentMethod, simple_apr
from creditline.lending.ports import DaySummary
from creditline.shared.errors import FieldIssue, InvalidInputError
from creditline.shared.money import Currency, Money, MoneyFormatError
from creditline.storage.idempotency import record_in_transaction

router = APIRouter(tags=["lending"])

# A draw and a repayment keep their Idempotency-Key record in their own transaction
# (claimed first, answered last, on one connection): see `api.idempotent`.
DRAWS = "/v1/credit-lines/{line_id}/draws"
REPAYMENTS = "/v1/loans/{loan_id}/repayments"
record_in_transaction("POST", DRAWS)
record_in_transaction("POST", REPAYMENTS)

MethodName = Literal["equal_installment", "equal_principal", "interest_first"]
IDEMPOTENCY_KEY = idempotency_key_header(
    "Required. Chosen by the caller; a retry returns the first result."
)


def lending_uow(container: Container) -> SqlLendingUnitOfWork:
    return SqlLendingUnitOfWork(container.session_factory, container.clock)


def _amount(text: str, field: str = "amount") -> Money:
    try:
        amount = Money.parse(text, Currency.CNY)
    except MoneyFormatError as error:
        raise InvalidInputError(FieldIssue(field, "invalid_amount", str(error))) from error
    if not amount.is_positive:
        raise InvalidInputError(FieldIssue(field, "not_positive", "the amount must be positive"))
    return amount


def _require_key(key: str | None) -> str:
    if key is None:
        raise InvalidInputError(
            FieldIssue(
                "Idempotency-Key", "required", "this request moves money: send an Idempotency-Key"
            )
        )
    return key


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictStr = Field(description="yuan, a decimal string", examples=["1000.00"])
    term_months: StrictInt = Field(description="3, 6 or 12", examples=[12])
    repayment_method: MethodName


class RepaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictStr = Field(description="yuan, a decimal string", examples=["100.00"])


class EodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: date | None = Field(None, description="close days until the business date is this")


class InstalmentOut(BaseModel):
    number: int
    due_on: date
    principal: str
    interest: str
    total: str
    interest_accrued: str | None = None
    principal_paid: str | None = None
    interest_paid: str | None = None
    penalty_accrued: str | None = None
    penalty_paid: str | None = None


class PricingOut(BaseModel):
    daily_rate: str
    apr: str = Field(description="annualised rate with all costs, IRR method")
    apr_simple: str = Field(description="daily rate × 365, simple interest (单利)")
    day_count: str
    rounding: str


class QuoteOut(BaseModel):
    amount: str
    term_months: int
    repayment_method: str
    total_interest: str
    total_repayable: str
    pricing: PricingOut
    schedule: list[InstalmentOut]


class LoanOut(BaseModel):
    loan_id: str
    credit_line_id: str
    customer_id: str
    principal: str
    principal_outstanding: str
    currency: str
    term_months: int
    repayment_method: str
    drawn_on: date
    status: str
    days_past_due: int
    bucket: str
    regulatory_class: str
    pricing: PricingOut
    schedule: list[InstalmentOut]


class LineChangeOut(BaseModel):
    on: date
    reason: str
    limit: str
    status: str


class LineOut(BaseModel):
    credit_line_id: str
    customer_id: str
    limit: str
    outstanding: str
    holds: str
    available: str
    currency: str
    status: str
    daily_rate: str
    apr_simple: str = Field(description="daily rate × 365, simple interest (单利)")
    opened_on: date
    reviewed_on: date | None
    open_draws: int
    history: list[LineChangeOut]


class AllocationOut(BaseModel):
    penalty: str
    overdue_interest: str
    overdue_principal: str
    current_interest: str
    current_principal: str


class RepaymentOut(BaseModel):
    repayment_id: str
    loan_id: str
    amount: str
    paid_on: date
    allocation: AllocationOut
    loan_status: str
    principal_outstanding: str


class PayoffOut(BaseModel):
    loan_id: str
    as_of: date
    amount: str
    breakdown: AllocationOut


class DayOut(BaseModel):
    business_date: date
    already_ran: bool
    interest_accrued: str
    penalty_accrued: str
    loans_written_off: int
    lines_frozen: int
    lines_unfrozen: int


class EodOut(BaseModel):
    business_date: date
    days: list[DayOut]
    finished_at: datetime


def _pricing(loan_terms: LoanTerms, schedule: Schedule, amount: Money, on: date) -> PricingOut:
    return PricingOut(
        daily_rate=str(loan_terms.daily_rate),
        apr=str(effective_apr(amount, schedule, on)),
        apr_simple=str(simple_apr(loan_terms.daily_rate)),
        day_count=loan_terms.day_count.value,
        rounding=loan_terms.rounding.name.lower(),
    )


def _schedule_of(schedule: Schedule) -> list[InstalmentOut]:
    return [
        InstalmentOut(
            number=i.number,
            due_on=i.due_on,
            principal=i.principal.to_str(),
            interest=i.interest.to_str(),
            total=i.total.to_str(),
        )
        for i in schedule.instalments
    ]


def loan_out(loan: Loan) -> LoanOut:
    money = loan.money
    original = build_schedule(
        loan.principal, loan.terms, loan.method, loan.term_months, loan.drawn_on
    )
    return LoanOut(
        loan_id=loan.loan_id,
        credit_line_id=loan.line_id,
        customer_id=loan.customer_id,
        principal=loan.principal.to_str(),
        principal_outstanding=loan.principal_outstanding.to_str(),
        currency=loan.currency.value,
        term_months=loan.term_months,
        repayment_method=loan.method.value,
        drawn_on=loan.drawn_on,
        status=loan.status.value,
        days_past_due=loan.days_past_due,
        bucket=bucket(loan.days_past_due).value,
        regulatory_class=regulatory_class(loan.days_past_due).value,
        pricing=_pricing(loan.terms, original, loan.principal, loan.drawn_on),
        schedule=[
            InstalmentOut(
                number=i.number,
                due_on=i.due_on,
                principal=money(i.principal_due).to_str(),
                interest=money(i.interest_due).to_str(),
                total=money(i.principal_due + i.interest_due).to_str(),
                interest_accrued=money(i.interest_accrued).to_str(),
                principal_paid=money(i.principal_paid).to_str(),
                interest_paid=money(i.interest_paid).to_str(),
                penalty_accrued=money(i.penalty_accrued).to_str(),
                penalty_paid=money(i.penalty_paid).to_str(),
            )
            for i in loan.instalments
        ],
    )


def line_out(line: CreditLine) -> LineOut:
    return LineOut(
        credit_line_id=line.line_id,
        customer_id=line.customer_id,
        limit=line.limit.to_str(),
        outstanding=line.outstanding.to_str(),
        holds=line.holds.to_str(),
        available=line.available.to_str(),
        currency=line.limit.currency.value,
        status=line.status.value,
        daily_rate=str(line.daily_rate),
        apr_simple=str(simple_apr(line.daily_rate)),
        opened_on=line.opened_on,
        reviewed_on=line.reviewed_on,
        open_draws=line.open_draws,
        history=[
            LineChangeOut(
                on=c.on, reason=c.reason.value, limit=c.limit.to_str(), status=c.status.value
            )
            for c in line.history
        ],
    )


def _allocation(parts: dict[str, Money], currency: Currency) -> AllocationOut:
    zero = Money.zero(currency)
    return AllocationOut(
        **{name: parts.get(name, zero).to_str() for name in AllocationOut.model_fields}
    )


_LOANS = TypeAdapter(list[LoanOut])


@router.get("/v1/credit-lines/{line_id}", response_model=LineOut)
def get_credit_line(line_id: str, container: ContainerDep) -> Response:
    return json_model(line_out(service.get_line(lending_uow(container), line_id)))


@router.get("/v1/credit-lines/{line_id}/quote", response_model=QuoteOut)
def quote_draw(
    line_id: str,
    container: ContainerDep,
    amount: Annotated[StrictStr, Query(description="yuan, a decimal string")],
    term_months: Annotated[int, Query(description="3, 6 or 12")],
    repayment_method: Annotated[MethodName, Query()],
) -> Response:
    """The schedule, total interest and APR of a draw made today; nothing is lent."""
    today = container.business_date()
    found = service.quote(
        lending_uow(container),
        line_id=line_id,
        amount=_amount(amount),
        term_months=term_months,
        method=RepaymentMethod(repayment_method),
        on=today,
    )
    interest = found.schedule.total_interest
    quoted = QuoteOut(
        amount=found.amount.to_str(),
        term_months=found.term_months,
        repayment_method=found.method.value,
        total_interest=interest.to_str(),
        total_repayable=(found.amount + interest).to_str(),
        pricing=_pricing(found.terms, found.schedule, found.amount, today),
        schedule=_schedule_of(found.schedule),
    )
    return json_model(quoted)


@router.post(DRAWS, status_code=201, response_model=LoanOut, openapi_extra=IDEMPOTENCY_KEY)
@hot
async def draw(line_id: str, body: DrawIn, request: Request) -> Response:
    """Lend against the line: 201 with the loan and its schedule."""
    # Read from the request, not as dependencies: see `api.deps`.
    container = container_of(request)
    key = idempotency_key_of(request)
    keyed = keyed_request_of(request)
    uow = lending_uow(container)
    record = transaction_record(container, keyed, request, uow.connection, _drawn)
    request_key, amount = _require_key(key), _amount(body.amount)
    method = RepaymentMethod(body.repayment_method)
    return await respond_blocking(
        container,
        record,
        lambda: service.draw(
            uow,
            line_id=line_id,
            request_key=request_key,
            amount=amount,
            term_months=body.term_months,
            method=method,
            on=container.business_date(),
            record=record,
        ),
        _drawn,
    )


def _drawn(loan: Loan) -> Response:
    return json_model(
        loan_out(loan), status_code=201, headers={"Location": f"/v1/loans/{loan.loan_id}"}
    )


@router.get("/v1/loans/{loan_id}", response_model=LoanOut)
def get_loan(loan_id: str, container: ContainerDep) -> Response:
    return json_model(loan_out(service.get_loan(lending_uow(container), loan_id)))


@router.get("/v1/customers/{customer_id}/loans", response_model=list[LoanOut])
def customer_loans(customer_id: str, container: ContainerDep) -> Response:
    found = service.loans_for_customer(lending_uow(container), customer_id)
    return json_models(_LOANS, [loan_out(x) for x in found])


@router.post(
    REPAYMENTS, status_code=201, response_model=RepaymentOut, openapi_extra=IDEMPOTENCY_KEY
)
@hot
async def repay(loan_id: str, body: RepaymentIn, request: Request) -> Response:
    """Apply a repayment; the answer is its allocation. Overpayment is refused (422)."""
    # Read from the request, not as dependencies: see `api.deps`.
    container = container_of(request)
    key = idempotency_key_of(request)
    keyed = keyed_request_of(request)
    uow = lending_uow(container)
    record = transaction_record(container, keyed, request, uow.connection, _repaid)
    repayment_id, amount = _require_key(key), _amount(body.amount)
    return await respond_blocking(
        container,
        record,
        lambda: service.repay(
            uow,
            loan_id=loan_id,
            repayment_id=repayment_id,
            amount=amount,
            on=container.business_date(),
            record=record,
        ),
        _repaid,
    )


def _repaid(result: service.RepaymentResult) -> Response:
    allocation = result.allocation
    parts = {component.value: money for component, money in allocation.parts}
    paid = RepaymentOut(
        repayment_id=result.repayment_id,
        loan_id=result.loan.loan_id,
        amount=allocation.amount.to_str(),
        paid_on=result.paid_on,
        allocation=_allocation(parts, allocation.amount.currency),
        loan_status=result.loan.status.value,
        principal_outstanding=result.loan.principal_outstanding.to_str(),
    )
    return json_model(paid, status_code=201)


@router.get("/v1/loans/{loan_id}/payoff-quote", response_model=PayoffOut)
def payoff_quote(loan_id: str, container: ContainerDep) -> Response:
    """Today's full payoff: principal, interest for the days used, and any penalty."""
    today = container.business_date()
    owed = service.payoff_quote(lending_uow(container), loan_id=loan_id, on=today)
    currency = next(iter(owed.values())).currency
    total = sum(owed.values(), Money.zero(currency))
    parts = {component.value: money for component, money in owed.items()}
    return json_model(
        PayoffOut(
            loan_id=loan_id,
            as_of=today,
            amount=total.to_str(),
            breakdown=_allocation(parts, currency),
        )
    )


@router.post("/v1/admin/eod", response_model=EodOut)
def run_eod(container: ContainerDep, body: EodIn | None = None) -> EodOut:
    """Close business days one at a time (idempotent per day); returns what each did."""
    summaries = service.run_end_of_day(
        SqlEndOfDay(container.engine, container.clock),
        container.business_dates,
        to=body.to if body else None,
    )
    return EodOut(
        business_date=container.business_date(),
        days=[day_out(s) for s in summaries],
        finished_at=container.clock.now(),
    )


def day_out(summary: DaySummary) -> DayOut:
    return DayOut(
        business_date=summary.business_date,
        already_ran=summary.already_ran,
        interest_accrued=summary.interest_accrued.to_str(),
        penalty_accrued=summary.penalty_accrued.to_str(),
        loans_written_off=summary.loans_written_off,
        lines_frozen=summary.lines_frozen,
        lines_unfrozen=summary.lines_unfrozen,
    )
