"""A customer: the person behind an opaque customer id, as they registered.

Registration validates every field at once and reports every bad one, so a caller can fix
them in one go. The same person (the same resident ID number) can register only once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from creditline.privacy.domain.identity import (
    mask_name,
    mask_national_id,
    mask_phone,
    parse_mobile,
    parse_name,
    parse_national_id,
)
from creditline.shared.clock import age_on
from creditline.shared.errors import FieldIssue, InvalidInputError
from creditline.shared.ids import CustomerId
from creditline.shared.money import Currency, Money, MoneyFormatError

#: A declared income above this is a typing mistake, not a customer (¥100 million a year).
MAX_DECLARED_INCOME = Money(10_000_000_000, Currency.CNY)


@dataclass(frozen=True, slots=True)
class Registration:
    """Validated registration data, ready to store."""

    name: str
    national_id: str
    birth_date: date
    phone: str
    declared_annual_income: Money


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: CustomerId
    name: str
    national_id: str
    birth_date: date
    phone: str
    declared_annual_income: Money
    created_at: datetime
    registration_key: str | None = None

    def age_on(self, on: date) -> int:
        return age_on(self.birth_date, on)

    @property
    def masked_national_id(self) -> str:
        return mask_national_id(self.national_id)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    def same_registration(self, registration: Registration) -> bool:
        return (
            self.name == registration.name
            and self.national_id == registration.national_id
            and self.phone == registration.phone
            and self.declared_annual_income == registration.declared_annual_income
        )


def validate_registration(
    *, name: str, national_id: str, phone: str, declared_annual_income: str, today: date
) -> Registration:
    """Check every field; raise `InvalidInputError` listing each one that is wrong."""
    issues: list[FieldIssue] = []
    parsed_name = parse_name(name)
    parsed_id = parse_national_id(national_id)
    parsed_phone = parse_mobile(phone)
    income = parse_income(declared_annual_income)
    for parsed in (parsed_name, parsed_id, parsed_phone, income):
        if isinstance(parsed, FieldIssue):
            issues.append(parsed)
    if not isinstance(parsed_id, FieldIssue) and parsed_id[1] > today:
        issues.append(
            FieldIssue("national_id", "invalid_birth_date", "the birth date is in the future")
        )
    if issues:
        raise InvalidInputError(issues)
    assert not isinstance(parsed_name, FieldIssue)
    assert not isinstance(parsed_id, FieldIssue)
    assert not isinstance(parsed_phone, FieldIssue)
    assert not isinstance(income, FieldIssue)
    return Registration(parsed_name, parsed_id[0], parsed_id[1], parsed_phone, income)


def parse_income(text: str, field: str = "declared_annual_income") -> Money | FieldIssue:
    try:
        income = Money.parse(text, Currency.CNY)
    except MoneyFormatError as error:
        return FieldIssue(
            field, "invalid_amount", f'{error}; use a decimal string like "120000.00"'
        )
    if income.is_negative:
        return FieldIssue(field, "negative_amount", "the income must not be negative")
    if income > MAX_DECLARED_INCOME:
        limit = MAX_DECLARED_INCOME.amount.quantize(Decimal(1))
        return FieldIssue(field, "amount_too_large", f"the income must be at most {limit} yuan")
    return income
