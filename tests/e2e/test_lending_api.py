"""Lending through HTTP: draws, quotes, reads, repayments, payoff, EOD, and every bad input."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from creditline.api.routes.lending import lending_uow
from creditline.bootstrap import Container
from creditline.lending import service
from creditline.shared.money import Money
from creditline.storage.tables import idempotency_keys

DRAW = {"amount": "1000.00", "term_months": 12, "repayment_method": "equal_installment"}


@pytest.fixture
def line(client: TestClient) -> str:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    service.open_credit_line(
        lending_uow(container),
        line_id="CL1",
        customer_id="cus_1",
        limit=Money.yuan(10_000),
        daily_rate=Decimal("0.0003"),
        on=container.business_date(),
    )
    return "CL1"


def post_draw(client: TestClient, body: dict[str, Any] | None = None, key: str = "d1") -> Any:
    return client.post(
        "/v1/credit-lines/CL1/draws", json=body or DRAW, headers={"Idempotency-Key": key}
    )


def problem(response: Any) -> tuple[int, str, dict[str, str]]:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    return (
        response.status_code,
        body["code"],
        {e["field"]: e["code"] for e in body.get("errors", [])},
    )


def test_a_draw_returns_the_loan_with_its_schedule_and_prices(
    client: TestClient, line: str
) -> None:
    response = post_draw(client)

    assert response.status_code == 201
    loan = response.json()
    assert response.headers["location"] == f"/v1/loans/{loan['loan_id']}"
    assert len(loan["schedule"]) == 12
    assert sum(Decimal(i["interest"]) for i in loan["schedule"]) == Decimal("59.48")
    assert loan["pricing"]["daily_rate"] == "0.0003"
    assert loan["pricing"]["apr_simple"] == "0.1095"
    assert loan["pricing"]["apr"] == "0.108034"
    assert loan["pricing"]["day_count"] == "thirty_360"
    line_after = client.get("/v1/credit-lines/CL1").json()
    assert (line_after["available"], line_after["outstanding"]) == ("9000.00", "1000.00")


def test_a_quote_previews_the_same_schedule_without_lending(client: TestClient, line: str) -> None:
    quote = client.get(
        "/v1/credit-lines/CL1/quote",
        params={"amount": "1000.00", "term_months": 12, "repayment_method": "equal_installment"},
    ).json()
    loan = post_draw(client).json()

    assert quote["total_interest"] == "59.48"
    assert quote["total_repayable"] == "1059.48"
    assert [(i["principal"], i["interest"]) for i in quote["schedule"]] == [
        (i["principal"], i["interest"]) for i in loan["schedule"]
    ]


def test_a_retried_draw_is_replayed(client: TestClient, line: str) -> None:
    first = post_draw(client)
    again = post_draw(client)

    assert again.json()["loan_id"] == first.json()["loan_id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert client.get("/v1/credit-lines/CL1").json()["available"] == "9000.00"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**DRAW, "amount": "10000.01"}, 422, "limit_exceeded", "amount"),
        ({**DRAW, "amount": "0"}, 422, "invalid_input", "amount"),
        ({**DRAW, "amount": "-5"}, 422, "invalid_input", "amount"),
        ({**DRAW, "amount": "1.001"}, 422, "invalid_input", "amount"),
        ({**DRAW, "amount": "abc"}, 422, "invalid_input", "amount"),
        ({**DRAW, "amount": 1000}, 422, "validation_error", "amount"),
        ({**DRAW, "term_months": 7}, 422, "invalid_input", "term_months"),
        ({**DRAW, "term_months": "12"}, 422, "validation_error", "term_months"),
        ({**DRAW, "repayment_method": "balloon"}, 422, "validation_error", "repayment_method"),
        ({"amount": "1.00", "term_months": 3}, 422, "validation_error", "repayment_method"),
        ({**DRAW, "extra": 1}, 422, "validation_error", "extra"),
    ],
)
def test_bad_draws_are_refused_with_a_reason(
    client: TestClient, line: str, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    got_status, got_code, fields = problem(post_draw(client, body))

    assert (got_status, got_code) == (status, code)
    assert field in fields


def test_a_draw_needs_an_idempotency_key(client: TestClient, line: str) -> None:
    response = client.post("/v1/credit-lines/CL1/draws", json=DRAW)

    assert problem(response)[:2] == (422, "invalid_input")
    assert "Idempotency-Key" in problem(response)[2]


def test_unknown_line_and_loan_are_404(client: TestClient, line: str) -> None:
    missing_line = client.post(
        "/v1/credit-lines/nope/draws", json=DRAW, headers={"Idempotency-Key": "x"}
    )

    assert problem(missing_line)[:2] == (404, "not_found")
    assert problem(client.get("/v1/loans/nope"))[:2] == (404, "not_found")
    assert problem(client.get("/v1/loans/nope/payoff-quote"))[:2] == (404, "not_found")
    assert problem(client.get("/v1/credit-lines/nope"))[:2] == (404, "not_found")


def test_repayment_allocation_payoff_and_overpayment(client: TestClient, line: str) -> None:
    loan_id = post_draw(client).json()["loan_id"]
    client.post("/v1/admin/eod", json={})
    payoff = client.get(f"/v1/loans/{loan_id}/payoff-quote").json()

    over = client.post(
        f"/v1/loans/{loan_id}/repayments",
        json={"amount": "1000.31"},
        headers={"Idempotency-Key": "r0"},
    )
    paid = client.post(
        f"/v1/loans/{loan_id}/repayments",
        json={"amount": payoff["amount"]},
        headers={"Idempotency-Key": "r1"},
    )

    # One day of interest: 1000 × 0.0003 × 30 × 1/31 = 0.2903… -> 0.29.
    assert payoff["amount"] == "1000.29"
    assert payoff["breakdown"]["current_interest"] == "0.29"
    assert problem(over)[:2] == (422, "overpayment")
    assert paid.status_code == 201
    assert paid.json()["allocation"]["current_principal"] == "1000.00"
    assert paid.json()["loan_status"] == "closed"
    assert client.get("/v1/credit-lines/CL1").json()["available"] == "10000.00"


@pytest.mark.parametrize(
    ("body", "headers", "code", "field"),
    [
        ({"amount": "0.00"}, {"Idempotency-Key": "a"}, "invalid_input", "amount"),
        ({"amount": "x"}, {"Idempotency-Key": "b"}, "invalid_input", "amount"),
        ({"amount": 5}, {"Idempotency-Key": "c"}, "validation_error", "amount"),
        ({}, {"Idempotency-Key": "d"}, "validation_error", "amount"),
        ({"amount": "1.00"}, {}, "invalid_input", "Idempotency-Key"),
    ],
)
def test_bad_repayments_are_refused_with_a_reason(
    client: TestClient,
    line: str,
    body: dict[str, Any],
    headers: dict[str, str],
    code: str,
    field: str,
) -> None:
    loan_id = post_draw(client).json()["loan_id"]

    status, got_code, fields = problem(
        client.post(f"/v1/loans/{loan_id}/repayments", json=body, headers=headers)
    )

    assert (status, got_code) == (422, code)
    assert field in fields


def test_reads_of_a_customer_loans_and_end_of_day(client: TestClient, line: str) -> None:
    post_draw(client, key="a")
    post_draw(client, {**DRAW, "repayment_method": "interest_first", "term_months": 3}, key="b")

    eod = client.post("/v1/admin/eod", json={"to": "2026-01-20"})
    again = client.post("/v1/admin/eod", json={"to": "2026-01-20"})
    loans = client.get("/v1/customers/cus_1/loans").json()

    assert eod.status_code == 200
    assert eod.json()["business_date"] == "2026-01-20"
    assert len(eod.json()["days"]) == 5
    assert problem(again)[:2] == (409, "business_date_backwards")
    assert [x["repayment_method"] for x in loans] == ["equal_installment", "interest_first"]
    assert all(x["status"] == "active" and x["bucket"] == "current" for x in loans)
    assert client.get("/v1/customers/nobody/loans").json() == []


# --- Idempotency-Key on the routes that claim it themselves (draw, repayment) ----------


def _fingerprint(path: str, body: bytes) -> str:
    """The middleware's request fingerprint, computed here from its definition."""
    return hashlib.sha256(b"POST\x00" + path.encode() + b"\x00" + body).hexdigest()


