"""The end-of-day job in set-based SQL: a few statements per step, over the rows that change.

Closing business day D (ordinal `t`), in one transaction, once (a `lending_eod_runs` row
makes a re-run a no-op):

1. penalty interest on every instalment whose principal is past due (plus grace):
   exact units += unpaid principal × rate_e8 × penalty_e2; posted = units rounded once;
2. interest on each open loan's current instalment (start_day ≤ t < due_day):
   fixed + round(accrual principal × rate × D × (t − from + 1) / (1e8 × A));
3. loans whose next instalment falls due tomorrow start a new accrual period;
4. DPD and status from the oldest instalment unpaid after its due date;
5. write-off at the loan's write-off DPD: the receivables move to credit losses;
6. lines with an overdue or written-off draw are frozen; lines we froze are unfrozen
   once cured; every change goes into the line's history;
7. the day's interest, penalty and write-offs are posted as balanced journal entries
   (one per kind and day; the per-loan detail is on the instalment rows).

These are the rules of `creditline.lending.domain.loan.Loan.close_day`, and tests run
both on the same loans and compare them (a fixed 215-day portfolio and a Hypothesis
state machine, on SQLite and PostgreSQL).

To stay fast at a million loans, each step reads only the rows that can change, through
an index where one fits (see the lending README, "End of day at scale"). Steps 1 and 4 use
what the rest of the capability keeps true: days are closed in order and a repayment
recomputes its loan's DPD and status as of the open business day, so when day D is closed
every loan's DPD and status are as of D. A loan with principal past due + grace is
therefore overdue (step 1 reads only overdue loans' instalments), and an overdue loan's
DPD tomorrow is one more than today (step 4 reads instalments only for active loans with
one falling due).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from creditline.lending.adapters.tables import (
    credit_lines,
    eod_runs,
    instalments,
    journal_entries,
    journal_postings,
    line_changes,
    loans,
)
from creditline.lending.domain.credit_line import LineStatus, ReasonCode
from creditline.lending.domain.journal import (
    CREDIT_LOSSES,
    INTEREST_INCOME,
    INTEREST_RECEIVABLE,
    PENALTY_INCOME,
    PENALTY_RECEIVABLE,
    PRINCIPAL_RECEIVABLE,
    AccountCode,
    EntryId,
    entry,
)
from creditline.lending.domain.loan import PENALTY_SCALE
from creditline.lending.domain.terms import RATE_SCALE, LoanStatus, Rounding
from creditline.lending.ports import DaySummary
from creditline.shared.clock import Clock
from creditline.shared.money import Currency, Money

OPEN = (LoanStatus.ACTIVE.value, LoanStatus.OVERDUE.value)
DELINQUENT = (LoanStatus.OVERDUE.value, LoanStatus.WRITTEN_OFF.value)
I = instalments.c  # noqa: E741 - the instalment columns, used in every statement
L = loans.c


class _Stopwatch:
    """Times named steps: `with timer("step"): ...` adds the seconds to `timer.seconds`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started


#: SQLite page cache for the end-of-day connection, in KiB (the default is 2 MiB): the
#: job rewrites rows on nearly every page of instalments, and a small cache spills them
#: to the WAL and reads them back several times in one transaction.
SQLITE_EOD_CACHE_KIB = 512 * 1024


@contextmanager
def _tuned_for_bulk(connection: Connection) -> Iterator[None]:
    """A larger SQLite page cache while the job runs; the pooled connection gets its own back."""
    if connection.dialect.name != "sqlite":
        yield
        return
    # On the driver connection (autocommit), so that no transaction is begun for it.
    raw = connection.connection.driver_connection
    assert raw is not None
    previous = int(raw.execute("PRAGMA cache_size").fetchone()[0])
    raw.execute(f"PRAGMA cache_size = -{SQLITE_EOD_CACHE_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {previous}")


