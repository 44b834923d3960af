"""SQL storage of lines, loans, repayments and the journal, mapped explicitly to the domain.

`get(..., for_update=True)` is `SELECT … FOR UPDATE` on PostgreSQL, which serialises draws
on one line; on SQLite every transaction already starts with `BEGIN IMMEDIATE`, which
serialises all writers. Journal rows are only ever inserted.

Each read is one statement, because on the HTTP path round trips to the database are most
of a request's time: a line is read together with its history (an outer join; the row
lock is taken on the line only, `FOR UPDATE OF`), a loan together with its instalments,
and a saved loan's instalments are updated in one batched statement. The statements on
the draw and repayment path are built once, at import, and executed with their values as
parameters: building a statement per call (`insert(t).values(**row)`) made SQLAlchemy
coerce every value and compute the statement's cache key anew, a large share of a
request's CPU time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, bindparam, case, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session, sessionmaker

from creditline.lending.adapters.tables import (
    credit_lines,
    instalments,
    journal_entries,
    journal_postings,
    line_changes,
    loans,
    repayments,
)
from creditline.lending.domain.credit_line import CreditLine, LineChange, LineStatus, ReasonCode
from creditline.lending.domain.journal import AccountCode, JournalEntry, Side
from creditline.lending.domain.loan import Allocation, Instalment, Loan
from creditline.lending.domain.terms import (
    Component,
    DayCount,
    LoanStatus,
    LoanTerms,
    RepaymentMethod,
    Rounding,
)
from creditline.lending.ports import LoanRecordTotals, StoredRepayment
from creditline.shared.clock import Clock
from creditline.shared.money import Currency, Money
from creditline.storage.direct import DirectStatement
from creditline.storage.uow import SqlAlchemyUnitOfWork, transaction_connection

OPEN_STATUSES = (LoanStatus.ACTIVE.value, LoanStatus.OVERDUE.value)


#: A line's history columns, renamed so that they sit beside the line's own in one row.
_HISTORY = (
    line_changes.c.change_id.label("h_change_id"),
    line_changes.c.changed_on.label("h_changed_on"),
    line_changes.c.reason.label("h_reason"),
    line_changes.c.limit_minor.label("h_limit_minor"),
    line_changes.c.status.label("h_status"),
)
_LINE = (
    select(credit_lines, *_HISTORY)
    .select_from(
        credit_lines.outerjoin(line_changes, line_changes.c.line_id == credit_lines.c.line_id)
    )
    .where(credit_lines.c.line_id == bindparam("key_line_id"))
    .order_by(line_changes.c.change_id)
)
_LINE_FOR_UPDATE = _LINE.with_for_update(of=credit_lines)
#: The line a loan was drawn on, locked: a repayment's lock and its look-up in one statement.
_LINE_OF_LOAN_FOR_UPDATE = (
    select(credit_lines, *_HISTORY)
    .select_from(
        credit_lines.outerjoin(line_changes, line_changes.c.line_id == credit_lines.c.line_id)
    )
    .where(
        credit_lines.c.line_id
        == select(loans.c.line_id)
        .where(loans.c.loan_id == bindparam("key_loan_id"))
        .scalar_subquery()
    )
    .order_by(line_changes.c.change_id)
    .with_for_update(of=credit_lines)
)
#: Run on the driver (`storage.direct`): a decision that approves opens a line with both.
_INSERT_LINE = DirectStatement(insert(credit_lines))
#: `inline`: no `RETURNING` of the generated `change_id` (nothing reads it), which a
#: write inside `committing()` could not answer (see `storage.uow`).
_INSERT_CHANGES = DirectStatement(insert(line_changes).inline())
_UPDATE_LINE = DirectStatement(
    update(credit_lines).where(credit_lines.c.line_id == bindparam("key_line_id"))
)


class _SqlRepository:
    """A repository on the unit of work's session, whose statements run on the session's
    transaction connection: SQLAlchemy Core runs a statement in about four fifths of the
    CPU an ORM session takes for it (nothing here is ORM-mapped)."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def _connection(self) -> Connection:
        return transaction_connection(self._session)