def test_a_retried_repayment_is_replayed_byte_for_byte(client: TestClient, line: str) -> None:
    loan_id = post_draw(client).json()["loan_id"]
    path = f"/v1/loans/{loan_id}/repayments"

    first = client.post(path, json={"amount": "100.00"}, headers={"Idempotency-Key": "r1"})
    again = client.post(path, json={"amount": "100.00"}, headers={"Idempotency-Key": "r1"})

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    # Repaid once: 1000.00 lent, 100.00 back (all principal on the day of the draw).
    assert client.get(f"/v1/loans/{loan_id}").json()["principal_outstanding"] == "900.00"


def test_a_replayed_draw_keeps_its_location(client: TestClient, line: str) -> None:
    first = post_draw(client)
    again = post_draw(client)

    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert first.headers["location"] == f"/v1/loans/{first.json()['loan_id']}"


def test_a_key_reused_for_another_draw_is_409_and_lends_nothing(
    client: TestClient, line: str
) -> None:
    post_draw(client, key="k")
    other = post_draw(client, {**DRAW, "amount": "2000.00"}, key="k")

    assert problem(other)[:2] == (409, "idempotency_key_reused")
    assert client.get("/v1/credit-lines/CL1").json()["available"] == "9000.00"


def test_a_draw_refused_by_the_service_is_replayed_as_refused(
    client: TestClient, line: str
) -> None:
    too_much = {**DRAW, "amount": "10000.01"}
    first = post_draw(client, too_much, key="big")
    again = post_draw(client, too_much, key="big")

    assert problem(first)[:2] == (422, "limit_exceeded")
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


