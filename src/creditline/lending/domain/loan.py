"""A loan (借款/支用): one draw on a credit line, with its schedule and running balances.

Rules kept here, and mirrored by the SQL end-of-day job (`adapters/eod_sql.py`):

- **Interest** accrues each business day on the principal not yet due, for the current
  period: after `e` of its `A` days it is `fixed + balance × rate × D × e / A`, computed
  exactly and rounded once (so a full period accrues exactly its scheduled interest).
  Overdue principal stops earning interest and earns penalty interest instead.
- **Penalty interest**: each day, every instalment past its due date (plus grace) adds
  `unpaid principal × daily rate × penalty multiplier` to an exact integer accumulator;
  the posted penalty is that accumulator rounded once.
- **Repayment** is split in the loan's allocation order for its status; within a
  component, the oldest instalment is paid first. Interest is owed only for days used: a
  repayment on business date T owes interest through T − 1 (what the EOD has accrued).
  Paying more than the payoff amount is refused.
- **Partial prepayment** (the one rule, used everywhere): money that reaches "current
  principal" reduces the principal not yet due; the interest of the current period up to
  today is kept, and the remaining instalments are re-amortised with the same method over
  the same due dates. The term stays; the instalments get smaller.
- **Delinquency**: DPD counts from the oldest instalment with principal or interest unpaid
  after its due date; at `write_off_days` DPD the loan is written off (receivables move to
  credit losses) and later payments are recoveries.

Every change returns the journal entry that records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from creditline.lending.domain.delinquency import days_past_due
from creditline.lending.domain.journal import (
    CASH,
    CREDIT_LOSSES,
    INTEREST_INCOME,
    INTEREST_RECEIVABLE,
    PENALTY_INCOME,
    PENALTY_RECEIVABLE,
    PRINCIPAL_RECEIVABLE,
    RECOVERY_INCOME,
    EntryId,
    JournalEntry,
    entry,
)
from creditline.lending.domain.schedule import (
    Schedule,
    accrued_minor,
    build_schedule,
    period_interest_minor,
    principal_parts,
)
from creditline.lending.domain.terms import (
    RATE_SCALE,
    Component,
    LoanStatus,
    LoanTerms,
    RepaymentMethod,
)
from creditline.shared.errors import BusinessRuleError, ConflictError, FieldIssue, InvalidInputError
from creditline.shared.money import Currency, Money

#: Penalty accumulator units per fen: daily rate (1e-8) × multiplier (1e-2).
PENALTY_SCALE = RATE_SCALE * 100


@dataclass
class Instalment:
    """One scheduled payment and what has accrued and been paid against it (in fen)."""

    number: int
    due_on: date
    period_days: int
    principal_due: int
    interest_due: int
    interest_accrued: int = 0
    principal_paid: int = 0
    interest_paid: int = 0
    penalty_units: int = 0
    penalty_accrued: int = 0
    penalty_paid: int = 0

    @property
    def principal_unpaid(self) -> int:
        return self.principal_due - self.principal_paid

    @property
    def interest_unpaid(self) -> int:
        return self.interest_accrued - self.interest_paid

    @property
    def penalty_unpaid(self) -> int:
        return self.penalty_accrued - self.penalty_paid

    @property
    def is_settled(self) -> bool:
        return self.principal_unpaid == 0 and self.interest_unpaid == 0


@dataclass(frozen=True, slots=True)
class Allocation:
    """How one repayment was split; the parts add up to `amount` exactly."""

    amount: Money
    parts: tuple[tuple[Component, Money], ...]

    def of(self, component: Component) -> Money:
        found = Money.zero(self.amount.currency)
        for name, value in self.parts:
            if name is component:
                found += value
        return found

    @property
    def principal(self) -> Money:
        return self.of(Component.OVERDUE_PRINCIPAL) + self.of(Component.CURRENT_PRINCIPAL)

    @property
    def interest(self) -> Money:
        return self.of(Component.OVERDUE_INTEREST) + self.of(Component.CURRENT_INTEREST)

    @property
    def penalty(self) -> Money:
        return self.of(Component.PENALTY)


@dataclass
class Loan:
    loan_id: str
    line_id: str
    customer_id: str
    principal: Money
    terms: LoanTerms
    method: RepaymentMethod
    term_months: int
    drawn_on: date
    instalments: list[Instalment]
    status: LoanStatus = LoanStatus.ACTIVE
    accrual_from: date | None = None
    accrual_fixed: int = 0
    days_past_due: int = 0
    closed_on: date | None = None
    written_off_on: date | None = None
    extra: dict[str, str] = field(default_factory=dict)

    # -- creation ----------------------------------------------------------------------

    @classmethod
    def draw(
        cls,
        loan_id: str,
        line_id: str,
        customer_id: str,
        principal: Money,
        terms: LoanTerms,
        method: RepaymentMethod,
        term_months: int,
        on: date,
    ) -> tuple[Loan, JournalEntry]:
        schedule = build_schedule(principal, terms, method, term_months, on)
        loan = cls(
            loan_id,
            line_id,
            customer_id,
            principal,
            terms,
            method,
            term_months,
            on,
            instalments_from(schedule),
            accrual_from=on,
        )
        disbursement = entry(
            EntryId(f"{loan_id}:disbursement"),
            on,
            "disbursement",
            f"Drawdown {loan_id} on {line_id}",
            [(PRINCIPAL_RECEIVABLE, CASH, principal)],
            loan_id,
        )
        assert disbursement is not None  # a draw lends a positive amount
        return loan, disbursement

    # -- reading -----------------------------------------------------------------------

    @property
    def currency(self) -> Currency:
        return self.principal.currency

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    @property
    def principal_outstanding(self) -> Money:
        return self.money(sum(i.principal_unpaid for i in self.instalments))

    @property
    def is_open(self) -> bool:
        return self.status in (LoanStatus.ACTIVE, LoanStatus.OVERDUE)

    def current_instalment(self, on: date) -> Instalment | None:
        """The instalment whose period contains `on` (None after maturity)."""
        return next((i for i in self.instalments if i.due_on > on), None)

    def owed(self, on: date) -> dict[Component, int]:
        """What is owed on business date `on`, per component (fen)."""
        due = [i for i in self.instalments if i.due_on <= on]
        ahead = [i for i in self.instalments if i.due_on > on]
        return {
            Component.PENALTY: sum(i.penalty_unpaid for i in self.instalments),
            Component.OVERDUE_INTEREST: sum(i.interest_unpaid for i in due),
            Component.OVERDUE_PRINCIPAL: sum(i.principal_unpaid for i in due),
            Component.CURRENT_INTEREST: sum(i.interest_unpaid for i in ahead),
            Component.CURRENT_PRINCIPAL: sum(i.principal_unpaid for i in ahead),
        }

    def payoff_amount(self, on: date) -> Money:
        """Today's full payoff: principal, interest for the days used, and any penalty."""
        if self.status is LoanStatus.CLOSED:
            return self.money(0)
        return self.money(sum(self.owed(on).values()))

    # -- repayment ---------------------------------------------------------------------

    def repay(
        self, amount: Money, *, on: date, entry_id: EntryId
    ) -> tuple[Allocation, JournalEntry]:
        """Apply a repayment made on business date `on`; refuse overpayment."""
        if amount.currency is not self.currency or not amount.is_positive:
            raise InvalidInputError(
                FieldIssue("amount", "must_be_positive", "a repayment is a positive amount")
            )
        if self.status is LoanStatus.CLOSED:
            raise ConflictError(f"loan {self.loan_id} is already repaid", code="loan_closed")
        owed = self.owed(on)
        payoff = sum(owed.values())
        if amount.minor_units > payoff:
            raise BusinessRuleError(
                f"{amount.to_str()} is more than the payoff amount {self.money(payoff).to_str()}",
                code="overpayment",
                field="amount",
            )
        parts = self._allocate(amount.minor_units, owed, on)
        allocation = Allocation(amount, tuple((c, self.money(v)) for c, v in parts if v))
        if allocation.of(Component.CURRENT_PRINCIPAL).is_positive:
            self._reamortise(on)
        self._settle_status(on)
        return allocation, self._repayment_entry(allocation, on, entry_id)

    def _allocate(
        self, amount: int, owed: dict[Component, int], on: date
    ) -> list[tuple[Component, int]]:
        remaining = amount
        parts: list[tuple[Component, int]] = []
        for component in self.terms.order_for(self.status):
            take = min(remaining, owed[component])
            if take:
                self._apply(component, take, on)
                parts.append((component, take))
                remaining -= take
        assert remaining == 0, "the payoff check guarantees everything is allocated"
        return parts

    def _apply(self, component: Component, amount: int, on: date) -> None:
        left = amount
        for item in self.instalments:  # oldest first
            is_due = item.due_on <= on
            if component is Component.PENALTY:
                take = min(left, item.penalty_unpaid)
                item.penalty_paid += take
            elif component in (Component.OVERDUE_INTEREST, Component.CURRENT_INTEREST):
                if is_due != (component is Component.OVERDUE_INTEREST):
                    continue
                take = min(left, item.interest_unpaid)
                item.interest_paid += take
            else:
                if is_due != (component is Component.OVERDUE_PRINCIPAL):
                    continue
                take = min(left, item.principal_unpaid)
                item.principal_paid += take
            left -= take
            if left == 0:
                return

    def _reamortise(self, on: date) -> None:
        """The partial-prepayment rule: same method and due dates, smaller instalments."""
        ahead = [i for i in self.instalments if i.due_on > on]
        balance = sum(i.principal_unpaid for i in ahead)
        current = ahead[0]
        # Principal paid ahead was booked on the nearest instalments; fold it back so the
        # remaining principal is spread again from scratch.
        for item in ahead:
            item.principal_due -= item.principal_paid
            item.principal_paid = 0
        self.accrual_fixed = current.interest_accrued
        self.accrual_from = on
        if balance == 0:
            for item in ahead:
                item.principal_due = 0
                item.interest_due = item.interest_accrued
            return
        parts = principal_parts(balance, self.terms, self.method, [i.period_days for i in ahead])
        remaining = balance
        for k, (item, part) in enumerate(zip(ahead, parts, strict=True)):
            item.principal_due = part
            if k == 0:
                days_left = (item.due_on - on).days
                item.interest_due = self.accrual_fixed + accrued_minor(
                    remaining, self.terms, item.period_days, days_left
                )
            else:
                item.interest_due = period_interest_minor(remaining, self.terms, item.period_days)
            remaining -= part

    def _settle_status(self, on: date) -> None:
        if self.status is LoanStatus.WRITTEN_OFF:
            if sum(self.owed(on).values()) == 0:
                self.closed_on = on
                self.status = LoanStatus.CLOSED
            return
        if self.principal_outstanding.is_zero and sum(self.owed(on).values()) == 0:
            self.status = LoanStatus.CLOSED
            self.closed_on = on
            self.days_past_due = 0
            return
        self.days_past_due = days_past_due(self.oldest_unpaid_due_on(on), on, self.terms.grace_days)
        self.status = LoanStatus.OVERDUE if self.days_past_due > 0 else LoanStatus.ACTIVE

    def _repayment_entry(self, allocation: Allocation, on: date, entry_id: EntryId) -> JournalEntry:
        if self.written_off_on is not None:
            legs = [(CASH, RECOVERY_INCOME, allocation.amount)]
        else:
            legs = [
                (CASH, PENALTY_RECEIVABLE, allocation.penalty),
                (CASH, INTEREST_RECEIVABLE, allocation.interest),
                (CASH, PRINCIPAL_RECEIVABLE, allocation.principal),
            ]
        made = entry(entry_id, on, "repayment", f"Repayment on {self.loan_id}", legs, self.loan_id)
        assert made is not None  # a repayment is positive
        return made

    def oldest_unpaid_due_on(self, on: date) -> date | None:
        return next(
            (i.due_on for i in self.instalments if i.due_on <= on and not i.is_settled), None
        )

    # -- end of day --------------------------------------------------------------------

    def close_day(self, day: date) -> list[JournalEntry]:
        """The end of business day `day`: penalty, interest, roll, DPD, write-off."""
        if not self.is_open:
            return []
        penalty = self._accrue_penalty(day)
        interest = self._accrue_interest(day)
        tomorrow = day + timedelta(days=1)
        current = self.current_instalment(day)
        if current is not None and current.due_on == tomorrow:
            self.accrual_fixed = 0
            self.accrual_from = tomorrow
        self.days_past_due = days_past_due(
            self.oldest_unpaid_due_on(tomorrow), tomorrow, self.terms.grace_days
        )
        self.status = LoanStatus.OVERDUE if self.days_past_due > 0 else LoanStatus.ACTIVE
        entries = [
            e
            for e in (
                entry(
                    EntryId(f"{self.loan_id}:accrual:{day.isoformat()}"),
                    day,
                    "accrual",
                    f"Interest and penalty accrued on {self.loan_id}",
                    [
                        (INTEREST_RECEIVABLE, INTEREST_INCOME, self.money(interest)),
                        (PENALTY_RECEIVABLE, PENALTY_INCOME, self.money(penalty)),
                    ],
                    self.loan_id,
                ),
            )
            if e is not None
        ]
        if self.days_past_due >= self.terms.write_off_days:
            entries.append(self._write_off(day))
        return entries

    def _accrue_penalty(self, day: date) -> int:
        added = 0
        per_day = self.terms.rate_e8 * self.terms.penalty_e2
        for item in self.instalments:
            if (day - item.due_on).days > self.terms.grace_days and item.principal_unpaid > 0:
                item.penalty_units += item.principal_unpaid * per_day
                posted = self.terms.rounding.divide(item.penalty_units, PENALTY_SCALE)
                added += posted - item.penalty_accrued
                item.penalty_accrued = posted
        return added

    def _accrue_interest(self, day: date) -> int:
        current = self.current_instalment(day)
        if current is None or self.accrual_from is None:
            return 0
        balance = sum(i.principal_unpaid for i in self.instalments if i.due_on > day)
        elapsed = (day - self.accrual_from).days + 1
        accrued = self.accrual_fixed + accrued_minor(
            balance, self.terms, current.period_days, elapsed
        )
        added = accrued - current.interest_accrued
        current.interest_accrued = accrued
        return added

    def _write_off(self, day: date) -> JournalEntry:
        principal = self.principal_outstanding
        interest = self.money(sum(i.interest_unpaid for i in self.instalments))
        penalty = self.money(sum(i.penalty_unpaid for i in self.instalments))
        self.status = LoanStatus.WRITTEN_OFF
        self.written_off_on = day
        made = entry(
            EntryId(f"{self.loan_id}:write_off"),
            day,
            "write_off",
            f"Write-off of {self.loan_id} at {self.days_past_due} DPD",
            [
                (CREDIT_LOSSES, PRINCIPAL_RECEIVABLE, principal),
                (CREDIT_LOSSES, INTEREST_RECEIVABLE, interest),
                (CREDIT_LOSSES, PENALTY_RECEIVABLE, penalty),
            ],
            self.loan_id,
        )
        assert made is not None  # a loan 180 days late has principal unpaid
        return made


def instalments_from(schedule: Schedule) -> list[Instalment]:
    return [
        Instalment(
            s.number, s.due_on, s.period_days, s.principal.minor_units, s.interest.minor_units
        )
        for s in schedule.instalments
    ]