class SqlCreditLineRepository(_SqlRepository):
    def __init__(self, session: Session, clock: Clock) -> None:
        super().__init__(session, clock)
        # How many history rows each line read or added here has in storage, so that
        # `save` appends only the new ones without counting them again.
        self._stored_history: dict[str, int] = {}

    def add(self, line: CreditLine) -> None:
        _INSERT_LINE.execute(
            self._connection(),
            {
                "line_id": line.line_id,
                "customer_id": line.customer_id,
                "currency": line.limit.currency.value,
                "daily_rate": str(line.daily_rate),
                "opened_on": line.opened_on,
                "created_at": self._clock.now(),
                **_line_values(line),
            },
        )
        self._append_history(line, stored=0)

    def get(self, line_id: str, *, for_update: bool = False) -> CreditLine | None:
        query = _LINE_FOR_UPDATE if for_update else _LINE
        return self._one(
            self._connection().execute(query, {"key_line_id": line_id}).mappings().all()
        )

    def get_for_loan(self, loan_id: str) -> CreditLine | None:
        rows = self._connection().execute(_LINE_OF_LOAN_FOR_UPDATE, {"key_loan_id": loan_id})
        return self._one(rows.mappings().all())

    def _one(self, rows: Sequence[RowMapping]) -> CreditLine | None:
        if not rows:
            return None
        history = [row for row in rows if row["h_change_id"] is not None]
        self._stored_history[rows[0]["line_id"]] = len(history)
        return _to_line(rows[0], history)

    def save(self, line: CreditLine) -> None:
        _UPDATE_LINE.execute(
            self._connection(), {"key_line_id": line.line_id, **_line_values(line)}
        )
        stored = self._stored_history.get(line.line_id)
        if stored is None:  # not read through this repository: ask the database
            stored = (
                self._connection()
                .execute(select(func.count()).where(line_changes.c.line_id == line.line_id))
                .scalar_one()
            )
        self._append_history(line, stored)

    def _append_history(self, line: CreditLine, stored: int) -> None:
        new = line.history[stored:]
        if new:
            _INSERT_CHANGES.execute_many(
                self._connection(),
                [
                    {
                        "line_id": line.line_id,
                        "changed_on": change.on,
                        "reason": change.reason.value,
                        "limit_minor": change.limit.minor_units,
                        "status": change.status.value,
                    }
                    for change in new
                ],
            )
        self._stored_history[line.line_id] = len(line.history)


def _line_values(line: CreditLine) -> dict[str, Any]:
    reason = line.history[-1].reason.value if line.history else ReasonCode.OPENED.value
    return {
        "limit_minor": line.limit.minor_units,
        "outstanding_minor": line.outstanding.minor_units,
        "holds_minor": line.holds.minor_units,
        "status": line.status.value,
        "status_reason": reason,
        "open_draws": line.open_draws,
        "reviewed_on": line.reviewed_on,
    }


def _to_line(row: RowMapping, history: Sequence[RowMapping]) -> CreditLine:
    currency = Currency(row["currency"])
    return CreditLine(
        line_id=row["line_id"],
        customer_id=row["customer_id"],
        limit=Money(row["limit_minor"], currency),
        daily_rate=Decimal(row["daily_rate"]),
        opened_on=row["opened_on"],
        outstanding=Money(row["outstanding_minor"], currency),
        holds=Money(row["holds_minor"], currency),
        status=LineStatus(row["status"]),
        reviewed_on=row["reviewed_on"],
        open_draws=row["open_draws"],
        history=[
            LineChange(
                h["h_changed_on"],
                ReasonCode(h["h_reason"]),
                Money(h["h_limit_minor"], currency),
                LineStatus(h["h_status"]),
            )
            for h in history
        ],
    )


