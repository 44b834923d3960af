"""Consent per purpose, as PIPL Arts 14–17 and 29 require.

A consent records who agreed, to which purpose, under which version of the privacy notice,
when, and when it was withdrawn. Each purpose is consented to on its own; sensitive
personal data (financial accounts) and credit-bureau queries need their own, separate
consent (PIPL Art. 29; 征信业管理条例 Art. 14), which is why they are purposes of their own.
At most one consent per purpose is active at a time: granting again under the same notice
changes nothing, under a newer notice it supersedes the old record; withdrawing ends it.
History is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from creditline.shared.errors import FieldIssue, InvalidInputError
from creditline.shared.ids import ConsentId, CustomerId


class Purpose(StrEnum):
    CREDIT_ASSESSMENT = "credit_assessment"
    CREDIT_BUREAU_QUERY = "credit_bureau_query"
    SENSITIVE_FINANCIAL_DATA = "sensitive_financial_data"
    SHARE_WITH_FUNDERS = "share_with_funders"
    MARKETING = "marketing"

    @property
    def needs_separate_consent(self) -> bool:
        return self in {Purpose.CREDIT_BUREAU_QUERY, Purpose.SENSITIVE_FINANCIAL_DATA}


class EndReason(StrEnum):
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Consent:
    consent_id: ConsentId
    customer_id: CustomerId
    purpose: Purpose
    notice_version: str
    granted_at: datetime
    withdrawn_at: datetime | None = None
    end_reason: EndReason | None = None

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None

    def withdraw(self, at: datetime, reason: EndReason = EndReason.WITHDRAWN) -> Consent:
        if not self.is_active:
            return self
        return replace(self, withdrawn_at=at, end_reason=reason)


def parse_purposes(values: list[str], *, field: str = "purposes") -> list[Purpose]:
    """Known purposes in the order given, each once; unknown ones are named in the error."""
    if not values:
        raise InvalidInputError(FieldIssue(field, "required", "name at least one purpose"))
    issues = [
        FieldIssue(
            f"{field}[{index}]",
            "unknown_purpose",
            f"{value!r} is not a purpose; choose from {', '.join(p.value for p in Purpose)}",
        )
        for index, value in enumerate(values)
        if value not in Purpose.__members__.values()
    ]
    if issues:
        raise InvalidInputError(issues)
    return list(dict.fromkeys(Purpose(value) for value in values))


def parse_purpose(value: str, *, field: str = "purpose") -> Purpose:
    if value not in Purpose.__members__.values():
        raise InvalidInputError(
            FieldIssue(field, "unknown_purpose", f"{value!r} is not a consent purpose")
        )
    return Purpose(value)
