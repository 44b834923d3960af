"""The hot lane answers exactly as FastAPI does: every hot route, with and without it.

The same requests go to the app as built (decisions, draws and repayments take the hot
lane, `api.hot`) and to the same app with the lane taken out (FastAPI routes them), on
one database; the answers must be equal byte for byte (status, content type, body). The
request id is pinned, since a problem echoes it. Also: the inline mode of
`CREDITLINE_HTTP_THREADS=0` (`api.blocking`) serves the same flows.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from creditline.api.app import create_app
from creditline.api.hot import HotLane
from creditline.api.routes.lending import lending_uow
from creditline.bootstrap import Container
from creditline.lending import service
from creditline.shared.money import Money

DRAW = {"amount": "1000.00", "term_months": 12, "repayment_method": "equal_installment"}


def without_lane(container: Container) -> FastAPI:
    app = create_app(container)
    app.user_middleware = [m for m in app.user_middleware if cast(object, m.cls) is not HotLane]
    return app


def open_line(container: Container, line_id: str) -> None:
    service.open_credit_line(
        lending_uow(container),
        line_id=line_id,
        customer_id=f"cus_{line_id}",
        limit=Money.yuan(10_000),
        daily_rate=Decimal("0.0003"),
        on=container.business_date(),
    )


def answer(response: httpx.Response) -> tuple[int, str, bytes]:
    return response.status_code, response.headers["content-type"], response.content


# (path, body or raw bytes, content type, with an Idempotency-Key)
BAD: list[tuple[str, Any, str, bool]] = [
    ("/v1/applications", {"customer_id": 5}, "application/json", True),
    ("/v1/applications", {"customer_id": "c", "extra": 1}, "application/json", True),
    ("/v1/applications", {"customer_id": "c", "requested_limit": "abc"}, "application/json", True),
    ("/v1/applications", {"customer_id": "c", "requested_limit": "-5"}, "application/json", True),
    ("/v1/applications", b'{"customer_id": ', "application/json", True),
    ("/v1/applications", b'{"customer_id": "c"}', "text/plain", True),
    ("/v1/applications", b"", "application/json", True),
    ("/v1/credit-lines/CL1/draws", {**DRAW, "amount": "0.00"}, "application/json", True),
    ("/v1/credit-lines/CL1/draws", {**DRAW, "amount": 5}, "application/json", True),
    ("/v1/credit-lines/CL1/draws", {**DRAW, "term_months": "12"}, "application/json", True),
    ("/v1/credit-lines/CL1/draws", {**DRAW, "repayment_method": "x"}, "application/json", True),
    ("/v1/credit-lines/CL1/draws", {**DRAW, "amount": "99999.00"}, "application/json", True),
    ("/v1/credit-lines/CL1/draws", DRAW, "application/json", False),
    ("/v1/credit-lines/nope/draws", DRAW, "application/json", True),
    ("/v1/loans/nope/repayments", {"amount": "1.00"}, "application/json", True),
    ("/v1/loans/nope/repayments", {"amount": "x"}, "application/json", True),
    ("/v1/loans/nope/repayments", {}, "application/json", True),
]


@pytest.mark.parametrize(("path", "body", "content_type", "keyed"), BAD)
def test_a_refused_request_gets_the_same_problem_with_or_without_the_lane(
    make_container: Callable[[str], Container],
    db_url: str,
    path: str,
    body: Any,
    content_type: str,
    keyed: bool,
) -> None:
    container = make_container(db_url)
    open_line(container, "CL1")
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    answers = []
    for n, app in enumerate([create_app(container), without_lane(container)]):
        headers = {"content-type": content_type, "x-request-id": "req-1"}
        if keyed:
            headers["Idempotency-Key"] = f"k-{n}"  # each app its own key: no replays
        with TestClient(app) as client:
            answers.append(answer(client.post(path, content=content, headers=headers)))

    assert answers[0] == answers[1]
    assert 400 <= answers[0][0] < 500


def test_a_draw_and_a_repayment_are_the_same_with_or_without_the_lane(
    make_container: Callable[[str], Container], db_url: str
) -> None:
    container = make_container(db_url)
    results = []
    for name, app in [("L1", create_app(container)), ("L2", without_lane(container))]:
        open_line(container, name)
        with TestClient(app) as client:
            drawn = client.post(
                f"/v1/credit-lines/{name}/draws", json=DRAW, headers={"Idempotency-Key": name}
            )
            loan_id = drawn.json()["loan_id"]
            paid = client.post(
                f"/v1/loans/{loan_id}/repayments",
                json={"amount": "100.00"},
                headers={"Idempotency-Key": f"r-{name}"},
            )
            replay = client.post(
                f"/v1/credit-lines/{name}/draws", json=DRAW, headers={"Idempotency-Key": name}
            )
        ids = {"loan_id", "credit_line_id", "customer_id"}  # this run's own
        loan = {k: v for k, v in drawn.json().items() if k not in ids}
        repayment = {k: v for k, v in paid.json().items() if k not in {*ids, "repayment_id"}}
        assert (drawn.status_code, paid.status_code) == (201, 201)
        assert replay.content == drawn.content
        assert replay.headers["idempotent-replayed"] == "true"
        results.append((loan, repayment, drawn.headers["location"].endswith(loan_id)))

    assert results[0] == results[1]


def test_good_requests_take_the_lane_and_never_reach_fastapis_route_handler(
    make_container: Callable[[str], Container], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = make_container(db_url)
    open_line(container, "CL1")
    handled: list[str] = []
    original = APIRoute.handle

    async def counted(route: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        handled.append(route.path)
        await original(route, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", counted)
    with TestClient(create_app(container)) as client:
        drawn = client.post(
            "/v1/credit-lines/CL1/draws", json=DRAW, headers={"Idempotency-Key": "a"}
        )
        loan_id = drawn.json()["loan_id"]
        paid = client.post(
            f"/v1/loans/{loan_id}/repayments",
            json={"amount": "1.00"},
            headers={"Idempotency-Key": "b"},
        )
        read = client.get(f"/v1/loans/{loan_id}")
        refused = client.post(
            "/v1/credit-lines/CL1/draws", json={}, headers={"Idempotency-Key": "c"}
        )

    assert (drawn.status_code, paid.status_code, read.status_code) == (201, 201, 200)
    assert refused.status_code == 422
    # Only the read and the body that did not validate went through FastAPI's routing.
    assert handled == ["/v1/loans/{loan_id}", "/v1/credit-lines/{line_id}/draws"]


def test_inline_mode_serves_draws_and_repayments_and_never_overdraws(
    make_container: Callable[[str], Container], db_url: str
) -> None:
    container = make_container(db_url)
    container.settings.http_threads = 0
    open_line(container, "CL1")
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)

    async def draw(key: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(
                "/v1/credit-lines/CL1/draws",
                json={**DRAW, "amount": "4000.00"},
                headers={"Idempotency-Key": key},
            )

    async def three() -> list[httpx.Response]:
        return list(await asyncio.gather(draw("a"), draw("b"), draw("c")))

    statuses = Counter(r.status_code for r in asyncio.run(three()))
    with TestClient(app) as client:
        available = client.get("/v1/credit-lines/CL1").json()["available"]

    assert statuses == {201: 2, 422: 1}  # 10,000 holds two draws of 4,000, not three
    assert available == "2000.00"
