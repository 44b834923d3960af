"""Applying for credit and reviewing: idempotency, the line opened, the human part kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from creditline.decisioning import service
from creditline.decisioning.adapters.lending_bridge import representative_apr
from creditline.decisioning.adapters.zen_policies import ZenPolicyEngine
from creditline.decisioning.domain.application import ApplicantFacts
from creditline.decisioning.domain.decision import Decision, ReviewStatus
from creditline.decisioning.domain.pipeline import Outcome
from creditline.shared.clock import FixedClock
from creditline.shared.errors import ConflictError, InvalidInputError, NotFoundError
from creditline.shared.money import Money
from creditline.shared.uow import RequestRecord
from tests.unit.decisioning.test_decisioning_pipeline import FakeScorer

POLICIES = ZenPolicyEngine(Path(__file__).resolve().parents[3] / "policies" / "v2")
ON = date(2026, 1, 15)
BOTH = frozenset({"credit_assessment", "credit_bureau_query"})


@dataclass
class OpenedLine:
    line_id: str
    customer_id: str
    limit: Money
    daily_rate: Decimal


@dataclass
class FakeDecisioningUnitOfWork:
    people: dict[str, ApplicantFacts] = field(default_factory=dict)
    stored: dict[str, Decision] = field(default_factory=dict)
    opened: list[OpenedLine] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    today: date = date(2026, 3, 2)
    asked_on: list[date] = field(default_factory=list)
    _pending: dict[str, Decision] = field(default_factory=dict)
    _pending_lines: list[OpenedLine] = field(default_factory=list)

    @property
    def decisions(self) -> Self:
        return self

    @property
    def applicants(self) -> Self:
        return self

    @property
    def lines(self) -> Self:
        return self

    def add(self, decision: Decision) -> None:
        self._pending[decision.application_id] = decision

    def update_review(self, decision: Decision) -> None:
        self._pending[decision.application_id] = decision

    def get(self, application_id: str) -> Decision | None:
        return self._pending.get(application_id, self.stored.get(application_id))

    def pending_reviews(self, limit: int) -> list[Decision]:
        waiting = [
            d for d in self.stored.values() if d.review and d.review.status is ReviewStatus.PENDING
        ]
        return waiting[:limit]

    def facts(self, customer_id: str, on: date) -> ApplicantFacts | None:
        self.asked_on.append(on)
        return self.people.get(customer_id)

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
        self._pending_lines.append(OpenedLine(line_id, customer_id, limit, daily_rate))
        return line_id

    def lock_customer(
        self,
        customer_id: str,
        application_id: str | None = None,
        record: RequestRecord[Decision] | None = None,
    ) -> None:
        if record is not None:
            record.claim()
        self.locked.append(customer_id)

    def business_date(self) -> date:
        if not self.locked:
            raise AssertionError("the business date is read after the customer's lock")
        return self.today

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.clear()
        self._pending_lines.clear()

    @contextmanager
    def committing(self) -> Iterator[None]:
        yield
        self.commit()

    def commit(self) -> None:
        self.stored.update(self._pending)
        self.opened.extend(self._pending_lines)
        self._pending.clear()
        self._pending_lines.clear()


@pytest.fixture
def uow() -> FakeDecisioningUnitOfWork:
    fake = FakeDecisioningUnitOfWork()
    fake.people["cus_ok"] = ApplicantFacts("cus_ok", 30, BOTH, Money.yuan("120000.00"))
    fake.people["cus_thin"] = ApplicantFacts(
        "cus_thin",
        30,
        BOTH,
        Money.yuan("120000.00"),
        payments_and_orders_365d=2,
        has_bill_history=False,
    )
    fake.people["cus_young"] = ApplicantFacts("cus_young", 17, BOTH, Money.yuan("120000.00"))
    return fake


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 15, 3, tzinfo=UTC))


def apply(
    uow: FakeDecisioningUnitOfWork,
    clock: FixedClock,
    customer: str,
    key: str = "app-1",
    requested: Money | None = None,
) -> tuple[Decision, bool]:
    return service.apply_for_credit(
        uow,
        clock,
        policies=POLICIES,
        scorer=FakeScorer(),
        apr_of=representative_apr,
        application_id=key,
        customer_id=customer,
        requested_limit=requested,
        business_date=ON,
    )


def test_without_a_business_date_the_transactions_own_date_holds(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    apply(uow, clock, "cus_ok")
    service.apply_for_credit(
        uow,
        clock,
        policies=POLICIES,
        scorer=FakeScorer(),
        apr_of=representative_apr,
        application_id="app-2",
        customer_id="cus_thin",
        requested_limit=None,
    )

    assert uow.asked_on == [ON, uow.today]
    assert uow.today != ON


def test_an_approval_opens_the_line_in_the_same_transaction(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    decision, created = apply(uow, clock, "cus_ok")

    assert created
    assert decision.outcome is Outcome.APPROVED
    assert decision.limit == Money.yuan("40000.00")
    assert uow.opened == [
        OpenedLine(
            decision.credit_line_id or "",
            "cus_ok",
            decision.limit,
            Decimal("0.00025"),
        )
    ]
    assert uow.locked == ["cus_ok"]


def test_a_retry_returns_the_first_decision_and_opens_nothing_more(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    first, _ = apply(uow, clock, "cus_ok")

    again, created = apply(uow, clock, "cus_ok")

    assert (again, created) == (first, False)
    assert len(uow.opened) == 1


def test_the_same_application_id_for_another_customer_is_a_conflict(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    apply(uow, clock, "cus_ok")

    with pytest.raises(ConflictError):
        apply(uow, clock, "cus_thin")


def test_asking_for_less_gives_what_was_asked(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    decision, _ = apply(uow, clock, "cus_ok", requested=Money.yuan("15050.00"))

    assert decision.limit == Money.yuan("15000.00")
    assert uow.opened[0].limit == Money.yuan("15000.00")


def test_a_decline_opens_no_line(uow: FakeDecisioningUnitOfWork, clock: FixedClock) -> None:
    decision, _ = apply(uow, clock, "cus_young")

    assert decision.outcome is Outcome.DECLINED
    assert decision.credit_line_id is None
    assert uow.opened == []


def test_an_unknown_customer_is_not_found(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    with pytest.raises(NotFoundError):
        apply(uow, clock, "cus_nobody")


def test_review_waits_in_the_queue_then_a_person_approves_a_lower_limit(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    waiting, _ = apply(uow, clock, "cus_thin")
    queue = service.pending_reviews(uow)

    resolved = service.resolve_review(
        uow,
        clock,
        application_id=waiting.application_id,
        decision=Outcome.APPROVED,
        limit=Money.yuan("2000.00"),
        note="salary slips checked",
        reviewer="op-7",
        business_date=ON,
    )

    assert [d.application_id for d in queue] == [waiting.application_id]
    assert waiting.outcome is Outcome.REVIEW
    assert resolved.outcome is Outcome.APPROVED
    assert resolved.draft.outcome is Outcome.REVIEW  # the automated part is kept
    assert resolved.limit == Money.yuan("2000.00")
    assert uow.opened[0].limit == Money.yuan("2000.00")
    assert service.pending_reviews(uow) == []


def test_a_reviewer_cannot_exceed_the_prepared_offer(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    waiting, _ = apply(uow, clock, "cus_thin")

    with pytest.raises(InvalidInputError):
        service.resolve_review(
            uow,
            clock,
            application_id=waiting.application_id,
            decision=Outcome.APPROVED,
            limit=Money.yuan("3000.01"),
            note="",
            reviewer="op-7",
            business_date=ON,
        )


def test_a_review_is_resolved_once(uow: FakeDecisioningUnitOfWork, clock: FixedClock) -> None:
    waiting, _ = apply(uow, clock, "cus_thin")
    service.resolve_review(
        uow,
        clock,
        application_id=waiting.application_id,
        decision=Outcome.DECLINED,
        limit=None,
        note="documents inconsistent",
        reviewer="op-7",
        business_date=ON,
    )

    with pytest.raises(ConflictError):
        service.resolve_review(
            uow,
            clock,
            application_id=waiting.application_id,
            decision=Outcome.APPROVED,
            limit=None,
            note="",
            reviewer="op-8",
            business_date=ON,
        )
    assert uow.opened == []


@dataclass
class RecordingRecord:
    """A request record that notes what the use case did with it."""

    calls: list[str] = field(default_factory=list)

    def claim(self) -> None:
        self.calls.append("claim")

    def complete(self, result: Decision) -> None:
        self.calls.append(f"complete:{result.outcome.value}")


def test_the_request_record_goes_with_the_lock_and_is_completed_with_the_decision(
    uow: FakeDecisioningUnitOfWork, clock: FixedClock
) -> None:
    record = RecordingRecord()

    decision, created = service.apply_for_credit(
        uow,
        clock,
        policies=POLICIES,
        scorer=FakeScorer(),
        apr_of=representative_apr,
        application_id="app-rec",
        customer_id="cus_ok",
        requested_limit=None,
        business_date=ON,
        record=record,
    )

    assert created
    assert uow.locked == ["cus_ok"]
    assert record.calls == ["claim", f"complete:{decision.outcome.value}"]
