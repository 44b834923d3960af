"""The privacy unit of work: the fake and the SQL adapter (SQLite, PostgreSQL) agree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from creditline.bootstrap import build_container
from creditline.privacy.domain.consent import Consent, EndReason, Purpose
from creditline.privacy.domain.customer import Customer
from creditline.privacy.ports import PrivacyUnitOfWork
from creditline.shared.errors import ConflictError
from creditline.shared.ids import ConsentId, CustomerId
from creditline.shared.money import Money
from tests.conftest import DATABASES, make_settings, migrated_database
from tests.fakes import FakePrivacyUnitOfWork

AT = datetime(2026, 1, 15, 8, 30, 12, 123456, tzinfo=UTC)


@pytest.fixture(params=["fake", *DATABASES])
def new_uow(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], PrivacyUnitOfWork]]:
    if request.param == "fake":
        shared = FakePrivacyUnitOfWork()
        yield lambda: shared
        return
    with migrated_database(request, request.param, tmp_path) as url:
        container = build_container(make_settings(url, tmp_path))
        yield container.privacy_uow
        container.close()


def a_customer(cid: str = "cus_1", national_id: str = "11010519491231002X") -> Customer:
    return Customer(
        customer_id=CustomerId(cid),
        name="张三",
        national_id=national_id,
        birth_date=date(1949, 12, 31),
        phone="13812345678",
        declared_annual_income=Money.yuan("120000.00"),
        created_at=AT,
        registration_key=f"key-{cid}",
    )


def test_a_stored_customer_reads_back_the_same(new_uow: Callable[[], PrivacyUnitOfWork]) -> None:
    with new_uow() as uow:
        uow.customers.add(a_customer())
        uow.commit()

    with new_uow() as uow:
        assert uow.customers.get(CustomerId("cus_1")) == a_customer()
        assert uow.customers.find_by_national_id("11010519491231002X") == a_customer()
        assert uow.customers.find_by_registration_key("key-cus_1") == a_customer()
        assert uow.customers.find_by_national_id("44030419900307123X") is None


def test_leaving_without_commit_keeps_nothing(new_uow: Callable[[], PrivacyUnitOfWork]) -> None:
    with new_uow() as uow:
        uow.customers.add(a_customer())

    with new_uow() as uow:
        assert uow.customers.get(CustomerId("cus_1")) is None


def test_the_same_national_id_twice_is_a_conflict(
    new_uow: Callable[[], PrivacyUnitOfWork],
) -> None:
    with new_uow() as uow:
        uow.customers.add(a_customer())
        uow.commit()

    with new_uow() as uow, pytest.raises(ConflictError):
        uow.customers.add(a_customer("cus_2"))


def test_consents_come_back_oldest_first_with_their_end(
    new_uow: Callable[[], PrivacyUnitOfWork],
) -> None:
    cid = CustomerId("cus_1")
    first = Consent(ConsentId("con_b"), cid, Purpose.MARKETING, "v1", AT)
    second = Consent(ConsentId("con_a"), cid, Purpose.CREDIT_ASSESSMENT, "v1", AT + timedelta(1))
    with new_uow() as uow:
        uow.customers.add(a_customer())
        uow.consents.add(second)
        uow.consents.add(first)
        uow.commit()

    with new_uow() as uow:
        uow.consents.update(first.withdraw(AT + timedelta(2), EndReason.WITHDRAWN))
        uow.commit()

    with new_uow() as uow:
        stored = uow.consents.for_customer(cid)
    assert [c.consent_id for c in stored] == ["con_b", "con_a"]
    assert stored[0].withdrawn_at == AT + timedelta(2)
    assert stored[0].end_reason is EndReason.WITHDRAWN
    assert stored[1].is_active
