"""Fakes of the ports, for unit tests: they behave like the real adapters, including
"nothing is kept without `commit()`" (the contract tests hold them to it)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from creditline.privacy.domain.consent import Consent
from creditline.privacy.domain.customer import Customer
from creditline.shared.errors import ConflictError
from creditline.shared.ids import CustomerId


@dataclass
class _PrivacyState:
    customers: dict[str, Customer] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)


class FakeCustomerRepository:
    def __init__(self, state: _PrivacyState) -> None:
        self._state = state

    def add(self, customer: Customer) -> None:
        for existing in self._state.customers.values():
            same_key = (
                customer.registration_key is not None
                and existing.registration_key == customer.registration_key
            )
            if existing.national_id == customer.national_id or same_key:
                raise ConflictError("already registered", code="customer_already_registered")
        self._state.customers[customer.customer_id] = customer

    def get(self, customer_id: CustomerId) -> Customer | None:
        return self._state.customers.get(customer_id)

    def find_by_national_id(self, national_id: str) -> Customer | None:
        return next(
            (c for c in self._state.customers.values() if c.national_id == national_id), None
        )

    def find_by_registration_key(self, key: str) -> Customer | None:
        return next((c for c in self._state.customers.values() if c.registration_key == key), None)


class FakeConsentRepository:
    def __init__(self, state: _PrivacyState) -> None:
        self._state = state

    def add(self, consent: Consent) -> None:
        self._state.consents[consent.consent_id] = consent

    def update(self, consent: Consent) -> None:
        self._state.consents[consent.consent_id] = consent

    def for_customer(self, customer_id: CustomerId) -> list[Consent]:
        found = [c for c in self._state.consents.values() if c.customer_id == customer_id]
        return sorted(found, key=lambda c: (c.granted_at, c.consent_id))


class FakePrivacyUnitOfWork:
    """Works on a copy of the committed state; `commit()` publishes the copy."""

    customers: FakeCustomerRepository
    consents: FakeConsentRepository

    def __init__(self) -> None:
        self.committed = _PrivacyState()
        self._working: _PrivacyState | None = None
        self.commits = 0

    def __enter__(self) -> Self:
        self._working = copy.deepcopy(self.committed)
        self.customers = FakeCustomerRepository(self._working)
        self.consents = FakeConsentRepository(self._working)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._working = None

    def commit(self) -> None:
        if self._working is None:
            raise RuntimeError("commit outside a `with` block")
        self.committed = copy.deepcopy(self._working)
        self.commits += 1
