"""PostgreSQL: a batch whose first id is new goes straight into `behaviour_events` with a
binary COPY; one whose first id is stored is looked up first. An id stored after all (not
looked up, or stored by another writer after the look-up) makes the COPY fail, and the
batch is then stored through the staging table, still exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from creditline.data.adapters import sql
from creditline.data.adapters.sql import SqlEventStore
from creditline.data.domain.events import MAX_AMOUNT_MINOR, parse_event
from creditline.data.service import ingest_batch
from creditline.shared.clock import FixedClock
from creditline.storage.engine import create_db_engine
from tests.conftest import migrated_database
from tests.contract.test_events_store import payment

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlEventStore]:
    with migrated_database(request, "postgresql", tmp_path) as url:
        engine = create_db_engine(url)
        yield SqlEventStore(engine, FixedClock(datetime(2026, 1, 15, 2, 0, tzinfo=UTC)))
        engine.dispose()


def test_an_id_stored_after_the_look_up_is_found_and_not_stored_twice(
    store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_batch(store, [payment(2), payment(5, amount=555)])
    # The first id is stored, so the batch is looked up before the COPY.
    raws = [payment(n) for n in (2, 0, 1, 3, 4, 5, 6, 7)]
    looked_up: list[int] = []
    real_digests = sql._digests

    def blind_first_look_up(
        connection: object, event_ids: list[str], **kwargs: object
    ) -> dict[str, str]:
        # The first look-up misses what is stored, as if another writer stored those ids
        # just after it; every later look-up is the real one.
        looked_up.append(len(event_ids))
        if len(looked_up) == 1:
            return {}
        return real_digests(connection, event_ids, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sql, "_digests", blind_first_look_up)

    report = ingest_batch(store, raws)

    assert (report.accepted, report.duplicates) == (6, 1)
    assert [(r.index, r.code) for r in report.rejected] == [(5, "conflict")]
    assert looked_up == [8, 2]
    assert store.count() == 8
    with store._engine.connect() as connection:
        amount = connection.execute(
            text("SELECT amount_minor FROM behaviour_events WHERE event_id = 'evt-5'")
        ).scalar_one()
    assert amount == 555


def test_instants_are_copied_as_the_same_instants_whatever_the_session_time_zone(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # Binary COPY carries instants as microseconds since 2000-01-01 UTC: the session's
    # time zone plays no part in reading them.
    raw = {**payment(1), "occurred_at": "2026-01-01T17:30:00.123456+08:00"}
    with migrated_database(request, "postgresql", tmp_path) as url:
        engine = create_db_engine(f"{url}?options=-c%20timezone%3DAsia/Shanghai")
        store = SqlEventStore(engine, FixedClock(datetime(2026, 1, 15, 2, 0, tzinfo=UTC)))

        ingest_batch(store, [raw])

        with engine.connect() as connection:
            zone, occurred, ingested = connection.execute(
                text(
                    "SELECT current_setting('TimeZone'), occurred_at, ingested_at "
                    "FROM behaviour_events"
                )
            ).one()
        engine.dispose()
    assert zone == "Asia/Shanghai"
    assert occurred == datetime(2026, 1, 1, 9, 30, 0, 123456, tzinfo=UTC)
    assert ingested == datetime(2026, 1, 15, 2, 0, tzinfo=UTC)


def test_a_batch_whose_first_id_is_new_is_copied_unlooked_and_the_stored_ids_named(
    store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_batch(store, [payment(2), payment(5, amount=555)])
    looked_up: list[int] = []
    real_digests = sql._digests

    def counted(connection: object, event_ids: list[str], **kwargs: object) -> dict[str, str]:
        looked_up.append(len(event_ids))
        return real_digests(connection, event_ids, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sql, "_digests", counted)

    report = ingest_batch(store, [payment(n) for n in range(8)])

    assert (report.accepted, report.duplicates) == (6, 1)
    assert [(r.index, r.code) for r in report.rejected] == [(5, "conflict")]
    assert looked_up == [2]  # only the ids the COPY could not store
    assert store.count() == 8


def test_binary_copy_stores_every_kind_of_value_exactly(store: SqlEventStore) -> None:
    # Values at the edges of the binary format: instants and dates before PostgreSQL's
    # epoch (2000-01-01, negative counts), the largest amount, both booleans, a zero.
    raws: list[dict[str, object]] = [
        {
            **payment(1, amount=MAX_AMOUNT_MINOR),
            "occurred_at": "1999-12-31T23:59:59.999999+00:00",
        },
        {
            "event_id": "evt-bill",
            "customer_id": "cus-1",
            "event_type": "bill",
            "occurred_at": "2026-01-01T17:30:00.000001+08:00",
            "source": "bank",
            "product_id": "card-1",
            "due_on": "1999-12-31",
            "amount_due_minor": 0,
            "credit_limit_minor": 5_000_000,
        },
        {
            "event_id": "evt-login",
            "customer_id": "cus-1",
            "event_type": "device_login",
            "occurred_at": "2000-01-01T00:00:00Z",
            "source": "app",
            "device_id": "dev-1",
            "is_sim_change": False,
            "location": "cn-31",
        },
        {
            "event_id": "evt-profile",
            "customer_id": "cus-1",
            "event_type": "profile_update",
            "occurred_at": "2026-02-28T12:00:00-05:00",
            "source": "app",
            "is_real_name_verified": True,
            "occupation": "salaried",
        },
    ]

    report = ingest_batch(store, raws)

    assert report.accepted == len(raws)
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    assert stored == {str(raw["event_id"]): parse_event(raw) for raw in raws}
    assert stored["evt-1"].occurred_at == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert stored["evt-bill"].due_on == date(1999, 12, 31)
