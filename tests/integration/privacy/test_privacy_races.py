"""Races: the same person registering twice at once, the same key sent twice at once.

Run on SQLite (writers queue behind BEGIN IMMEDIATE) and PostgreSQL (the unique index
decides). Whatever the interleaving, exactly one customer exists afterwards.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from creditline.bootstrap import Container
from creditline.privacy import service
from creditline.privacy.adapters.sql import customers
from creditline.shared.errors import ConflictError
from tests.conftest import BUSINESS_DATE

ZHANG = service.RegistrationRequest("张三", "11010519491231002X", "13812345678", "120000.00")
RACERS = 8


def _race(work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(RACERS)

    def run(n: int) -> Any:
        barrier.wait()
        try:
            return work(n)
        except ConflictError as error:
            return error.code

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(run, range(RACERS)))


def _count(container: Container) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(customers)).scalar_one())


def test_one_person_registering_eight_times_at_once_is_one_customer(container: Container) -> None:
    def register(n: int) -> str:
        service.register_customer(
            container.privacy_uow(),
            container.clock,
            ZHANG,
            today=BUSINESS_DATE,
            registration_key=f"key-{n}",
        )
        return "created"

    outcomes = Counter(_race(register))

    assert outcomes == {"created": 1, "customer_already_registered": RACERS - 1}
    assert _count(container) == 1


def test_one_key_sent_eight_times_at_once_creates_one_customer(client: TestClient) -> None:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    body = {
        "name": "张三",
        "national_id": "11010519491231002X",
        "phone": "13812345678",
        "declared_annual_income": "120000.00",
    }
    app = client.app
    transport = httpx.ASGITransport(app=app)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post("/v1/customers", json=body, headers={"Idempotency-Key": "k"})

    async def all_at_once() -> list[httpx.Response]:
        return list(await asyncio.gather(*(post() for _ in range(RACERS))))

    responses = asyncio.run(all_at_once())
    statuses = Counter(r.status_code for r in responses)
    ids = {r.json()["customer_id"] for r in responses if r.status_code == 201}

    assert statuses[201] >= 1
    assert set(statuses) <= {201, 409}
    assert all(r.json()["code"] == "request_in_flight" for r in responses if r.status_code == 409)
    assert len(ids) == 1
    assert _count(container) == 1