class SqlLoanRepository(_SqlRepository):
    def add(self, loan: Loan, *, request_key: str, fingerprint: str) -> None:
        _INSERT_LOAN.execute(
            self._connection(),
            _new_loan_row(
                loan, request_key=request_key, fingerprint=fingerprint, at=self._clock.now()
            ),
        )
        _INSERT_INSTALMENTS.execute_many(
            self._connection(), _instalment_rows(loan, with_terms=True)
        )

    def get(self, loan_id: str) -> Loan | None:
        found = self._load(_LOAN_BY_ID, {"key": loan_id})
        return found[0][0] if found else None

    def find_by_request_key(self, request_key: str) -> tuple[Loan, str] | None:
        found = self._load(_LOAN_BY_REQUEST_KEY, {"key": request_key})
        return None if not found else found[0]

    def save(self, loan: Loan) -> None:
        _UPDATE_LOAN.execute(
            self._connection(), {"key_loan_id": loan.loan_id, **_loan_values(loan)}
        )
        rows = _instalment_rows(loan, with_terms=False)
        for values in rows:
            values["key_loan_id"] = values.pop("loan_id")
            values["key_number"] = values.pop("number")
        # One statement with many parameter sets (psycopg pipelines them).
        _UPDATE_INSTALMENT.execute_many(self._connection(), rows)

    def for_customer(self, customer_id: str) -> list[Loan]:
        return self._many(loans.c.customer_id == customer_id)

    def for_line(self, line_id: str) -> list[Loan]:
        return self._many(loans.c.line_id == line_id)

    def totals(self, currency: Currency) -> LoanRecordTotals:
        on_books = select(loans.c.loan_id).where(
            loans.c.written_off_on.is_(None), loans.c.currency == currency.value
        )
        i = instalments.c
        row = (
            self._connection()
            .execute(
                select(
                    func.coalesce(func.sum(i.principal_due_minor - i.principal_paid_minor), 0),
                    func.coalesce(func.sum(i.interest_accrued_minor - i.interest_paid_minor), 0),
                    func.coalesce(func.sum(i.penalty_accrued_minor - i.penalty_paid_minor), 0),
                ).where(i.loan_id.in_(on_books))
            )
            .one()
        )
        return LoanRecordTotals(int(row[0]), int(row[1]), int(row[2]))

    def _many(self, condition: Any) -> list[Loan]:
        """Loans in the order drawn, then all their instalments in a second statement."""
        rows = (
            self._connection()
            .execute(select(loans).where(condition).order_by(loans.c.drawn_on, loans.c.created_at))
            .mappings()
            .all()
        )
        if not rows:
            return []
        by_loan: dict[str, list[Mapping[str, Any]]] = {row["loan_id"]: [] for row in rows}
        found = (
            self._connection()
            .execute(
                select(instalments.c.loan_id, *_INSTALMENTS)
                .where(instalments.c.loan_id.in_(list(by_loan)))
                .order_by(instalments.c.loan_id, instalments.c.number)
            )
            .mappings()
        )
        for row in found:
            by_loan[row["loan_id"]].append(_instalment_of(row))
        return [_to_loan(row, by_loan[row["loan_id"]]) for row in rows]

    def _load(self, query: Select[Any], params: dict[str, Any]) -> list[tuple[Loan, str]]:
        """Loans with their instalments (one row per instalment), and each one's fingerprint."""
        rows = self._connection().execute(query, params).mappings().all()
        return [
            (_to_loan(group[0], [_instalment_of(r) for r in group]), group[0]["fingerprint"])
            for group in _grouped(rows)
        ]


#: The instalment columns a loan is built from, renamed to sit beside the loan's own.
_INSTALMENT_FIELDS = (
    "number",
    "due_on",
    "period_days",
    "principal_due_minor",
    "interest_due_minor",
    "interest_accrued_minor",
    "principal_paid_minor",
    "interest_paid_minor",
    "penalty_units",
    "penalty_accrued_minor",
    "penalty_paid_minor",
)
_INSTALMENTS = tuple(instalments.c[name].label(f"i_{name}") for name in _INSTALMENT_FIELDS)

# The writes of a draw and a repayment run on the driver (`storage.direct`).
_INSERT_LOAN = DirectStatement(insert(loans))
_INSERT_INSTALMENTS = DirectStatement(insert(instalments))
_UPDATE_LOAN = DirectStatement(update(loans).where(loans.c.loan_id == bindparam("key_loan_id")))
_UPDATE_INSTALMENT = DirectStatement(
    update(instalments)
    .where(instalments.c.loan_id == bindparam("key_loan_id"))
    .where(instalments.c.number == bindparam("key_number"))
)


def _loan_query(condition: Any) -> Select[Any]:
    """One loan (the condition names a unique key) joined to its instalments, in order."""
    return (
        select(loans, *_INSTALMENTS)
        .select_from(loans.join(instalments, instalments.c.loan_id == loans.c.loan_id))
        .where(condition)
        .order_by(loans.c.loan_id, instalments.c.number)
    )


_LOAN_BY_ID = _loan_query(loans.c.loan_id == bindparam("key"))
_LOAN_BY_REQUEST_KEY = _loan_query(loans.c.request_key == bindparam("key"))


def _grouped(rows: Iterable[RowMapping]) -> list[list[RowMapping]]:
    """Consecutive rows of the same loan, in order."""
    groups: list[list[RowMapping]] = []
    for row in rows:
        if groups and groups[-1][0]["loan_id"] == row["loan_id"]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def _instalment_of(row: RowMapping) -> dict[str, Any]:
    return {name: row[f"i_{name}"] for name in _INSTALMENT_FIELDS}


