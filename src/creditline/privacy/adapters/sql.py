"""SQL storage of customers and consents; personal fields are encrypted before they land.

`customers` keeps the name, resident ID number and phone only as AES-GCM tokens bound to
their column and customer id; `national_id_hash` (an HMAC) makes "is this person already
registered?" a unique-index look-up without storing the number in the clear.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from creditline.privacy.domain.consent import Consent, EndReason, Purpose
from creditline.privacy.domain.customer import Customer
from creditline.privacy.ports import FieldCipher
from creditline.shared.errors import ConflictError
from creditline.shared.ids import ConsentId, CustomerId
from creditline.shared.money import Currency, Money
from creditline.storage.metadata import metadata
from creditline.storage.types import UtcDateTime
from creditline.storage.uow import SqlAlchemyUnitOfWork

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name_enc", LargeBinary, nullable=False),
    Column("national_id_enc", LargeBinary, nullable=False),
    Column("phone_enc", LargeBinary, nullable=False),
    Column("national_id_hash", String(64), nullable=False, unique=True),
    Column("birth_date", Date, nullable=False),
    Column("declared_income_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("registration_key", String(255), unique=True),
)

consents = Table(
    "consents",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.customer_id"), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("notice_version", String(40), nullable=False),
    Column("granted_at", UtcDateTime(), nullable=False),
    Column("withdrawn_at", UtcDateTime()),
    Column("end_reason", String(16)),
    Index("ix_consents_customer_purpose", "customer_id", "purpose"),
)


class SqlCustomerRepository:
    def __init__(self, session: Session, cipher: FieldCipher) -> None:
        self._session = session
        self._cipher = cipher

    def add(self, customer: Customer) -> None:
        seal = self._cipher.encrypt
        cid = customer.customer_id
        try:
            with self._session.begin_nested():
                self._session.execute(
                    insert(customers).values(
                        customer_id=cid,
                        name_enc=seal(customer.name, context=f"customers.name:{cid}"),
                        national_id_enc=seal(
                            customer.national_id, context=f"customers.national_id:{cid}"
                        ),
                        phone_enc=seal(customer.phone, context=f"customers.phone:{cid}"),
                        national_id_hash=self._id_hash(customer.national_id),
                        birth_date=customer.birth_date,
                        declared_income_minor=customer.declared_annual_income.minor_units,
                        currency=customer.declared_annual_income.currency.value,
                        created_at=customer.created_at,
                        registration_key=customer.registration_key,
                    )
                )
        except IntegrityError as error:
            raise ConflictError(
                "a customer with this resident ID number or registration key already exists",
                code="customer_already_registered",
                field="national_id",
            ) from error

    def get(self, customer_id: CustomerId) -> Customer | None:
        return self._one(customers.c.customer_id == customer_id)

    def find_by_national_id(self, national_id: str) -> Customer | None:
        return self._one(customers.c.national_id_hash == self._id_hash(national_id))

    def find_by_registration_key(self, key: str) -> Customer | None:
        return self._one(customers.c.registration_key == key)

    def _id_hash(self, national_id: str) -> str:
        return self._cipher.lookup_hash("national_id", national_id)

    def _one(self, condition: object) -> Customer | None:
        row = self._session.execute(select(customers).where(condition)).one_or_none()  # type: ignore[arg-type]
        return None if row is None else self._to_customer(row)

    def _to_customer(self, row: Row[tuple[object, ...]]) -> Customer:
        m = row._mapping
        cid = str(m["customer_id"])
        opened = self._cipher.decrypt
        return Customer(
            customer_id=CustomerId(cid),
            name=opened(m["name_enc"], context=f"customers.name:{cid}"),
            national_id=opened(m["national_id_enc"], context=f"customers.national_id:{cid}"),
            birth_date=m["birth_date"],
            phone=opened(m["phone_enc"], context=f"customers.phone:{cid}"),
            declared_annual_income=Money(int(m["declared_income_minor"]), Currency(m["currency"])),
            created_at=m["created_at"],
            registration_key=m["registration_key"],
        )


class SqlConsentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, consent: Consent) -> None:
        self._session.execute(
            insert(consents).values(
                consent_id=consent.consent_id,
                customer_id=consent.customer_id,
                purpose=consent.purpose.value,
                notice_version=consent.notice_version,
                granted_at=consent.granted_at,
                withdrawn_at=consent.withdrawn_at,
                end_reason=consent.end_reason.value if consent.end_reason else None,
            )
        )

    def update(self, consent: Consent) -> None:
        self._session.execute(
            update(consents)
            .where(consents.c.consent_id == consent.consent_id)
            .values(
                withdrawn_at=consent.withdrawn_at,
                end_reason=consent.end_reason.value if consent.end_reason else None,
            )
        )

    def for_customer(self, customer_id: CustomerId) -> list[Consent]:
        rows = self._session.execute(
            select(consents)
            .where(consents.c.customer_id == customer_id)
            .order_by(consents.c.granted_at, consents.c.consent_id)
        ).all()
        return [
            Consent(
                consent_id=ConsentId(r.consent_id),
                customer_id=CustomerId(r.customer_id),
                purpose=Purpose(r.purpose),
                notice_version=r.notice_version,
                granted_at=r.granted_at,
                withdrawn_at=r.withdrawn_at,
                end_reason=EndReason(r.end_reason) if r.end_reason else None,
            )
            for r in rows
        ]


class SqlPrivacyUnitOfWork(SqlAlchemyUnitOfWork):
    customers: SqlCustomerRepository
    consents: SqlConsentRepository

    def __init__(self, session_factory: sessionmaker[Session], cipher: FieldCipher) -> None:
        super().__init__(session_factory)
        self._cipher = cipher

    def _on_enter(self) -> None:
        self.customers = SqlCustomerRepository(self.session, self._cipher)
        self.consents = SqlConsentRepository(self.session)