def test_a_body_refused_before_the_route_still_takes_the_key(client: TestClient, line: str) -> None:
    bad = {**DRAW, "term_months": "12"}
    first = post_draw(client, bad, key="v")
    again = post_draw(client, bad, key="v")
    other = post_draw(client, DRAW, key="v")

    assert problem(first)[:2] == (422, "validation_error")
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert problem(other)[:2] == (409, "idempotency_key_reused")
    assert client.get("/v1/credit-lines/CL1").json()["available"] == "10000.00"


def test_a_draw_whose_key_is_still_in_flight_elsewhere_is_409_and_lends_nothing(
    client: TestClient, line: str
) -> None:
    # A claim written outside the draw's transaction (another process, an older server)
    # and still within its lease: the draw must not run under it.
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    path = "/v1/credit-lines/CL1/draws"
    body = json.dumps(DRAW).encode()
    now = container.clock.now()
    with container.engine.begin() as connection:
        connection.execute(
            insert(idempotency_keys).values(
                key="busy",
                fingerprint=_fingerprint(path, body),
                method="POST",
                path=path,
                state="in_flight",
                headers={},
                created_at=now,
                locked_until=now + timedelta(minutes=1),
            )
        )

    response = client.post(
        path, content=body, headers={"Idempotency-Key": "busy", "Content-Type": "application/json"}
    )

    assert problem(response)[:2] == (409, "request_in_flight")
    assert client.get("/v1/credit-lines/CL1").json()["available"] == "10000.00"


def _race(client: TestClient, path: str, body: dict[str, Any], key: str) -> list[httpx.Response]:
    """The same request twice at once, through the app's own event loop."""
    transport = httpx.ASGITransport(app=client.app)

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(path, json=body, headers={"Idempotency-Key": key})

    async def both() -> list[httpx.Response]:
        return list(await asyncio.gather(one(), one()))

    return asyncio.run(both())


def test_two_identical_draws_racing_lend_once(client: TestClient, line: str) -> None:
    first, second = _race(client, "/v1/credit-lines/CL1/draws", DRAW, "twin-draw")

    # The twin waits on the key's record until the first commits, then replays it.
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.content == second.content
    assert {r.headers.get("idempotent-replayed") for r in (first, second)} == {"true", None}
    assert client.get("/v1/credit-lines/CL1").json()["available"] == "9000.00"
    assert len(client.get("/v1/customers/cus_1/loans").json()) == 1


def test_two_identical_repayments_racing_pay_once(client: TestClient, line: str) -> None:
    loan = post_draw(client).json()["loan_id"]
    path = f"/v1/loans/{loan}/repayments"

    first, second = _race(client, path, {"amount": "100.00"}, "twin-pay")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.content == second.content
    assert {r.headers.get("idempotent-replayed") for r in (first, second)} == {"true", None}
    # Paid once: 1,000 lent, 100 paid first to the interest then the principal.
    outstanding = Decimal(client.get(f"/v1/loans/{loan}").json()["principal_outstanding"])
    paid = first.json()["allocation"]
    principal_paid = Decimal(paid["current_principal"]) + Decimal(paid["overdue_principal"])
    assert outstanding == Decimal("1000.00") - principal_paid


def test_a_draw_that_fails_on_our_side_frees_its_key_for_a_retry(
    client: TestClient, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_draw = service.draw

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(service, "draw", broken)
    with pytest.raises(RuntimeError):
        post_draw(client, key="retry-me")
    monkeypatch.setattr(service, "draw", real_draw)

    retried = post_draw(client, key="retry-me")

    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
