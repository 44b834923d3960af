"""`POST /v1/events` over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

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