def _new_loan_row(
    loan: Loan, *, request_key: str, fingerprint: str, at: datetime
) -> dict[str, Any]:
    """The `lending_loans` row of a loan being drawn: its fixed terms and its first state."""
    terms = loan.terms
    return {
        "loan_id": loan.loan_id,
        "line_id": loan.line_id,
        "customer_id": loan.customer_id,
        "request_key": request_key,
        "fingerprint": fingerprint,
        "currency": loan.currency.value,
        "principal_minor": loan.principal.minor_units,
        "daily_rate": str(terms.daily_rate),
        "day_count": terms.day_count.value,
        "rounding": terms.rounding.value,
        "penalty_multiplier": str(terms.penalty_multiplier),
        "grace_days": terms.grace_days,
        "write_off_days": terms.write_off_days,
        "allocation": {s.value: [c.value for c in o] for s, o in terms.allocation.items()},
        "method": loan.method.value,
        "term_months": loan.term_months,
        "drawn_on": loan.drawn_on,
        "created_at": at,
        **_loan_values(loan),
    }


def _loan_values(loan: Loan) -> dict[str, Any]:
    assert loan.accrual_from is not None
    return {
        "status": loan.status.value,
        "accrual_from": loan.accrual_from,
        "accrual_from_day": loan.accrual_from.toordinal(),
        "accrual_fixed_minor": loan.accrual_fixed,
        "days_past_due": loan.days_past_due,
        "closed_on": loan.closed_on,
        "written_off_on": loan.written_off_on,
    }


def _instalment_rows(loan: Loan, *, with_terms: bool) -> list[dict[str, Any]]:
    """Rows for the instalments, with each period's accrual state (see `Loan`)."""
    terms = loan.terms
    assert loan.accrual_from is not None
    days = terms.day_count.interest_days(30)
    rows = []
    start = loan.drawn_on
    for item in loan.instalments:
        ahead = sum(i.principal_unpaid for i in loan.instalments if i.number >= item.number)
        is_current = start <= loan.accrual_from < item.due_on
        values: dict[str, Any] = {
            "loan_id": loan.loan_id,
            "number": item.number,
            "principal_due_minor": item.principal_due,
            "interest_due_minor": item.interest_due,
            "interest_accrued_minor": item.interest_accrued,
            "principal_paid_minor": item.principal_paid,
            "interest_paid_minor": item.interest_paid,
            "penalty_units": item.penalty_units,
            "penalty_accrued_minor": item.penalty_accrued,
            "penalty_paid_minor": item.penalty_paid,
            "accrual_from_day": (loan.accrual_from if is_current else start).toordinal(),
            "accrual_fixed_minor": loan.accrual_fixed if is_current else 0,
            "accrual_principal_minor": ahead,
        }
        if with_terms:
            values |= {
                "due_on": item.due_on,
                "start_day": start.toordinal(),
                "due_day": item.due_on.toordinal(),
                "period_days": item.period_days,
                "rate_e8": terms.rate_e8,
                "penalty_e2": terms.penalty_e2,
                "grace_days": terms.grace_days,
                "rounding": terms.rounding.value,
                # 0/1 marks ACTUAL_365: the interest days are the period's calendar days.
                "interest_days_num": 0
                if terms.day_count is DayCount.ACTUAL_365
                else days.numerator,
                "interest_days_den": days.denominator,
            }
        rows.append(values)
        start = item.due_on
    return rows


def _to_loan(row: RowMapping, rows: Sequence[Mapping[str, Any]]) -> Loan:
    currency = Currency(row["currency"])
    terms = LoanTerms(
        daily_rate=Decimal(row["daily_rate"]),
        day_count=DayCount(row["day_count"]),
        rounding=Rounding(row["rounding"]),
        penalty_multiplier=Decimal(row["penalty_multiplier"]),
        grace_days=row["grace_days"],
        write_off_days=row["write_off_days"],
        allocation={
            LoanStatus(s): tuple(Component(c) for c in order)
            for s, order in row["allocation"].items()
        },
    )
    return Loan(
        loan_id=row["loan_id"],
        line_id=row["line_id"],
        customer_id=row["customer_id"],
        principal=Money(row["principal_minor"], currency),
        terms=terms,
        method=RepaymentMethod(row["method"]),
        term_months=row["term_months"],
        drawn_on=row["drawn_on"],
        instalments=[
            Instalment(
                number=r["number"],
                due_on=r["due_on"],
                period_days=r["period_days"],
                principal_due=r["principal_due_minor"],
                interest_due=r["interest_due_minor"],
                interest_accrued=r["interest_accrued_minor"],
                principal_paid=r["principal_paid_minor"],
                interest_paid=r["interest_paid_minor"],
                penalty_units=r["penalty_units"],
                penalty_accrued=r["penalty_accrued_minor"],
                penalty_paid=r["penalty_paid_minor"],
            )
            for r in rows
        ],
        status=LoanStatus(row["status"]),
        accrual_from=row["accrual_from"],
        accrual_fixed=row["accrual_fixed_minor"],
        days_past_due=row["days_past_due"],
        closed_on=row["closed_on"],
        written_off_on=row["written_off_on"],
    )


