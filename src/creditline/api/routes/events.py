"""`POST /v1/events`: take in a batch of behaviour events.

Each event is validated on its own and stored exactly once (by `event_id`); the response
counts the accepted, duplicate and rejected events and names each rejected one's index,
field and reason. A batch that is not a JSON object with an `events` list of objects is a
422 problem; a batch with some bad events is a 200 whose `rejected` list says which.
Events are idempotent by their own ids, so a retried batch is harmless even without an
`Idempotency-Key` (with one, the middleware replays the first response verbatim).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from creditline.api.deps import ContainerDep
from creditline.data.domain.ingest import IngestReport
from creditline.data.service import ingest_batch

router = APIRouter(prefix="/v1/events", tags=["events"])
MAX_BATCH = 10_000


class EventBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Behaviour events in the flat schema of docs/events.md",
        examples=[
            [
                {
                    "event_id": "pay-20260115-0001",
                    "customer_id": "cus_1",
                    "event_type": "payment",
                    "occurred_at": "2026-01-15T10:00:00+08:00",
                    "source": "alipay",
                    "amount_minor": 3550,
                    "category": "dining",
                    "channel": "qr_code",
                }
            ]
        ],
    )


class RejectedOut(BaseModel):
    index: int
    event_id: str | None
    field: str
    code: str
    reason: str


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    rejected_count: int
    rejected: list[RejectedOut]

    @classmethod
    def of(cls, report: IngestReport) -> IngestOut:
        return cls(
            accepted=report.accepted,
            duplicates=report.duplicates,
            rejected_count=len(report.rejected),
            rejected=[
                RejectedOut(
                    index=r.index, event_id=r.event_id, field=r.field, code=r.code, reason=r.reason
                )
                for r in report.rejected
            ],
        )


@router.post("", response_model=IngestOut)
def post_events(body: EventBatchIn, container: ContainerDep) -> IngestOut:
    """Store a batch of events; every event is counted as accepted, duplicate or rejected.

    Newly stored events also update the online feature state, so the next decision for
    the customer sees them.
    """
    return IngestOut.of(
        ingest_batch(container.event_store(), body.events, on_stored=container.record_features)
    )
