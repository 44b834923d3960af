"""`POST /v1/events` over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def payment(n: int, **change: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": f"evt-{n}",
        "customer_id": "cus-1",
        "event_type": "payment",
        "occurred_at": f"2026-01-15T10:{n:02d}:00+08:00",
        "source": "alipay",
        "amount_minor": 3_550,
        "category": "dining",
    }
    event.update(change)
    return event


def test_a_batch_is_counted_accepted_duplicate_and_rejected(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [payment(1)]})
    batch = [payment(1), payment(2), payment(3, amount_minor=-1), payment(4, colour="red")]

    response = client.post("/v1/events", json={"events": batch})

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected_count"]) == (1, 1, 2)
    assert [(r["index"], r["event_id"], r["field"], r["code"]) for r in body["rejected"]] == [
        (2, "evt-3", "amount_minor", "out_of_range"),
        (3, "evt-4", "colour", "unknown_field"),
    ]


def test_an_instant_outside_the_years_1_to_9999_in_utc_is_rejected_not_a_crash(
    client: TestClient,
) -> None:
    # Year 1 at +01:00 is year 0 in UTC, and 9999-12-31 at -01:00 is year 10000.
    batch = [
        payment(1, occurred_at="0001-01-01T00:30:00+01:00"),
        payment(2, occurred_at="9999-12-31T23:30:00-01:00"),
        payment(3, occurred_at="0001-01-01T02:00:00+01:00"),  # still year 1 in UTC
    ]

    response = client.post("/v1/events", json={"events": batch})

    assert response.status_code == 200
    body = response.json()
    assert [(r["index"], r["field"], r["code"]) for r in body["rejected"]] == [
        (0, "occurred_at", "invalid_type"),
        (1, "occurred_at", "invalid_type"),
    ]
    assert body["accepted"] == 1


def test_an_id_reused_for_other_content_is_a_named_conflict(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [payment(1)]})

    response = client.post("/v1/events", json={"events": [payment(1, amount_minor=1)]})

    assert response.json()["rejected"][0]["code"] == "conflict"


def test_a_body_without_an_events_list_is_a_problem(client: TestClient) -> None:
    bodies: list[object] = [{"events": []}, {"events": "x"}, [payment(1)], {"events": [1, 2]}]
    for body in bodies:
        response = client.post("/v1/events", json=body)

        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(
    client: TestClient,
) -> None:
    headers = {"Idempotency-Key": "batch-2026-01-15-1"}
    first = client.post("/v1/events", json={"events": [payment(1)]}, headers=headers)

    again = client.post("/v1/events", json={"events": [payment(1)]}, headers=headers)

    assert first.json()["accepted"] == 1
    assert again.json() == first.json()


def _expected_rejected(body: bytes) -> list[dict[str, object]]:
    """What each event of `body` is refused for, computed without the route: FastAPI's
    own JSON parser (`from_json`) and `parse_event` on each event alone."""
    from pydantic_core import from_json

    from creditline.data.domain.events import parse_event
    from creditline.shared.errors import InvalidInputError

    expected: list[dict[str, object]] = []
    for index, raw in enumerate(from_json(body)["events"]):
        try:
            parse_event(raw)
        except InvalidInputError as error:
            event_id = raw.get("event_id")
            expected.append(
                {
                    "index": index,
                    "event_id": event_id if isinstance(event_id, str) else None,
                    "field": error.issues[0].field,
                    "code": error.issues[0].code,
                    "reason": "; ".join(f"{i.field}: {i.message}" for i in error.issues),
                }
            )
    return expected


def _body_of(*changes: str) -> bytes:
    """A batch body: a good payment, then one payment per change (raw JSON members)."""
    envelope = (
        '"customer_id": "cus-1", "event_type": "payment", "source": "alipay",'
        ' "occurred_at": "2026-01-15T10:00:00+08:00", "category": "dining"'
    )
    events = [
        f'{{"event_id": "evt-{n}", {envelope}, {change}}}'
        for n, change in enumerate(['"amount_minor": 3550', *changes])
    ]
    return ('{"events": [' + ", ".join(events) + "]}").encode()


@pytest.mark.parametrize(
    "changes",
    [
        # Beyond 64 bits: some JSON parsers read these as floats (and lose digits).
        ['"amount_minor": 3550, "schema_version": 18446744073709551617'],
        ['"amount_minor": -9223372036854775809', '"amount_minor": 18446744073709551616'],
        # Not JSON to every parser: FastAPI's reads them as floats.
        ['"amount_minor": NaN', '"amount_minor": 1e400'],
        ['"amount_minor": 12.5', '"amount_minor": 3550, "channel": ["qr_code"]'],
    ],
)
def test_numbers_json_parsers_read_differently_are_judged_as_written(
    client: TestClient, changes: list[str]
) -> None:
    body = _body_of(*changes)

    response = client.post("/v1/events", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == _expected_rejected(body)
    assert [r["index"] for r in response.json()["rejected"]] == list(range(1, len(changes) + 1))


def test_a_body_nested_deeper_than_fastapi_parses_is_the_same_problem(
    client: TestClient,
) -> None:
    from pydantic_core import from_json

    deep = b'{"events": [{"event_id": ' + b"[" * 300 + b"]" * 300 + b"}]}"
    with pytest.raises(ValueError, match="recursion"):
        from_json(deep)  # FastAPI's parser refuses it (the premise of this test)

    headers = {"content-type": "application/json"}

    response = client.post("/v1/events", content=deep, headers=headers)

    broken = client.post("/v1/events", content=b'{"events": [', headers=headers)
    assert response.status_code == broken.status_code == 422
    assert response.json()["code"] == broken.json()["code"]
    assert response.json()["errors"][0]["code"] == broken.json()["errors"][0]["code"]


def test_the_answer_is_the_ingest_out_model_in_json(client: TestClient) -> None:
    from creditline.api.routes.events import IngestOut
    from creditline.data.domain.ingest import IngestReport, Rejection

    batch = [
        payment(1),
        payment(2, amount_minor=-1),
        payment(3, event_id="évt-3"),
        payment(4, source="ali\u001fpay\n"),
        payment(5, colour="紅"),
    ]

    response = client.post("/v1/events", json={"events": batch})

    body = response.json()
    model = IngestOut.of(
        IngestReport(
            body["accepted"],
            body["duplicates"],
            tuple(
                Rejection(r["index"], r["field"], r["code"], r["reason"], r["event_id"])
                for r in body["rejected"]
            ),
        )
    )
    assert response.content == model.model_dump_json().encode()
    assert response.headers["content-type"] == "application/json"
    assert body["rejected"] == _expected_rejected(response.request.content)
