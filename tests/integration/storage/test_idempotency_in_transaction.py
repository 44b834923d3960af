"""Idempotency records kept in the route's own transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from creditline.storage.idempotency import (
    ClaimOutcome,
    SqlIdempotencyStore,
    keeps_own_record,
    record_in_transaction,
    request_fingerprint,
)
from creditline.storage.tables import idempotency_keys

NOW = datetime(2026, 1, 15, 2, tzinfo=UTC)
PATH = "/v1/test-in-transaction"
record_in_transaction("POST", PATH)


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(idempotency_keys)).scalar_one()
        )


def test_the_fingerprint_is_method_path_and_body_hashed() -> None:
    expected = hashlib.sha256(b"POST\x00/v1/x?a=1\x00{}").hexdigest()
    assert request_fingerprint("POST", "/v1/x?a=1", b"{}") == expected
    assert keeps_own_record("POST", PATH)
    assert not keeps_own_record("POST", PATH + "?a=1")


def test_a_claim_and_its_answer_commit_with_the_transaction(engine: Engine) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    with engine.begin() as connection:
        assert (
            store.claim_in(connection, "k1", "f1", "POST", PATH, NOW).outcome
            is ClaimOutcome.CLAIMED
        )
        store.complete_in(connection, "k1", 201, {"location": "/x/1"}, b"body")
    with engine.begin() as connection:
        replay = store.claim_in(connection, "k1", "f1", "POST", PATH, NOW)
        other = store.claim_in(connection, "k1", "f2", "POST", PATH, NOW)
    assert (replay.outcome, replay.status_code, replay.headers, replay.body) == (
        ClaimOutcome.REPLAY,
        201,
        {"location": "/x/1"},
        b"body",
    )
    assert other.outcome is ClaimOutcome.MISMATCH


def test_a_rolled_back_claim_leaves_nothing(engine: Engine) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    with engine.connect() as connection, connection.begin() as transaction:
        store.claim_in(connection, "k2", "f1", "POST", PATH, NOW)
        transaction.rollback()
    assert _rows(engine) == 0


def test_the_middleware_side_leaves_recorded_keys_alone_and_stores_the_rest(
    engine: Engine,
) -> None:
    store = SqlIdempotencyStore(engine, timedelta(seconds=30))
    # Claimed for a route that keeps its own record: nothing is written at claim time.
    assert store.claim("k3", "f3", "POST", PATH, NOW).outcome is ClaimOutcome.CLAIMED
    assert _rows(engine) == 0
    store.recorded("k3")
    store.complete("k3", 201, {}, b"ignored")  # the route stored (or replayed) it
    assert _rows(engine) == 0

    # An answer the route did not record (a 4xx raised before it could) is stored here.
    store.claim("k4", "f4", "POST", PATH, NOW)
    store.complete("k4", 404, {"content-type": "application/problem+json"}, b"missing")
    with engine.begin() as connection:
        replay = store.claim_in(connection, "k4", "f4", "POST", PATH, NOW)
    assert (replay.outcome, replay.status_code, replay.body) == (
        ClaimOutcome.REPLAY,
        404,
        b"missing",
    )

    # A server error: nothing to release, nothing stored.
    store.claim("k5", "f5", "POST", PATH, NOW)
    store.release("k5")
    assert _rows(engine) == 1
