"""Registration and consent use cases, over fakes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from creditline.privacy import service
from creditline.privacy.domain.consent import EndReason, Purpose
from creditline.shared.clock import FixedClock
from creditline.shared.errors import ConflictError, InvalidInputError, NotFoundError
from creditline.shared.ids import CustomerId
from tests.fakes import FakePrivacyUnitOfWork

TODAY = date(2026, 1, 15)
ZHANG = service.RegistrationRequest("张三", "11010519491231002X", "13812345678", "120000.00")


@pytest.fixture
def uow() -> FakePrivacyUnitOfWork:
    return FakePrivacyUnitOfWork()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 1, 15, 2, tzinfo=UTC))


def test_registration_stores_the_customer_with_the_birth_date_from_the_id(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    customer, created = service.register_customer(uow, clock, ZHANG, today=TODAY)

    assert created
    assert uow.committed.customers[customer.customer_id].birth_date == date(1949, 12, 31)
    assert customer.declared_annual_income.minor_units == 12_000_000
    assert customer.age_on(TODAY) == 76


def test_registration_reports_every_bad_field_at_once(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    bad = service.RegistrationRequest("", "110105194912310021", "123", "12.345")

    with pytest.raises(InvalidInputError) as caught:
        service.register_customer(uow, clock, bad, today=TODAY)

    assert {i.field for i in caught.value.issues} == {
        "name",
        "national_id",
        "phone",
        "declared_annual_income",
    }
    assert uow.commits == 0


def test_a_birth_date_after_the_business_date_is_refused(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        service.register_customer(uow, clock, ZHANG, today=date(1949, 12, 30))

    assert caught.value.issues[0].code == "invalid_birth_date"


def test_the_same_person_cannot_register_twice(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    service.register_customer(uow, clock, ZHANG, today=TODAY, registration_key="a")
    other_phone = service.RegistrationRequest("张三", "11010519491231002x", "13900000000", "1.00")

    with pytest.raises(ConflictError) as caught:
        service.register_customer(uow, clock, other_phone, today=TODAY, registration_key="b")

    assert caught.value.code == "customer_already_registered"
    assert len(uow.committed.customers) == 1


def test_a_retry_with_the_same_key_returns_the_first_customer(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    first, _ = service.register_customer(uow, clock, ZHANG, today=TODAY, registration_key="k")

    again, created = service.register_customer(uow, clock, ZHANG, today=TODAY, registration_key="k")

    assert (again, created) == (first, False)


def test_the_same_key_with_other_data_is_a_conflict(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    service.register_customer(uow, clock, ZHANG, today=TODAY, registration_key="k")
    richer = service.RegistrationRequest("张三", "11010519491231002X", "13812345678", "999.00")

    with pytest.raises(ConflictError, match="registration key"):
        service.register_customer(uow, clock, richer, today=TODAY, registration_key="k")


def _registered(uow: FakePrivacyUnitOfWork, clock: FixedClock) -> CustomerId:
    customer, _ = service.register_customer(uow, clock, ZHANG, today=TODAY)
    return customer.customer_id


def test_granting_twice_under_the_same_notice_keeps_one_consent(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    cid = _registered(uow, clock)
    first = service.grant_consents(uow, clock, cid, ["marketing"], notice_version="v1")

    clock.advance(timedelta(hours=1))
    second = service.grant_consents(uow, clock, cid, ["marketing"], notice_version="v1")

    assert first == second
    assert len(service.list_consents(uow, cid)) == 1


def test_a_newer_notice_supersedes_the_old_consent(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    cid = _registered(uow, clock)
    service.grant_consents(uow, clock, cid, ["credit_assessment"], notice_version="v1")

    clock.advance(timedelta(days=1))
    service.grant_consents(uow, clock, cid, ["credit_assessment"], notice_version="v2")

    old, new = service.list_consents(uow, cid)
    assert (old.end_reason, old.withdrawn_at) == (EndReason.SUPERSEDED, clock.now())
    assert new.is_active
    assert new.notice_version == "v2"


def test_withdrawal_ends_only_that_purpose(uow: FakePrivacyUnitOfWork, clock: FixedClock) -> None:
    cid = _registered(uow, clock)
    service.grant_consents(uow, clock, cid, ["credit_assessment", "marketing"], notice_version="v1")

    ended = service.withdraw_consent(uow, clock, cid, "marketing")

    assert ended.end_reason is EndReason.WITHDRAWN
    assert service.active_purposes(uow, cid) == {Purpose.CREDIT_ASSESSMENT}


def test_withdrawing_twice_returns_the_ended_record(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    cid = _registered(uow, clock)
    service.grant_consents(uow, clock, cid, ["marketing"], notice_version="v1")
    first = service.withdraw_consent(uow, clock, cid, "marketing")

    clock.advance(timedelta(hours=1))

    assert service.withdraw_consent(uow, clock, cid, "marketing") == first


def test_withdrawing_a_purpose_never_granted_is_not_found(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    cid = _registered(uow, clock)

    with pytest.raises(NotFoundError):
        service.withdraw_consent(uow, clock, cid, "marketing")


def test_unknown_purposes_are_named_by_position(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    cid = _registered(uow, clock)

    with pytest.raises(InvalidInputError) as caught:
        service.grant_consents(uow, clock, cid, ["marketing", "spam"], notice_version="v1")

    assert [i.field for i in caught.value.issues] == ["purposes[1]"]


def test_consent_for_an_unknown_customer_is_not_found(
    uow: FakePrivacyUnitOfWork, clock: FixedClock
) -> None:
    with pytest.raises(NotFoundError):
        service.grant_consents(uow, clock, CustomerId("cus_x"), ["marketing"], notice_version="1")


def test_bureau_queries_and_financial_data_need_their_own_consent() -> None:
    assert {p for p in Purpose if p.needs_separate_consent} == {
        Purpose.CREDIT_BUREAU_QUERY,
        Purpose.SENSITIVE_FINANCIAL_DATA,
    }
