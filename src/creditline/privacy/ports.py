"""What the privacy capability needs from outside: storage and a field cipher."""

from __future__ import annotations

from typing import Protocol

from creditline.privacy.domain.consent import Consent
from creditline.privacy.domain.customer import Customer
from creditline.shared.ids import CustomerId
from creditline.shared.uow import UnitOfWork


class CustomerRepository(Protocol):
    def add(self, customer: Customer) -> None:
        """Store a new customer; `ConflictError` if the same person is registered."""
        ...

    def get(self, customer_id: CustomerId) -> Customer | None: ...

    def find_by_national_id(self, national_id: str) -> Customer | None: ...

    def find_by_registration_key(self, key: str) -> Customer | None: ...


class ConsentRepository(Protocol):
    def add(self, consent: Consent) -> None: ...

    def update(self, consent: Consent) -> None:
        """Record the end of a consent (its only change)."""
        ...

    def for_customer(self, customer_id: CustomerId) -> list[Consent]:
        """Every consent record of the customer, oldest first."""
        ...


class PrivacyUnitOfWork(UnitOfWork, Protocol):
    # Read-only properties, so that an implementation may hold a more specific repository.
    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def consents(self) -> ConsentRepository: ...


class FieldCipher(Protocol):
    """Authenticated encryption of one field, bound to its context (table, column, row)."""

    def encrypt(self, plaintext: str, *, context: str) -> bytes: ...

    def decrypt(self, token: bytes, *, context: str) -> str: ...

    def lookup_hash(self, kind: str, value: str) -> str:
        """A keyed, deterministic digest for equality look-ups without the plaintext."""
        ...
