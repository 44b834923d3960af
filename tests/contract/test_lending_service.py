"""Lending use cases over the SQL adapters, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from creditline.lending import service
from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.lending.domain.credit_line import LineStatus
from creditline.lending.domain.terms import Component, LoanStatus, RepaymentMethod
from creditline.shared.clock import FixedClock
from creditline.shared.errors import (
    BusinessRuleError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from creditline.shared.money import Money
from creditline.storage.engine import make_session_factory

ON = date(2026, 1, 15)
RATE = Decimal("0.0003")
UowFactory = Callable[[], SqlLendingUnitOfWork]


@pytest.fixture
def new_uow(engine: Engine, clock: FixedClock) -> UowFactory:
    factory = make_session_factory(engine)
    return lambda: SqlLendingUnitOfWork(factory, clock)


def open_line(new_uow: UowFactory, limit: str = "10000", line_id: str = "CL1") -> None:
    service.open_credit_line(
        new_uow(),
        line_id=line_id,
        customer_id="C1",
        limit=Money.yuan(limit),
        daily_rate=RATE,
        on=ON,
    )


def draw(new_uow: UowFactory, key: str, amount: str = "1000", line_id: str = "CL1"):  # type: ignore[no-untyped-def]
    return service.draw(
        new_uow(),
        line_id=line_id,
        request_key=key,
        amount=Money.yuan(amount),
        term_months=3,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        on=ON,
    )


def test_opening_a_line_twice_with_the_same_id_returns_the_first(new_uow: UowFactory) -> None:
    open_line(new_uow)
    open_line(new_uow)

    line = service.get_line(new_uow(), "CL1")

    assert line.available == Money.yuan(10_000)
    assert [c.reason.value for c in line.history] == ["opened"]
    with pytest.raises(ConflictError):
        open_line(new_uow, limit="20000")


def test_a_draw_is_stored_with_its_schedule_and_moves_the_line(new_uow: UowFactory) -> None:
    open_line(new_uow)

    loan = draw(new_uow, "k1")

    stored = service.get_loan(new_uow(), loan.loan_id)
    assert stored.instalments == loan.instalments
    assert stored.terms == loan.terms
    line = service.get_line(new_uow(), "CL1")
    assert line.available == Money.yuan(9_000)
    assert line.outstanding == Money.yuan(1_000)
    assert [x.loan_id for x in service.loans_for_customer(new_uow(), "C1")] == [loan.loan_id]


def test_a_retried_draw_returns_the_same_loan_and_lends_once(new_uow: UowFactory) -> None:
    open_line(new_uow)

    first = draw(new_uow, "k1")
    again = draw(new_uow, "k1")

    assert again.loan_id == first.loan_id
    assert service.get_line(new_uow(), "CL1").outstanding == Money.yuan(1_000)
    with pytest.raises(ConflictError):
        draw(new_uow, "k1", amount="999")


def test_refused_draws_say_why(new_uow: UowFactory) -> None:
    open_line(new_uow, limit="1000")

    with pytest.raises(BusinessRuleError) as too_much:
        draw(new_uow, "k1", amount="1000.01")
    with pytest.raises(NotFoundError):
        draw(new_uow, "k2", line_id="nope")
    with pytest.raises(InvalidInputError):
        service.draw(
            new_uow(),
            line_id="CL1",
            request_key="k3",
            amount=Money.yuan(10),
            term_months=7,
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            on=ON,
        )

    assert too_much.value.code == "limit_exceeded"


def test_no_more_than_fifty_open_draws(new_uow: UowFactory) -> None:
    open_line(new_uow)
    for n in range(50):
        draw(new_uow, f"k{n}", amount="1")

    with pytest.raises(BusinessRuleError) as refused:
        draw(new_uow, "k50", amount="1")

    assert refused.value.code == "too_many_open_draws"


def test_a_repayment_is_allocated_recorded_and_idempotent(new_uow: UowFactory) -> None:
    open_line(new_uow)
    loan = draw(new_uow, "k1")

    result = service.repay(
        new_uow(), loan_id=loan.loan_id, repayment_id="r1", amount=Money.yuan(400), on=ON
    )
    again = service.repay(
        new_uow(), loan_id=loan.loan_id, repayment_id="r1", amount=Money.yuan(400), on=ON
    )

    assert result.allocation.of(Component.CURRENT_PRINCIPAL) == Money.yuan(400)
    assert again.allocation == result.allocation
    assert service.get_line(new_uow(), "CL1").available == Money.yuan(9_400)
    assert service.get_loan(new_uow(), loan.loan_id).principal_outstanding == Money.yuan(600)
    with pytest.raises(ConflictError):
        service.repay(
            new_uow(), loan_id=loan.loan_id, repayment_id="r1", amount=Money.yuan(1), on=ON
        )


def test_a_repayment_finds_the_line_of_its_loan_and_refuses_unknown_loans(
    new_uow: UowFactory,
) -> None:
    open_line(new_uow, line_id="CL1")
    open_line(new_uow, line_id="CL2")
    draw(new_uow, "k1", "1000", line_id="CL1")
    loan = draw(new_uow, "k2", "2000", line_id="CL2")

    service.repay(new_uow(), loan_id=loan.loan_id, repayment_id="r1", amount=Money.yuan(500), on=ON)

    assert service.get_line(new_uow(), "CL1").available == Money.yuan(9_000)
    assert service.get_line(new_uow(), "CL2").available == Money.yuan(8_500)
    with pytest.raises(NotFoundError):
        service.repay(new_uow(), loan_id="nope", repayment_id="r2", amount=Money.yuan(1), on=ON)


def test_overpayment_is_refused_and_payoff_closes_the_loan(new_uow: UowFactory) -> None:
    open_line(new_uow)
    loan = draw(new_uow, "k1")
    payoff = service.payoff_quote(new_uow(), loan_id=loan.loan_id, on=ON)
    total = sum((m for m in payoff.values()), Money.yuan(0))

    with pytest.raises(BusinessRuleError):
        service.repay(
            new_uow(),
            loan_id=loan.loan_id,
            repayment_id="r0",
            amount=total + Money.yuan("0.01"),
            on=ON,
        )
    result = service.repay(new_uow(), loan_id=loan.loan_id, repayment_id="r1", amount=total, on=ON)

    assert total == Money.yuan(1000)
    assert result.loan.status is LoanStatus.CLOSED
    line = service.get_line(new_uow(), "CL1")
    assert (line.available, line.open_draws) == (Money.yuan(10_000), 0)


def test_the_trial_balance_nets_to_zero_and_agrees_with_the_loans(
    new_uow: UowFactory, engine: Engine, clock: FixedClock
) -> None:
    open_line(new_uow)
    first = draw(new_uow, "k1", "3000")
    draw(new_uow, "k2", "2000")
    eod = SqlEndOfDay(engine, clock)
    for offset in range(40):
        eod.close_day(ON + timedelta(days=offset))
    service.repay(
        new_uow(),
        loan_id=first.loan_id,
        repayment_id="r1",
        amount=Money.yuan(500),
        on=ON + timedelta(days=40),
    )

    balance = service.trial_balance(new_uow())

    assert balance.nets_to_zero
    assert balance.agrees_with_loans
    assert balance.loan_records[next(iter(balance.loan_records))] > 0


@pytest.mark.slow
def test_fifty_concurrent_draws_never_overdraw_the_line(new_uow: UowFactory) -> None:
    open_line(new_uow, limit="10000")

    def attempt(n: int) -> str:
        try:
            draw(new_uow, f"c{n}")
        except BusinessRuleError as refused:
            return refused.code
        return "ok"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))

    assert outcomes.count("ok") == 10
    assert outcomes.count("limit_exceeded") == 40
    line = service.get_line(new_uow(), "CL1")
    assert line.available == Money.yuan(0)
    assert len(service.loans_for_customer(new_uow(), "C1")) == 10
    assert line.status is LineStatus.ACTIVE


def test_the_journal_refuses_updates_and_deletes(new_uow: UowFactory, engine: Engine) -> None:
    open_line(new_uow)
    draw(new_uow, "k1")

    for statement in (
        "UPDATE lending_journal_postings SET amount_minor = 1",
        "DELETE FROM lending_journal_postings",
        "DELETE FROM lending_journal_entries",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))

    assert service.trial_balance(new_uow()).nets_to_zero


def test_a_line_saved_by_another_unit_of_work_keeps_every_history_row_once(
    new_uow: UowFactory,
) -> None:
    """`save` appends only the changes not stored yet, whether or not it read the line."""
    from creditline.lending.domain.credit_line import ReasonCode

    open_line(new_uow)
    with new_uow() as uow:  # read here, saved here: the repository knows what is stored
        line = uow.lines.get("CL1", for_update=True)
        assert line is not None
        line.change_limit(Money.yuan("8000"), ReasonCode.PERIODIC_REVIEW, ON)
        uow.lines.save(line)
        uow.commit()
    with new_uow() as reader:
        read = reader.lines.get("CL1")
    assert read is not None
    read.change_status(LineStatus.FROZEN, ReasonCode.OVERDUE, ON + timedelta(days=1))
    with new_uow() as writer:  # saved by a unit of work that never read it
        writer.lines.save(read)
        writer.commit()
    with new_uow() as uow:
        stored = uow.lines.get("CL1")
    assert stored is not None
    assert [(c.reason, c.limit, c.status) for c in stored.history] == [
        (ReasonCode.OPENED, Money.yuan("10000"), LineStatus.ACTIVE),
        (ReasonCode.PERIODIC_REVIEW, Money.yuan("8000"), LineStatus.ACTIVE),
        (ReasonCode.OVERDUE, Money.yuan("8000"), LineStatus.FROZEN),
    ]
    assert stored.limit == Money.yuan("8000")
    assert stored.status is LineStatus.FROZEN


def test_many_loans_are_read_each_with_its_own_instalments(new_uow: UowFactory) -> None:
    open_line(new_uow)
    drawn = [draw(new_uow, f"k{n}", amount=str(1000 + n * 500)) for n in range(3)]
    with new_uow() as uow:
        listed = uow.loans.for_customer("C1")
        one = uow.loans.get(drawn[1].loan_id)
        by_key = uow.loans.find_by_request_key("k2")
        missing = uow.loans.get("ln_none")
    assert sorted(x.loan_id for x in listed) == sorted(x.loan_id for x in drawn)
    for loan in listed:
        original = next(x for x in drawn if x.loan_id == loan.loan_id)
        assert loan.instalments == original.instalments
        assert sum(i.principal_due for i in loan.instalments) == original.principal.minor_units
    assert one is not None
    assert one.instalments == drawn[1].instalments
    assert by_key is not None
    assert by_key[0].loan_id == drawn[2].loan_id
    assert missing is None


@pytest.fixture(autouse=True)
def _drop_record_notes(engine: Engine) -> Iterator[None]:
    """`_Record` notes in a scratch table; the test databases are reused, so drop it."""
    yield
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS record_seen"))


class _Record:
    """A request record that writes into the transaction it is kept in (`uow.connection()`)
    how many loans that transaction holds at each step. Its notes are writes, not reads,
    because a use case's last writes may be sent together with the commit (a read there
    gets nothing back); they are kept only if the transaction commits."""

    def __init__(self, uow: SqlLendingUnitOfWork, fail_on_complete: bool = False) -> None:
        self.uow = uow
        self.fail_on_complete = fail_on_complete
        self.steps: list[str] = []  # what was called, committed or not
        with uow:
            uow.connection().execute(
                text("CREATE TABLE IF NOT EXISTS record_seen (n INTEGER, step TEXT, loans INTEGER)")
            )
            uow.commit()

    def _note(self, n: int, step: str) -> None:
        self.steps.append(step)
        self.uow.connection().execute(
            text(
                "INSERT INTO record_seen (n, step, loans) "
                "SELECT :n, :step, count(*) FROM lending_loans"
            ),
            {"n": n, "step": step},
        )

    def claim(self) -> None:
        self._note(1, "claim")

    def complete(self, result: object) -> None:
        self._note(2, "complete")
        if self.fail_on_complete:
            raise RuntimeError("the answer could not be stored")

    def seen(self, new_uow: UowFactory) -> list[tuple[str, int]]:
        """The notes that were committed, in order."""
        with new_uow() as uow:
            rows = uow.connection().execute(text("SELECT step, loans FROM record_seen ORDER BY n"))
            return [(step, int(loans)) for step, loans in rows]


def _draw_with(uow: SqlLendingUnitOfWork, record: _Record, amount: str = "1000"):  # type: ignore[no-untyped-def]
    return service.draw(
        uow,
        line_id="CL1",
        request_key="k-rec",
        amount=Money.yuan(amount),
        term_months=3,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        on=ON,
        record=record,
    )


def test_a_draw_claims_its_record_first_and_completes_it_last_in_its_transaction(
    new_uow: UowFactory,
) -> None:
    open_line(new_uow)
    uow = new_uow()
    record = _Record(uow)

    _draw_with(uow, record)

    # Claimed before the loan existed, completed once it did, and committed with it.
    assert record.seen(new_uow) == [("claim", 0), ("complete", 1)]


def test_a_draw_whose_answer_cannot_be_stored_lends_nothing(new_uow: UowFactory) -> None:
    open_line(new_uow)
    uow = new_uow()

    record = _Record(uow, fail_on_complete=True)
    with pytest.raises(RuntimeError):
        _draw_with(uow, record)

    assert record.steps == ["claim", "complete"]
    assert record.seen(new_uow) == []  # the claim rolled back with the work
    assert service.get_line(new_uow(), "CL1").available == Money.yuan("10000")
    assert service.loans_for_customer(new_uow(), "C1") == []


class _RefusedRecord(_Record):
    """A record whose answer the database refuses: a duplicate of the line's own row."""

    def complete(self, result: object) -> None:
        super().complete(result)
        self.uow.connection().execute(
            text("INSERT INTO lending_credit_lines SELECT * FROM lending_credit_lines")
        )


