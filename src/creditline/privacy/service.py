"""Use cases of the privacy capability: register a customer, grant and withdraw consent.

Registration is idempotent on the caller's key: the same key with the same data returns
the customer registered the first time; with other data it is a conflict. A person who is
already registered under another key is a conflict too (one person, one customer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from creditline.privacy.domain.consent import (
    Consent,
    EndReason,
    Purpose,
    parse_purpose,
    parse_purposes,
)
from creditline.privacy.domain.customer import Customer, validate_registration
from creditline.privacy.ports import PrivacyUnitOfWork
from creditline.shared.clock import Clock
from creditline.shared.errors import ConflictError, NotFoundError
from creditline.shared.ids import ConsentId, CustomerId, new_customer_id, new_id


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    name: str
    national_id: str
    phone: str
    declared_annual_income: str


def register_customer(
    uow: PrivacyUnitOfWork,
    clock: Clock,
    request: RegistrationRequest,
    *,
    today: date,
    registration_key: str | None = None,
) -> tuple[Customer, bool]:
    """The customer, and whether this call created it (False on an idempotent replay)."""
    registration = validate_registration(
        name=request.name,
        national_id=request.national_id,
        phone=request.phone,
        declared_annual_income=request.declared_annual_income,
        today=today,
    )
    with uow:
        if registration_key is not None:
            earlier = uow.customers.find_by_registration_key(registration_key)
            if earlier is not None:
                if not earlier.same_registration(registration):
                    raise ConflictError(
                        "this registration key was used for another registration",
                        code="idempotency_key_reused",
                    )
                return earlier, False
        if uow.customers.find_by_national_id(registration.national_id) is not None:
            raise ConflictError(
                "a customer with this resident ID number is already registered",
                code="customer_already_registered",
                field="national_id",
            )
        customer = Customer(
            customer_id=new_customer_id(),
            name=registration.name,
            national_id=registration.national_id,
            birth_date=registration.birth_date,
            phone=registration.phone,
            declared_annual_income=registration.declared_annual_income,
            created_at=clock.now(),
            registration_key=registration_key,
        )
        uow.customers.add(customer)
        uow.commit()
    return customer, True


def get_customer(uow: PrivacyUnitOfWork, customer_id: CustomerId) -> Customer:
    with uow:
        customer = uow.customers.get(customer_id)
    if customer is None:
        raise NotFoundError(f"no customer {customer_id}", code="customer_not_found")
    return customer


def list_consents(uow: PrivacyUnitOfWork, customer_id: CustomerId) -> list[Consent]:
    with uow:
        _require_customer(uow, customer_id)
        return uow.consents.for_customer(customer_id)


def grant_consents(
    uow: PrivacyUnitOfWork,
    clock: Clock,
    customer_id: CustomerId,
    purposes: list[str],
    *,
    notice_version: str,
) -> list[Consent]:
    """Active consents for `purposes` under `notice_version`, creating what is missing."""
    wanted = parse_purposes(purposes)
    now = clock.now()
    with uow:
        _require_customer(uow, customer_id)
        active = {c.purpose: c for c in uow.consents.for_customer(customer_id) if c.is_active}
        result: list[Consent] = []
        for purpose in wanted:
            current = active.get(purpose)
            if current is not None and current.notice_version == notice_version:
                result.append(current)
                continue
            if current is not None:
                uow.consents.update(current.withdraw(now, EndReason.SUPERSEDED))
            granted = Consent(
                ConsentId(new_id("con")), customer_id, purpose, notice_version, granted_at=now
            )
            uow.consents.add(granted)
            result.append(granted)
        uow.commit()
    return result


def withdraw_consent(
    uow: PrivacyUnitOfWork, clock: Clock, customer_id: CustomerId, purpose: str
) -> Consent:
    """End the active consent for a purpose; withdrawing again returns the ended record."""
    chosen = parse_purpose(purpose)
    with uow:
        _require_customer(uow, customer_id)
        history = [c for c in uow.consents.for_customer(customer_id) if c.purpose is chosen]
        if not history:
            raise NotFoundError(
                f"{customer_id} never consented to {chosen.value}", code="consent_not_found"
            )
        latest = history[-1]
        if not latest.is_active:
            return latest
        ended = latest.withdraw(clock.now())
        uow.consents.update(ended)
        uow.commit()
    return ended


def active_purposes(uow: PrivacyUnitOfWork, customer_id: CustomerId) -> frozenset[Purpose]:
    """The purposes the customer consents to now (what a consent check asks)."""
    with uow:
        return frozenset(c.purpose for c in uow.consents.for_customer(customer_id) if c.is_active)


def _require_customer(uow: PrivacyUnitOfWork, customer_id: CustomerId) -> None:
    if uow.customers.get(customer_id) is None:
        raise NotFoundError(f"no customer {customer_id}", code="customer_not_found")