def rounded_division(numerator: Any, denominator: Any, rounding: Any) -> Any:
    """SQL for `numerator / denominator` rounded by the row's rounding mode (non-negative).

    The same rule as `Rounding.divide`; written so that a row evaluates the numerator
    (a product of several columns) as few times as possible.
    """
    quotient = numerator // denominator
    twice_remainder = 2 * (numerator % denominator)
    return case(
        (rounding == Rounding.DOWN.value, quotient),
        (
            or_(
                twice_remainder > denominator,
                and_(
                    twice_remainder == denominator,
                    or_(rounding == Rounding.HALF_UP.value, quotient % 2 == 1),
                ),
            ),
            quotient + 1,
        ),
        else_=quotient,
    )


class SqlEndOfDay:
    """Closes business days over every loan in the database, a few statements per day."""

    def __init__(self, engine: Engine, clock: Clock, currency: Currency = Currency.CNY) -> None:
        self._engine = engine
        self._clock = clock
        self._currency = currency
        #: Seconds spent in each step of the last day closed (for benchmarks and profiling).
        self.last_step_seconds: dict[str, float] = {}

    def close_day(self, day: date) -> DaySummary:
        self.last_step_seconds = {}
        with self._engine.connect() as connection, _tuned_for_bulk(connection):
            with connection.begin():
                if connection.execute(
                    select(eod_runs.c.business_date).where(eod_runs.c.business_date == day)
                ).first():
                    zero = Money.zero(self._currency)
                    return DaySummary(day, True, zero, zero, 0, 0, 0)
                if connection.dialect.name == "postgresql":
                    # Planner settings for this transaction only; durability is unchanged
                    # (synchronous_commit stays on: the day is on disk when commit
                    # returns). JIT compiling costs more than it saves on these statements;
                    # hashing a million loan ids wants more than the default 4 MB; and with
                    # the default random_page_cost (4, for spinning disks) the planner
                    # scans all instalments rather than look up the overdue loans' few by
                    # key (5.4 s against 0.7 s at a million loans).
                    connection.exec_driver_sql("SET LOCAL jit = off")
                    connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
                    connection.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
                summary = self._close(connection, day)
                connection.execute(
                    insert(eod_runs).values(
                        business_date=day,
                        finished_at=self._clock.now(),
                        summary={
                            "interest_accrued_minor": summary.interest_accrued.minor_units,
                            "penalty_accrued_minor": summary.penalty_accrued.minor_units,
                            "loans_written_off": summary.loans_written_off,
                            "lines_frozen": summary.lines_frozen,
                            "lines_unfrozen": summary.lines_unfrozen,
                        },
                    )
                )
                started = time.perf_counter()
            self.last_step_seconds["commit"] = time.perf_counter() - started
        return summary

    def _close(self, connection: Connection, day: date) -> DaySummary:
        t = day.toordinal()
        timer = _Stopwatch()
        self.last_step_seconds = timer.seconds
        with timer("penalty"):
            penalty = self._accrue_penalty(connection, t)
        with timer("interest"):
            interest = self._accrue_interest(connection, t)
        with timer("new_periods"):
            self._start_new_periods(connection, day)
        with timer("days_past_due"):
            self._update_days_past_due(connection, t)
        with timer("write_off"):
            written_off = self._write_off(connection, day)
        with timer("lines"):
            frozen, unfrozen = self._reflect_delinquency_on_lines(connection, day)
        money = self._money
        accrual = entry(
            EntryId(f"eod:{day.isoformat()}:accrual"),
            day,
            "accrual",
            f"Interest and penalty accrued for {day.isoformat()}",
            [
                (INTEREST_RECEIVABLE, INTEREST_INCOME, money(interest)),
                (PENALTY_RECEIVABLE, PENALTY_INCOME, money(penalty)),
            ],
        )
        with timer("journal"):
            if accrual is not None:
                self._post(connection, accrual)
        return DaySummary(
            day, False, money(interest), money(penalty), written_off, frozen, unfrozen
        )

    def _money(self, minor: int) -> Money:
        return Money(minor, self._currency)

    @staticmethod
    def _loans_in(*statuses: str) -> Any:
        return select(L.loan_id).where(L.status.in_(statuses))

    @staticmethod
    def _apply(connection: Connection, column: Any, condition: Any, new_value: Any) -> int:
        """Set `column` to `new_value` where `condition` holds; how much it grew in total.

        The growth is summed before the update (rows that do not change add nothing), and
        the update writes only the rows whose value changes.
        """
        growth = select(func.coalesce(func.sum(new_value - column), 0)).where(condition)
        total = int(connection.execute(growth).scalar_one())
        connection.execute(
            update(instalments).where(condition, new_value != column).values({column: new_value})
        )
        return total

    def _accrue_penalty(self, connection: Connection, t: int) -> int:
        # A loan with principal unpaid past due + grace is overdue: the previous close (or
        # the repayment since) computed its DPD from that instalment. So only overdue
        # loans are read, through the status index, not every instalment.
        late = and_(
            I.loan_id.in_(self._loans_in(LoanStatus.OVERDUE.value)),
            t - I.due_day > I.grace_days,
            I.principal_due_minor > I.principal_paid_minor,
        )
        units = I.penalty_units + (
            (I.principal_due_minor - I.principal_paid_minor) * I.rate_e8 * I.penalty_e2
        )
        scale = literal(PENALTY_SCALE, BigInteger)
        posted = rounded_division(units, scale, I.rounding)
        growth = select(func.coalesce(func.sum(posted - I.penalty_accrued_minor), 0)).where(late)
        total = int(connection.execute(growth).scalar_one())
        connection.execute(
            update(instalments)
            .where(late)
            .values(penalty_units=units, penalty_accrued_minor=posted)
        )
        return total

    def _accrue_interest(self, connection: Connection, t: int) -> int:
        # Scan the instalments and look each current one's loan up by key: the range on
        # due_day holds half the table, so `+ 0` keeps SQLite off that index, and
        # EXISTS (a semi-join on PostgreSQL) keeps SQLite from walking all open loans.
        loan_is_open = select(L.loan_id).where(L.loan_id == I.loan_id, L.status.in_(OPEN)).exists()
        current = and_(I.start_day <= t, I.due_day + 0 > t, loan_is_open)
        interest_days = case((I.interest_days_num == 0, I.period_days), else_=I.interest_days_num)
        numerator = (
            I.accrual_principal_minor * I.rate_e8 * interest_days * (t - I.accrual_from_day + 1)
        )
        denominator = literal(RATE_SCALE, BigInteger) * I.interest_days_den * I.period_days
        accrued = I.accrual_fixed_minor + rounded_division(numerator, denominator, I.rounding)
        return self._apply(connection, I.interest_accrued_minor, current, accrued)

    def _start_new_periods(self, connection: Connection, day: date) -> None:
        tomorrow = day + timedelta(days=1)
        rolling = select(I.loan_id).where(I.due_day == tomorrow.toordinal())
        connection.execute(
            update(loans)
            .where(L.status.in_(OPEN), L.loan_id.in_(rolling))
            .values(
                accrual_from=tomorrow,
                accrual_from_day=tomorrow.toordinal(),
                accrual_fixed_minor=0,
            )
        )

    def _update_days_past_due(self, connection: Connection, t: int) -> None:
        """DPD and status as of tomorrow, for the only loans where they can change.

        Days are closed in order, and repayments are made on the open business day, so
        every loan's DPD and status were computed as of today (by yesterday's close or by
        today's repayment). An overdue loan's oldest unsettled instalment stays the oldest
        overnight, so its DPD grows by one: no instalment is read. An active loan becomes
        overdue only through an unsettled instalment that fell due within its grace of
        today; those loans (found through the due-day index) get their DPD from their
        oldest unsettled instalment, once each (`UPDATE … FROM` a grouped query).
        """
        overdue = LoanStatus.OVERDUE.value
        active = LoanStatus.ACTIVE.value
        connection.execute(
            update(loans).where(L.status == overdue).values(days_past_due=L.days_past_due + 1)
        )
        unsettled = or_(
            I.principal_due_minor > I.principal_paid_minor,
            I.interest_accrued_minor > I.interest_paid_minor,
        )
        past_due = and_(I.due_day <= t, unsettled)
        most_grace = int(
            connection.execute(select(func.coalesce(func.max(L.grace_days), 0))).scalar_one()
        )
        falling_due = select(I.loan_id).where(I.due_day >= t - most_grace, past_due)
        candidates = select(L.loan_id).where(L.status == active, L.loan_id.in_(falling_due))
        oldest = (
            select(I.loan_id, func.min(I.due_day).label("due_day"))
            .where(I.loan_id.in_(candidates), past_due)
            .group_by(I.loan_id)
            .subquery()
        )
        late = t + 1 - oldest.c.due_day
        connection.execute(
            update(loans)
            .where(L.loan_id == oldest.c.loan_id, late > L.grace_days)
            .values(days_past_due=late, status=overdue)
        )

    def _write_off(self, connection: Connection, day: date) -> int:
        reached = and_(L.status == LoanStatus.OVERDUE.value, L.days_past_due >= L.write_off_days)
        due = select(L.loan_id).where(reached)
        ids = [row[0] for row in connection.execute(due)]
        if not ids:
            return 0
        sums = connection.execute(
            select(
                func.coalesce(func.sum(I.principal_due_minor - I.principal_paid_minor), 0),
                func.coalesce(func.sum(I.interest_accrued_minor - I.interest_paid_minor), 0),
                func.coalesce(func.sum(I.penalty_accrued_minor - I.penalty_paid_minor), 0),
            ).where(I.loan_id.in_(due))
        ).one()
        legs: list[tuple[AccountCode, AccountCode, Money]] = [
            (CREDIT_LOSSES, PRINCIPAL_RECEIVABLE, self._money(int(sums[0]))),
            (CREDIT_LOSSES, INTEREST_RECEIVABLE, self._money(int(sums[1]))),
            (CREDIT_LOSSES, PENALTY_RECEIVABLE, self._money(int(sums[2]))),
        ]
        write_off = entry(
            EntryId(f"eod:{day.isoformat()}:write_off"),
            day,
            "write_off",
            f"Write-off of {len(ids)} loans at their write-off DPD",
            legs,
        )
        connection.execute(
            update(loans)
            .where(reached)
            .values(status=LoanStatus.WRITTEN_OFF.value, written_off_on=day)
        )
        if write_off is not None:
            self._post(connection, write_off)
        return len(ids)

    def _reflect_delinquency_on_lines(self, connection: Connection, day: date) -> tuple[int, int]:
        c = credit_lines.c
        delinquent = select(L.line_id).where(L.status.in_(DELINQUENT))
        still_delinquent = (
            select(L.loan_id).where(L.line_id == c.line_id, L.status.in_(DELINQUENT)).exists()
        )
        to_freeze = and_(c.status == LineStatus.ACTIVE.value, c.line_id.in_(delinquent))
        # NOT EXISTS (an anti-join on the line/status index), not NOT IN: PostgreSQL runs a
        # NOT IN over a subquery larger than work_mem row by row.
        to_unfreeze = and_(
            c.status == LineStatus.FROZEN.value,
            c.status_reason == ReasonCode.OVERDUE.value,
            ~still_delinquent,
        )
        counts = []
        for condition, status, reason in (
            (to_freeze, LineStatus.FROZEN, ReasonCode.OVERDUE),
            (to_unfreeze, LineStatus.ACTIVE, ReasonCode.OVERDUE_CURED),
        ):
            changed = connection.execute(
                update(credit_lines)
                .where(condition)
                .values(status=status.value, status_reason=reason.value)
                .returning(c.line_id, c.limit_minor)
            ).all()
            if changed:
                connection.execute(
                    insert(line_changes),
                    [
                        {
                            "line_id": line_id,
                            "changed_on": day,
                            "reason": reason.value,
                            "limit_minor": limit_minor,
                            "status": status.value,
                        }
                        for line_id, limit_minor in changed
                    ],
                )
            counts.append(len(changed))
        return counts[0], counts[1]

    def _post(self, connection: Connection, made: Any) -> None:
        connection.execute(
            insert(journal_entries).values(
                entry_id=made.entry_id,
                effective_on=made.effective_on,
                kind=made.kind,
                memo=made.memo,
                loan_id=made.loan_id,
                created_at=self._clock.now(),
            )
        )
        connection.execute(
            insert(journal_postings),
            [
                {
                    "entry_id": made.entry_id,
                    "line_no": n,
                    "account": p.account,
                    "side": p.side.value,
                    "amount_minor": p.amount.minor_units,
                    "currency": p.amount.currency.value,
                }
                for n, p in enumerate(made.postings, start=1)
            ],
        )