def test_a_last_write_the_database_refuses_keeps_nothing_and_leaves_storage_usable(
    new_uow: UowFactory,
) -> None:
    # On PostgreSQL the last writes and the commit are sent together, so the refusal is
    # only known at the commit; it must still be SQLAlchemy's error, and undo everything.
    open_line(new_uow)
    uow = new_uow()
    record = _RefusedRecord(uow)

    with pytest.raises(DBAPIError, match=r"(?i)unique|duplicate"):
        _draw_with(uow, record)

    assert record.steps == ["claim", "complete"]
    assert record.seen(new_uow) == []
    assert service.get_line(new_uow(), "CL1").available == Money.yuan("10000")
    assert service.loans_for_customer(new_uow(), "C1") == []
    # The connection went back to the pool in a usable state: the same draw now lends.
    again = new_uow()
    loan = _draw_with(again, _Record(again))
    assert service.get_line(new_uow(), "CL1").available == Money.yuan("9000")
    assert service.get_loan(new_uow(), loan.loan_id).principal == Money.yuan("1000")


def test_a_refused_draw_claims_but_never_completes(new_uow: UowFactory) -> None:
    open_line(new_uow)
    uow = new_uow()
    record = _Record(uow)

    with pytest.raises(BusinessRuleError):
        _draw_with(uow, record, amount="20000")

    assert record.steps == ["claim"]
    assert record.seen(new_uow) == []  # claimed, never completed, and rolled back


def test_a_repayment_claims_first_and_completes_last_and_a_failed_answer_pays_nothing(
    new_uow: UowFactory,
) -> None:
    open_line(new_uow)
    loan = draw(new_uow, "k1")
    uow = new_uow()
    seen: list[str] = []

    class Record:
        def claim(self) -> None:
            seen.append("claim")

        def complete(self, result: service.RepaymentResult) -> None:
            seen.append(f"complete {result.allocation.amount.to_str()}")
            raise RuntimeError("the answer could not be stored")

    with pytest.raises(RuntimeError):
        service.repay(
            uow,
            loan_id=loan.loan_id,
            repayment_id="r-1",
            amount=Money.yuan("100"),
            on=ON,
            record=Record(),
        )

    assert seen == ["claim", "complete 100.00"]
    assert service.get_loan(new_uow(), loan.loan_id).principal_outstanding == Money.yuan("1000")
