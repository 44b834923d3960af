"""`/v1/applications` and `/v1/reviews`: credit decisions and the manual review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from creditline.api.deps import (
    ContainerDep,
    container_of,
    idempotency_key_header,
    idempotency_key_of,
    keyed_request_of,
)
from creditline.api.hot import hot
from creditline.api.idempotent import respond_blocking, transaction_record
from creditline.api.responses import json_model
from creditline.decisioning import service
from creditline.decisioning.domain.decision import Decision
from creditline.decisioning.domain.pipeline import Outcome
from creditline.decisioning.domain.reasons import Reason
from creditline.shared.errors import FieldIssue, InvalidInputError
from creditline.shared.ids import new_id
from creditline.shared.money import Currency, Money, MoneyFormatError
from creditline.storage.idempotency import record_in_transaction

router = APIRouter(tags=["decisions"])

# A decision keeps its Idempotency-Key record in its own transaction (one connection, the
# claim and the stored response commit with the decision): see `storage.idempotency`.
APPLICATIONS = "/v1/applications"
record_in_transaction("POST", APPLICATIONS)


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: StrictStr
    requested_limit: StrictStr | None = Field(
        None, description="yuan, a decimal string; the offer is never above it"
    )


class ReasonOut(BaseModel):
    code: str
    text: str
    text_zh: str
    source: str

    @classmethod
    def of(cls, reason: Reason) -> ReasonOut:
        return cls(
            code=reason.code, text=reason.text_en, text_zh=reason.text_zh, source=reason.source
        )


class ApplicationOut(BaseModel):
    application_id: str
    customer_id: str
    decision: str
    credit_line_id: str | None
    limit: str
    daily_rate: str | None
    apr: str | None = Field(description="annualised rate by the IRR method (PBoC [2021] No. 3)")
    apr_simple: str | None = Field(description="daily rate × 365, simple interest (单利)")
    score: int | None
    score_tier: str | None
    reasons: list[ReasonOut]
    policy_version: str
    model_version: str | None
    decided_at: datetime

    @classmethod
    def of(cls, decision: Decision) -> ApplicationOut:
        draft = decision.draft
        return cls(
            application_id=decision.application_id,
            customer_id=decision.customer_id,
            decision=decision.outcome.value,
            credit_line_id=decision.credit_line_id,
            limit=decision.limit.to_str(),
            daily_rate=_text(draft.daily_rate),
            apr=_text(draft.apr),
            apr_simple=_text(draft.apr_simple),
            score=draft.score.score if draft.score else None,
            score_tier=draft.score.tier if draft.score else None,
            reasons=[ReasonOut.of(r) for r in draft.reasons],
            policy_version=draft.policy_version,
            model_version=draft.model_version,
            decided_at=decision.decided_at,
        )


class RuleHitOut(BaseModel):
    table: str
    rule_id: str
    code: str
    outcome: str


class ReviewOut(BaseModel):
    status: str
    decision: str | None
    limit: str | None
    note: str | None
    reviewer: str | None
    reviewed_at: datetime | None


class ApplicationDetailOut(ApplicationOut):
    automated_decision: str
    automated_limit: str
    trace: list[RuleHitOut]
    fired_rows: list[tuple[str, str]]
    notes: list[str]
    inputs_fingerprint: str
    review: ReviewOut | None

    @classmethod
    def of(cls, decision: Decision) -> ApplicationDetailOut:
        draft = decision.draft
        review = decision.review
        return cls(
            **ApplicationOut.of(decision).model_dump(),
            automated_decision=draft.outcome.value,
            automated_limit=draft.limit.to_str(),
            trace=[
                RuleHitOut(table=h.table, rule_id=h.rule_id, code=h.code, outcome=h.outcome)
                for h in draft.trace
            ],
            fired_rows=list(draft.fired_rows),
            notes=list(draft.notes),
            inputs_fingerprint=draft.inputs_fingerprint,
            review=None
            if review is None
            else ReviewOut(
                status=review.status.value,
                decision=review.decision.value if review.decision else None,
                limit=review.limit.to_str() if review.limit else None,
                note=review.note,
                reviewer=review.reviewer,
                reviewed_at=review.reviewed_at,
            ),
        )


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approved", "declined"]
    limit: StrictStr | None = Field(None, description="yuan; at most the prepared offer")
    note: StrictStr = Field(min_length=1, max_length=2000)
    reviewer: StrictStr = Field(min_length=1, max_length=128)


@router.post(
    APPLICATIONS,
    status_code=201,
    response_model=ApplicationOut,
    openapi_extra=idempotency_key_header(
        "Chosen by the caller; a retry returns the first decision. Also the application id."
    ),
)
@hot
async def apply(body: ApplicationIn, request: Request) -> Response:
    """Decide an application; an approval opens the credit line in the same transaction."""
    # Read from the request, not as dependencies: see `api.deps`.
    container = container_of(request)
    key = idempotency_key_of(request)
    keyed = keyed_request_of(request)
    wiring = container.decisioning()
    uow = wiring.uow()
    record = transaction_record(container, keyed, request, uow.connection, _decided)
    requested_limit = _money(body.requested_limit, "requested_limit")

    def decide() -> Decision:
        decision, _ = service.apply_for_credit(
            uow,
            container.clock,
            policies=wiring.policies,
            scorer=wiring.scorer,
            apr_of=wiring.apr_of,
            application_id=key or new_id("app"),
            customer_id=body.customer_id,
            requested_limit=requested_limit,
            record=record,
        )
        return decision

    return await respond_blocking(container, record, decide, _decided)


def _decided(decision: Decision) -> Response:
    return json_model(
        ApplicationOut.of(decision),
        status_code=201,
        headers={"Location": f"{APPLICATIONS}/{decision.application_id}"},
    )


@router.get("/v1/applications/{application_id}", response_model=ApplicationDetailOut)
def get_application(application_id: str, container: ContainerDep) -> Response:
    """The stored decision with its full rule trace and any review."""
    decision = service.get_decision(container.decisioning().uow(), application_id)
    return json_model(ApplicationDetailOut.of(decision))


@router.get("/v1/reviews", response_model=list[ApplicationDetailOut])
def list_reviews(
    container: ContainerDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[ApplicationDetailOut]:
    """Applications waiting for a person, oldest first."""
    waiting = service.pending_reviews(container.decisioning().uow(), limit)
    return [ApplicationDetailOut.of(d) for d in waiting]


@router.post("/v1/reviews/{application_id}", response_model=ApplicationDetailOut)
def resolve_review(
    application_id: str, body: ReviewIn, container: ContainerDep
) -> ApplicationDetailOut:
    """A person approves (optionally at a lower limit) or declines; both parts are kept."""
    resolved = service.resolve_review(
        container.decisioning().uow(),
        container.clock,
        application_id=application_id,
        decision=Outcome(body.decision),
        limit=_money(body.limit, "limit"),
        note=body.note,
        reviewer=body.reviewer,
        business_date=container.business_date(),
    )
    return ApplicationDetailOut.of(resolved)


def _money(text: str | None, field: str) -> Money | None:
    if text is None:
        return None
    try:
        amount = Money.parse(text, Currency.CNY)
    except MoneyFormatError as error:
        raise InvalidInputError(FieldIssue(field, "invalid_amount", str(error))) from error
    if not amount.is_positive:
        raise InvalidInputError(FieldIssue(field, "not_positive", "the amount must be positive"))
    return amount


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)
