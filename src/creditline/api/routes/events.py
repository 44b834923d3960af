"""`POST /v1/events`: take in a batch of behaviour events.

Each event is validated on its own and stored exactly once (by `event_id`); the response
counts the accepted, duplicate and rejected events and names each rejected one's index,
field and reason. A batch that is not a JSON object with an `events` list of objects is a
422 problem; a batch with some bad events is a 200 whose `rejected` list says which.
Events are idempotent by their own ids, so a retried batch is harmless even without an
`Idempotency-Key` (with one, the middleware replays the first response verbatim).

The body is parsed by orjson and checked for shape by hand. orjson reads a number beyond
64 bits as a float, and nests deeper than `pydantic_core.from_json` (FastAPI's parser)
allows, so its result is used only when every event is a flat object of text, whole
numbers, booleans and nulls, which both parsers read alike; any other body is parsed
again by `from_json` and treated exactly as before, and only a body of the wrong shape
goes through the `EventBatchIn` model, so that its problem names the same fields. The
events themselves are validated as one batch (`creditline.data.columnar`), never one
pydantic model per event, and the answer is written by orjson from the report (the same
bytes the `IngestOut` model gives, without a model per rejected event).
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

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


async def _body(request: Request) -> bytes:
    return await request.body()


#: The types of every value in a body that orjson and `from_json` read alike.
_FLAT = frozenset({str, int, bool, type(None)})


def _events(body: bytes) -> list[dict[str, Any]]:
    """The `events` list of a batch body, or the same 422 problem FastAPI would give."""
    plain = _plain_events(body)
    if plain is not None:
        return plain
    try:
        parsed = from_json(body)
    except ValueError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", _offset(body, str(error))),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(error)},
                }
            ]
        ) from error
    if type(parsed) is dict and parsed.keys() == {"events"}:
        events = parsed["events"]
        if (
            type(events) is list
            and 1 <= len(events) <= MAX_BATCH
            and all(type(event) is dict for event in events)
        ):
            return events
    try:
        # from_attributes: the mode FastAPI validates a body in, so the codes are the same.
        return EventBatchIn.model_validate(parsed, from_attributes=True).events
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
        ) from error


def _plain_events(body: bytes) -> list[dict[str, Any]] | None:
    """The events of a body of the usual shape whose every value is flat (text, a whole
    number within 64 bits, a boolean or null), parsed by orjson; None for any other body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(parsed) is not dict or parsed.keys() != {"events"}:
        return None
    events = parsed["events"]
    if type(events) is not list or not 1 <= len(events) <= MAX_BATCH:
        return None
    if not all(type(event) is dict for event in events):
        return None
    if not set(map(type, chain.from_iterable(map(dict.values, events)))) <= _FLAT:
        return None
    return events


def _report_json(report: IngestReport) -> bytes:
    """The `IngestOut` of a report as JSON (the bytes FastAPI's serializer writes)."""
    return orjson.dumps(
        {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "rejected_count": len(report.rejected),
            "rejected": [
                {
                    "index": r.index,
                    "event_id": r.event_id,
                    "field": r.field,
                    "code": r.code,
                    "reason": r.reason,
                }
                for r in report.rejected
            ],
        }
    )


def _offset(body: bytes, message: str) -> int:
    """The character offset of a JSON error (from "... at line L column C")."""
    found = re.search(r"line (\d+) column (\d+)", message)
    if found is None:
        return 0
    line, column = int(found.group(1)), int(found.group(2))
    lines = body.decode("utf-8", errors="replace").split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


RawBody = Annotated[bytes, Depends(_body)]


@router.post(
    "",
    response_model=IngestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatchIn.model_json_schema()}},
        }
    },
)
def post_events(body: RawBody, container: ContainerDep) -> Response:
    """Store a batch of events; every event is counted as accepted, duplicate or rejected.

    Newly stored events also update the online feature state, so the next decision for
    the customer sees them: handed over as the Arrow table of the stored rows, which the
    store folds as columns (no event object is built per row on this path).
    """
    stored = ingest_batch(
        container.event_store(), _events(body), on_stored_table=container.record_feature_table
    )
    return Response(_report_json(stored), media_type="application/json")
