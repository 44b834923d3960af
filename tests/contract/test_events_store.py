"""Every `EventStore` keeps the same promises: exactly once, atomic batches, conflicts named.

Run against an in-memory fake and the SQL store on SQLite and PostgreSQL (COPY path).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from creditline.data.adapters.sql import SqlEventStore
from creditline.data.domain.events import BehaviourEvent, parse_event
from creditline.data.domain.ingest import AppendResult
from creditline.data.ports import EventStore
from creditline.data.service import ingest_batch
from creditline.shared.clock import FixedClock
from creditline.storage.engine import create_db_engine
from tests.conftest import DATABASES, migrated_database


class InMemoryEventStore:
    def __init__(self) -> None:
        self.events: dict[str, tuple[BehaviourEvent, str]] = {}

    def append(self, events: Sequence[BehaviourEvent]) -> AppendResult:
        existing = {
            e.event_id: self.events[e.event_id][1] for e in events if e.event_id in self.events
        }
        for event in events:
            if event.event_id not in existing:
                self.events[event.event_id] = (event, event.digest())
        return AppendResult(len(events) - len(existing), existing)

    def count(self) -> int:
        return len(self.events)

    def for_customer(self, customer_id: str) -> list[BehaviourEvent]:
        found = [e for e, _ in self.events.values() if e.customer_id == customer_id]
        return sorted(found, key=lambda e: (e.occurred_at, e.event_id))


@pytest.fixture(params=["fake", *DATABASES])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "fake":
        yield InMemoryEventStore()
        return
    with migrated_database(request, request.param, tmp_path) as url:
        engine: Engine = create_db_engine(url)
        yield SqlEventStore(engine, FixedClock(datetime(2026, 1, 15, 2, 0, tzinfo=UTC)))
        engine.dispose()


START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def payment(n: int, *, customer: str = "cus-1", amount: int = 100) -> dict[str, object]:
    return {
        "event_id": f"evt-{n}",
        "customer_id": customer,
        "event_type": "payment",
        "occurred_at": (START + timedelta(minutes=n)).isoformat(),
        "source": "alipay",
        "amount_minor": amount,
        "category": "dining",
    }


def test_new_events_are_accepted_and_can_be_read_back(store: EventStore) -> None:
    raws = [payment(1), payment(2, customer="cus-2"), payment(3)]

    report = ingest_batch(store, raws)

    assert (report.accepted, report.duplicates, report.rejected) == (3, 0, ())
    assert [e.event_id for e in store.for_customer("cus-1")] == ["evt-1", "evt-3"]
    assert store.for_customer("cus-1")[0] == parse_event(raws[0])


def test_a_retried_batch_is_counted_as_duplicates_and_stored_once(store: EventStore) -> None:
    raws = [payment(n) for n in range(5)]
    ingest_batch(store, raws)

    again = ingest_batch(store, [*raws, payment(9)])

    assert (again.accepted, again.duplicates, again.rejected) == (1, 5, ())
    assert store.count() == 6


def test_a_duplicate_inside_one_batch_is_stored_once(store: EventStore) -> None:
    report = ingest_batch(store, [payment(1), payment(1), payment(2)])

    assert (report.accepted, report.duplicates) == (2, 1)
    assert store.count() == 2


def test_an_id_reused_for_other_content_is_rejected_not_overwritten(store: EventStore) -> None:
    ingest_batch(store, [payment(1, amount=100)])

    report = ingest_batch(store, [payment(2), payment(1, amount=999)])

    assert report.accepted == 1
    assert [(r.index, r.field, r.code) for r in report.rejected] == [(1, "event_id", "conflict")]
    assert store.for_customer("cus-1")[0].amount_minor == 100


def test_bad_events_are_rejected_with_index_field_and_reason(store: EventStore) -> None:
    bad_amount = {**payment(2), "amount_minor": "ten"}
    no_customer = {**payment(3), "customer_id": None}

    report = ingest_batch(store, [payment(1), bad_amount, no_customer, payment(4)])

    assert report.accepted == 2
    assert [(r.index, r.field, r.code) for r in report.rejected] == [
        (1, "amount_minor", "invalid_type"),
        (2, "customer_id", "required"),
    ]
    assert "whole number" in report.rejected[0].reason
    assert store.count() == 2


def test_instants_come_back_aware_and_equal(store: EventStore) -> None:
    raw = {**payment(1), "occurred_at": "2026-01-01T17:30:00.123456+08:00"}

    ingest_batch(store, [raw])

    stored = store.for_customer("cus-1")[0]
    assert stored.occurred_at == datetime(2026, 1, 1, 9, 30, 0, 123456, tzinfo=UTC)
    assert stored.digest() == parse_event(raw).digest()


def test_every_event_type_round_trips(store: EventStore) -> None:
    from tests.unit.data.test_data_events import BASE, GOOD

    raws: list[dict[str, object]] = [
        {**BASE, "event_id": f"e-{kind.value}", "event_type": kind.value, **fields}
        for kind, fields in GOOD.items()
    ]

    report = ingest_batch(store, raws)

    assert report.accepted == len(raws)
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    assert all(stored[str(raw["event_id"])] == parse_event(raw) for raw in raws)


def test_a_bulk_sized_batch_stores_the_new_rows_once_and_hands_exactly_them_on(
    store: EventStore,
) -> None:
    # More rows than a bulk batch (SQLite then widens the connection's page cache), part
    # of them already stored, one reused for other content.
    ingest_batch(store, [payment(n) for n in range(0, 6_000, 3)])
    handed: list[str] = []
    raws = [payment(n) for n in range(6_000)]
    raws[3] = payment(3, amount=999)

    report = ingest_batch(
        store,
        raws,
        on_stored_table=lambda table: handed.extend(table.column("event_id").to_pylist()),
    )

    new = [f"evt-{n}" for n in range(6_000) if n % 3]
    assert (report.accepted, report.duplicates) == (len(new), 2_000 - 1)
    assert [(r.index, r.code) for r in report.rejected] == [(3, "conflict")]
    assert sorted(handed) == sorted(new)
    assert store.count() == 6_000


def test_a_batch_of_every_type_part_stored_before_is_stored_once_with_every_value(
    store: EventStore,
) -> None:
    # Rows of different types leave different fields empty (SQLite inserts each such
    # shape with its own statement); a quarter of them are already stored.
    from tests.unit.data.test_data_events import BASE, GOOD

    raws: list[dict[str, object]] = [
        {**BASE, "event_id": f"e-{kind.value}-{n}", "event_type": kind.value, **fields}
        for n in range(3)
        for kind, fields in GOOD.items()
    ]
    before = raws[::4]
    ingest_batch(store, before)

    report = ingest_batch(store, raws)

    assert (report.accepted, report.duplicates, report.rejected) == (
        len(raws) - len(before),
        len(before),
        (),
    )
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    assert stored == {str(raw["event_id"]): parse_event(raw) for raw in raws}


def test_a_batch_whose_first_event_is_new_names_the_stored_ones_among_the_rest(
    store: EventStore,
) -> None:
    # SQLite inserts such a batch first and looks up only the rows it could not insert.
    ingest_batch(store, [payment(n) for n in range(1, 40, 2)])
    raws = [payment(n) for n in range(40)]
    raws[7] = payment(7, amount=999)

    report = ingest_batch(store, raws)

    assert (report.accepted, report.duplicates) == (20, 19)
    assert [(r.index, r.code) for r in report.rejected] == [(7, "conflict")]
    assert store.count() == 40
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    assert stored["evt-7"].amount_minor == 100
    assert stored == {f"evt-{n}": parse_event(payment(n)) for n in range(40)}


def test_a_fresh_batch_after_one_that_met_stored_ids_is_stored_whole(store: EventStore) -> None:
    # On PostgreSQL the second batch's COPY fails on its stored ids and its transaction is
    # rolled back before the staging table takes it: the connection must come back clean.
    ingest_batch(store, [payment(n) for n in range(10, 20)])
    partly = ingest_batch(store, [payment(n) for n in range(5, 15)])
    fresh = ingest_batch(store, [payment(n) for n in range(20, 30)])

    assert (partly.accepted, partly.duplicates, partly.rejected) == (5, 5, ())
    assert (fresh.accepted, fresh.duplicates, fresh.rejected) == (10, 0, ())
    assert store.count() == 25
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    assert stored == {f"evt-{n}": parse_event(payment(n)) for n in range(5, 30)}


@pytest.mark.parametrize("database", DATABASES)
def test_a_staged_batch_is_stored_only_when_its_call_runs(
    request: pytest.FixtureRequest, database: str, tmp_path: Path
) -> None:
    from creditline.data.service import check_batch

    with migrated_database(request, database, tmp_path) as url:
        engine = create_db_engine(url)
        store = SqlEventStore(engine, FixedClock(datetime(2026, 1, 15, 2, 0, tzinfo=UTC)))
        store.append_table(check_batch([payment(n) for n in range(3)]).valid.table)
        table = check_batch([payment(n) for n in range(6)]).valid.table

        store_it = store.stage_table(table)
        assert store.count() == 3  # staging encodes; nothing is written yet
        result = store_it()

        assert result == AppendResult(
            3, {f"evt-{n}": parse_event(payment(n)).digest() for n in range(3)}
        )
        assert store.count() == 6
        assert store.stage_table(table.slice(0, 0))() == AppendResult(0, {})
        engine.dispose()
