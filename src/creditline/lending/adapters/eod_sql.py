"""The end-of-day job in set-based SQL: one statement per step over all loans.

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

These are the rules of `creditline.lending.domain.loan.Loan.close_day`, and a test runs
both on the same loans and compares them.
"""

from __future__ import annotations

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


def rounded_division(numerator: Any, denominator: Any, rounding: Any) -> Any:
    """SQL for `numerator / denominator` rounded by the row's rounding mode (non-negative)."""
    quotient = numerator // denominator
    twice_remainder = 2 * (numerator - quotient * denominator)
    return case(
        (rounding == Rounding.DOWN.value, quotient),
        (twice_remainder > denominator, quotient + 1),
        (
            and_(
                twice_remainder == denominator,
                or_(rounding == Rounding.HALF_UP.value, quotient % 2 == 1),
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

    def close_day(self, day: date) -> DaySummary:
        with self._engine.begin() as connection:
            if connection.execute(
                select(eod_runs.c.business_date).where(eod_runs.c.business_date == day)
            ).first():
                zero = Money.zero(self._currency)
                return DaySummary(day, True, zero, zero, 0, 0, 0)
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
        return summary

    def _close(self, connection: Connection, day: date) -> DaySummary:
        t = day.toordinal()
        penalty = self._accrue_penalty(connection, t)
        interest = self._accrue_interest(connection, t)
        self._start_new_periods(connection, day)
        self._update_days_past_due(connection, t)
        written_off = self._write_off(connection, day)
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
        if accrual is not None:
            self._post(connection, accrual)
        return DaySummary(
            day, False, money(interest), money(penalty), written_off, frozen, unfrozen
        )

    def _money(self, minor: int) -> Money:
        return Money(minor, self._currency)

    @staticmethod
    def _open_loans() -> Any:
        return select(L.loan_id).where(L.status.in_(OPEN))

    def _delta(self, connection: Connection, column: Any, condition: Any, change: Any) -> int:
        """Apply `change` to the rows matching `condition`; how much `column` grew in total."""
        total = select(func.coalesce(func.sum(column), 0)).where(condition)
        before = int(connection.execute(total).scalar_one())
        connection.execute(update(instalments).where(condition).values(**change))
        return int(connection.execute(total).scalar_one()) - before

    def _accrue_penalty(self, connection: Connection, t: int) -> int:
        late = and_(
            I.loan_id.in_(self._open_loans()),
            t - I.due_day > I.grace_days,
            I.principal_due_minor > I.principal_paid_minor,
        )
        units = I.penalty_units + (
            (I.principal_due_minor - I.principal_paid_minor) * I.rate_e8 * I.penalty_e2
        )
        scale = literal(PENALTY_SCALE, BigInteger)
        return self._delta(
            connection,
            I.penalty_accrued_minor,
            late,
            {
                "penalty_units": units,
                "penalty_accrued_minor": rounded_division(units, scale, I.rounding),
            },
        )

    def _accrue_interest(self, connection: Connection, t: int) -> int:
        current = and_(I.loan_id.in_(self._open_loans()), I.start_day <= t, I.due_day > t)
        interest_days = case((I.interest_days_num == 0, I.period_days), else_=I.interest_days_num)
        numerator = (
            I.accrual_principal_minor * I.rate_e8 * interest_days * (t - I.accrual_from_day + 1)
        )
        denominator = literal(RATE_SCALE, BigInteger) * I.interest_days_den * I.period_days
        accrued = I.accrual_fixed_minor + rounded_division(numerator, denominator, I.rounding)
        return self._delta(
            connection, I.interest_accrued_minor, current, {"interest_accrued_minor": accrued}
        )

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
        unpaid_due = and_(
            I.due_day <= t,
            or_(
                I.principal_due_minor > I.principal_paid_minor,
                I.interest_accrued_minor > I.interest_paid_minor,
            ),
        )
        late_loans = select(I.loan_id).where(unpaid_due)
        oldest = (
            select(func.min(I.due_day)).where(I.loan_id == L.loan_id, unpaid_due).scalar_subquery()
        )
        # Only loans with an unpaid past-due instalment need the look-up; the rest are
        # reset only if they were late yesterday (fewer row writes, which PostgreSQL likes).
        connection.execute(
            update(loans)
            .where(L.status.in_(OPEN), L.loan_id.in_(late_loans))
            .values(days_past_due=t + 1 - oldest)
        )
        connection.execute(
            update(loans)
            .where(
                L.status.in_(OPEN),
                L.days_past_due != 0,
                or_(L.days_past_due <= L.grace_days, L.loan_id.not_in(late_loans)),
            )
            .values(days_past_due=0)
        )
        overdue = LoanStatus.OVERDUE.value
        active = LoanStatus.ACTIVE.value
        connection.execute(
            update(loans).where(L.status == active, L.days_past_due > 0).values(status=overdue)
        )
        connection.execute(
            update(loans).where(L.status == overdue, L.days_past_due == 0).values(status=active)
        )

    def _write_off(self, connection: Connection, day: date) -> int:
        due = select(L.loan_id).where(L.status.in_(OPEN), L.days_past_due >= L.write_off_days)
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
            .where(L.status.in_(OPEN), L.days_past_due >= L.write_off_days)
            .values(status=LoanStatus.WRITTEN_OFF.value, written_off_on=day)
        )
        if write_off is not None:
            self._post(connection, write_off)
        return len(ids)

    def _reflect_delinquency_on_lines(self, connection: Connection, day: date) -> tuple[int, int]:
        c = credit_lines.c
        delinquent = select(L.line_id).where(L.status.in_(DELINQUENT))
        to_freeze = and_(c.status == LineStatus.ACTIVE.value, c.line_id.in_(delinquent))
        to_unfreeze = and_(
            c.status == LineStatus.FROZEN.value,
            c.status_reason == ReasonCode.OVERDUE.value,
            c.line_id.not_in(delinquent),
        )
        counts = []
        for condition, status, reason in (
            (to_freeze, LineStatus.FROZEN, ReasonCode.OVERDUE),
            (to_unfreeze, LineStatus.ACTIVE, ReasonCode.OVERDUE_CURED),
        ):
            connection.execute(
                insert(line_changes).from_select(
                    ["line_id", "changed_on", "reason", "limit_minor", "status"],
                    select(
                        c.line_id,
                        literal(day),
                        literal(reason.value),
                        c.limit_minor,
                        literal(status.value),
                    ).where(condition),
                )
            )
            changed = connection.execute(
                update(credit_lines)
                .where(condition)
                .values(status=status.value, status_reason=reason.value)
            ).rowcount
            counts.append(int(changed))
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
