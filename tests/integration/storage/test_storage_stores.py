"""The business date and the idempotency records, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from creditline.shared.clock import FixedClock
from creditline.shared.errors import ConflictError
from creditline.storage.business_date import SqlBusinessDateStore
from creditline.storage.idempotency import ClaimOutcome, SqlIdempotencyStore

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_a_new_database_starts_on_the_clocks_china_date(engine: Engine) -> None:
    clock = FixedClock(datetime(2026, 1, 15, 17, tzinfo=UTC))  # 01:00 on the 16th in Beijing

    assert SqlBusinessDateStore(engine, clock).get() == date(2026, 1, 16)


def test_first_requests_racing_on_a_new_database_agree_on_its_date(engine: Engine) -> None:
    # Both threads find no row and both insert one; the loser must read the winner's date.
    stores = [
        SqlBusinessDateStore(engine, FixedClock(NOW), initial=date(2026, 3, day))
        for day in (1, 2, 3, 4, 5, 6, 7, 8)
    ]
    start = threading.Barrier(len(stores))

    def first_read(store: SqlBusinessDateStore) -> date:
        start.wait()
        return store.get()

    with ThreadPoolExecutor(len(stores)) as pool:
        seen = list(pool.map(first_read, stores))

    assert len(set(seen)) == 1
    assert seen[0] == stores[0].get()


def test_the_business_date_moves_forward_only(engine: Engine) -> None:
    store = SqlBusinessDateStore(engine, FixedClock(NOW), initial=date(2026, 1, 15))
    store.advance_to(date(2026, 1, 17))

    with pytest.raises(ConflictError):
        store.advance_to(date(2026, 1, 16))

    assert store.get() == date(2026, 1, 17)


def test_a_completed_key_replays_its_response(engine: Engine) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    assert store.claim("k", "f1", "POST", "/v1/x", NOW).outcome is ClaimOutcome.CLAIMED
    store.complete("k", 201, {"location": "/v1/x/1"}, b'{"id": 1}')

    replay = store.claim("k", "f1", "POST", "/v1/x", NOW + timedelta(minutes=5))

    assert (replay.outcome, replay.status_code, replay.headers, replay.body) == (
        ClaimOutcome.REPLAY,
        201,
        {"location": "/v1/x/1"},
        b'{"id": 1}',
    )


def test_the_same_key_for_another_request_is_a_mismatch(engine: Engine) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    store.claim("k", "f1", "POST", "/v1/x", NOW)
    store.complete("k", 201, {}, b"")

    assert store.claim("k", "f2", "POST", "/v1/x", NOW).outcome is ClaimOutcome.MISMATCH


def test_a_claim_in_flight_blocks_until_its_lease_ends(engine: Engine) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    store.claim("k", "f1", "POST", "/v1/x", NOW)

    during = store.claim("k", "f1", "POST", "/v1/x", NOW + timedelta(seconds=10))
    after = store.claim("k", "f1", "POST", "/v1/x", NOW + timedelta(seconds=31))

    assert during.outcome is ClaimOutcome.IN_FLIGHT
    assert after.outcome is ClaimOutcome.CLAIMED


def test_a_released_key_can_be_claimed_again(engine: Engine) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    store.claim("k", "f1", "POST", "/v1/x", NOW)
    store.release("k")

    assert store.claim("k", "f2", "POST", "/v1/x", NOW).outcome is ClaimOutcome.CLAIMED
