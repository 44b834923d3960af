"""`/v1/customers`: register a customer, read them back masked, manage consent per purpose."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from creditline.api.deps import ContainerDep, IdempotencyKeyDep
from creditline.privacy import service
from creditline.privacy.domain.consent import Consent
from creditline.privacy.domain.customer import Customer, parse_income
from creditline.privacy.domain.identity import parse_mobile, parse_name, parse_national_id
from creditline.shared.errors import FieldIssue
from creditline.shared.ids import CustomerId

router = APIRouter(prefix="/v1/customers", tags=["customers"])

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Chosen by the caller; a retry with the same key returns the first result.",
    ),
]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(examples=["张三"])
    national_id: StrictStr = Field(
        description="18-character resident identity number", examples=["11010519491231002X"]
    )
    phone: StrictStr = Field(description="mainland mobile number", examples=["13812345678"])
    declared_annual_income: StrictStr = Field(
        description="yuan, as a decimal string", examples=["120000.00"]
    )

    # The domain's own parsers run here too, so one response names every bad field at
    # once (a wrong JSON type in one field would otherwise hide the others' problems).
    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _checked(parse_name(value), value)

    @field_validator("national_id")
    @classmethod
    def _national_id(cls, value: str) -> str:
        return _checked(parse_national_id(value), value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return _checked(parse_mobile(value), value)

    @field_validator("declared_annual_income")
    @classmethod
    def _income(cls, value: str) -> str:
        return _checked(parse_income(value), value)


def _checked(parsed: object, value: str) -> str:
    if isinstance(parsed, FieldIssue):
        raise PydanticCustomError(parsed.code, parsed.message)
    return value


class ConsentOut(BaseModel):
    consent_id: str
    purpose: str
    notice_version: str
    granted_at: datetime
    withdrawn_at: datetime | None
    end_reason: str | None
    active: bool

    @classmethod
    def of(cls, consent: Consent) -> ConsentOut:
        return cls(
            consent_id=consent.consent_id,
            purpose=consent.purpose.value,
            notice_version=consent.notice_version,
            granted_at=consent.granted_at,
            withdrawn_at=consent.withdrawn_at,
            end_reason=consent.end_reason.value if consent.end_reason else None,
            active=consent.is_active,
        )


class CustomerOut(BaseModel):
    customer_id: str
    name: str = Field(description="masked")
    national_id: str = Field(description="masked: region code and last four characters")
    phone: str = Field(description="masked: first three and last four digits")
    birth_date: date
    age: int = Field(description="whole years on the current business date")
    declared_annual_income: str
    currency: str
    created_at: datetime
    consents: list[ConsentOut]

    @classmethod
    def of(cls, customer: Customer, today: date, consents: list[Consent]) -> CustomerOut:
        return cls(
            customer_id=customer.customer_id,
            name=customer.masked_name,
            national_id=customer.masked_national_id,
            phone=customer.masked_phone,
            birth_date=customer.birth_date,
            age=customer.age_on(today),
            declared_annual_income=customer.declared_annual_income.to_str(),
            currency=customer.declared_annual_income.currency.value,
            created_at=customer.created_at,
            consents=[ConsentOut.of(c) for c in consents if c.is_active],
        )


class ConsentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purposes: list[StrictStr] = Field(
        examples=[["credit_assessment", "credit_bureau_query"]],
        description="credit_assessment, credit_bureau_query, sensitive_financial_data, "
        "share_with_funders, marketing",
    )
    notice_version: StrictStr | None = Field(
        None, description="privacy notice the customer saw; default: the current one"
    )


class ConsentsOut(BaseModel):
    customer_id: str
    consents: list[ConsentOut]


@router.post("", status_code=201, response_model=CustomerOut)
def register_customer(
    body: CustomerIn,
    container: ContainerDep,
    key: IdempotencyKeyDep,
    response: Response,
    _header: IdempotencyHeader = None,
) -> CustomerOut:
    today = container.business_date()
    customer, _created = service.register_customer(
        container.privacy_uow(),
        container.clock,
        service.RegistrationRequest(
            body.name, body.national_id, body.phone, body.declared_annual_income
        ),
        today=today,
        registration_key=key,
    )
    response.headers["Location"] = f"/v1/customers/{customer.customer_id}"
    return CustomerOut.of(customer, today, [])


@router.get("/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: str, container: ContainerDep) -> CustomerOut:
    uow = container.privacy_uow()
    customer = service.get_customer(uow, CustomerId(customer_id))
    consents = service.list_consents(uow, customer.customer_id)
    return CustomerOut.of(customer, container.business_date(), consents)


@router.post("/{customer_id}/consents", status_code=201, response_model=ConsentsOut)
def grant_consents(
    customer_id: str,
    body: ConsentsIn,
    container: ContainerDep,
    _header: IdempotencyHeader = None,
) -> ConsentsOut:
    granted = service.grant_consents(
        container.privacy_uow(),
        container.clock,
        CustomerId(customer_id),
        list(body.purposes),
        notice_version=body.notice_version or container.settings.notice_version,
    )
    return ConsentsOut(customer_id=customer_id, consents=[ConsentOut.of(c) for c in granted])


@router.get("/{customer_id}/consents", response_model=ConsentsOut)
def list_consents(customer_id: str, container: ContainerDep) -> ConsentsOut:
    history = service.list_consents(container.privacy_uow(), CustomerId(customer_id))
    return ConsentsOut(customer_id=customer_id, consents=[ConsentOut.of(c) for c in history])


@router.delete("/{customer_id}/consents/{purpose}", response_model=ConsentOut)
def withdraw_consent(customer_id: str, purpose: str, container: ContainerDep) -> ConsentOut:
    ended = service.withdraw_consent(
        container.privacy_uow(), container.clock, CustomerId(customer_id), purpose
    )
    return ConsentOut.of(ended)