_REPAYMENT = select(repayments).where(repayments.c.repayment_id == bindparam("key"))
_INSERT_REPAYMENT = DirectStatement(insert(repayments))
_INSERT_ENTRY = DirectStatement(insert(journal_entries))
_INSERT_POSTINGS = DirectStatement(insert(journal_postings))


class SqlRepaymentRepository(_SqlRepository):
    def get(self, repayment_id: str) -> StoredRepayment | None:
        row = self._connection().execute(_REPAYMENT, {"key": repayment_id}).mappings().one_or_none()
        if row is None:
            return None
        currency = Currency(row["currency"])
        allocation = Allocation(
            Money(row["amount_minor"], currency),
            tuple((Component(c), Money(v, currency)) for c, v in row["allocation"]),
        )
        return StoredRepayment(
            row["repayment_id"], row["loan_id"], row["fingerprint"], row["paid_on"], allocation
        )

    def add(self, repayment: StoredRepayment, entry_id: str) -> None:
        allocation = repayment.allocation
        _INSERT_REPAYMENT.execute(
            self._connection(),
            {
                "repayment_id": repayment.repayment_id,
                "loan_id": repayment.loan_id,
                "fingerprint": repayment.fingerprint,
                "amount_minor": allocation.amount.minor_units,
                "currency": allocation.amount.currency.value,
                "paid_on": repayment.paid_on,
                "allocation": [[c.value, m.minor_units] for c, m in allocation.parts],
                "entry_id": entry_id,
                "created_at": self._clock.now(),
            },
        )


class SqlJournalRepository(_SqlRepository):
    def add(self, entry: JournalEntry) -> None:
        _INSERT_ENTRY.execute(
            self._connection(),
            {
                "entry_id": entry.entry_id,
                "effective_on": entry.effective_on,
                "kind": entry.kind,
                "memo": entry.memo[:300],
                "loan_id": entry.loan_id,
                "created_at": self._clock.now(),
            },
        )
        _INSERT_POSTINGS.execute_many(
            self._connection(),
            [
                {
                    "entry_id": entry.entry_id,
                    "line_no": n,
                    "account": p.account,
                    "side": p.side.value,
                    "amount_minor": p.amount.minor_units,
                    "currency": p.amount.currency.value,
                }
                for n, p in enumerate(entry.postings, start=1)
            ],
        )

    def balances(self, as_of: date | None) -> dict[tuple[AccountCode, Currency], int]:
        signed = func.sum(journal_postings.c.amount_minor * _sign(journal_postings.c.side))
        query = (
            select(journal_postings.c.account, journal_postings.c.currency, signed)
            .join(journal_entries, journal_entries.c.entry_id == journal_postings.c.entry_id)
            .group_by(journal_postings.c.account, journal_postings.c.currency)
        )
        if as_of is not None:
            query = query.where(journal_entries.c.effective_on <= as_of)
        return {
            (AccountCode(account), Currency(currency)): int(total)
            for account, currency, total in self._connection().execute(query)
        }


def _sign(side: Any) -> Any:
    return case((side == Side.DEBIT.value, 1), else_=-1)


class SqlLendingUnitOfWork(SqlAlchemyUnitOfWork):
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        super().__init__(session_factory)
        self._clock = clock

    def _on_enter(self) -> None:
        session = self.session
        self._lines = SqlCreditLineRepository(session, self._clock)
        self._loans = SqlLoanRepository(session, self._clock)
        self._repayments = SqlRepaymentRepository(session, self._clock)
        self._journal = SqlJournalRepository(session, self._clock)

    @property
    def lines(self) -> SqlCreditLineRepository:
        return self._lines

    @property
    def loans(self) -> SqlLoanRepository:
        return self._loans

    @property
    def repayments(self) -> SqlRepaymentRepository:
        return self._repayments

    @property
    def journal(self) -> SqlJournalRepository:
        return self._journal
