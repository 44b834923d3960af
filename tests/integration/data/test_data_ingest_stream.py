"""`ingest_stream` stores batch after batch on one writer thread while the next is being
validated, and keeps every promise of a loop of `ingest_batch` calls: reports in order and
counted as one batch alone would be, a batch handed on only once it is stored, a writer's
error raised (never a hang), nothing stored unreported when the consumer stops, and a load
stopped part way then run again stores every event exactly once.

Expected counts are worked out by hand from the batches; stored events are compared with
`parse_event` of their raw rows."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
import pytest

from creditline.data.columnar import ValidBatch
from creditline.data.domain.events import BehaviourEvent, parse_event
from creditline.data.domain.ingest import AppendResult
from creditline.data.ports import EventStore, StagedEventStore
from creditline.data.service import CheckedBatch, check_batch, ingest_stream
from tests.contract import test_events_store as contract
from tests.contract.test_events_store import InMemoryEventStore, payment

# The fake, SQLite and PostgreSQL event stores of the contract tests.
store = contract.store

Raws = list[dict[str, object]]


def checked(batches: Sequence[Raws], taken: list[int] | None = None) -> Iterator[CheckedBatch]:
    """The batches validated one by one as they are taken (their numbers go to `taken`)."""
    for number, raws in enumerate(batches):
        if taken is not None:
            taken.append(number)
        yield check_batch(raws)


@pytest.mark.parametrize("overlap", [True, False])
def test_reports_come_in_order_each_counted_as_its_batch_alone_would_be(
    store: EventStore, overlap: bool
) -> None:
    first = [payment(n) for n in range(10)]
    second = [payment(n) for n in range(5, 15)]
    second[2] = payment(7, amount=999)  # evt-7 is stored by the first batch, as 100
    third = [{**payment(15), "amount_minor": "ten"}, *(payment(n) for n in range(16, 20))]
    handed: list[list[str]] = []

    reports = list(
        ingest_stream(
            store,
            checked([first, second, third]),
            on_stored_table=lambda table: handed.append(table.column("event_id").to_pylist()),
            overlap=overlap,
        )
    )

    counts = [(r.accepted, r.duplicates, [(x.index, x.code) for x in r.rejected]) for r in reports]
    assert counts == [
        (10, 0, []),
        (5, 4, [(2, "conflict")]),  # 10-14 new; 5, 6, 8, 9 repeats; 7 reused
        (4, 0, [(0, "invalid_type")]),
    ]
    assert handed == [
        [f"evt-{n}" for n in range(10)],
        [f"evt-{n}" for n in range(10, 15)],
        [f"evt-{n}" for n in range(16, 20)],
    ]
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    expected = [payment(n) for n in (*range(15), *range(16, 20))]
    assert stored == {str(raw["event_id"]): parse_event(raw) for raw in expected}


class FailingStore(InMemoryEventStore):
    """Fails on its second append."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def append(self, events: Sequence[BehaviourEvent]) -> AppendResult:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the disk is full")
        return super().append(events)


def test_an_error_in_the_writer_is_raised_at_its_batch_and_nothing_after_it_is_stored() -> None:
    store = FailingStore()
    batches = [[payment(n) for n in range(k, k + 3)] for k in (0, 3, 6, 9)]
    taken: list[int] = []
    stream = ingest_stream(store, checked(batches, taken))

    assert next(stream).accepted == 3
    with pytest.raises(RuntimeError, match="the disk is full"):
        next(stream)

    assert store.count() == 3
    assert store.calls == 2  # the batch after the failing one was never handed to the store
    assert taken == [0, 1, 2]  # validated while the failing one was being written


def test_an_error_taking_the_next_batch_comes_after_the_report_of_the_batch_in_hand(
    store: EventStore,
) -> None:
    def broken() -> Iterator[CheckedBatch]:
        yield check_batch([payment(n) for n in range(4)])
        raise ValueError("line 5: unreadable CSV")

    handed: list[pa.Table] = []
    stream = ingest_stream(store, broken(), on_stored_table=handed.append)

    assert next(stream).accepted == 4
    with pytest.raises(ValueError, match="unreadable CSV"):
        next(stream)

    assert store.count() == 4
    assert [table.num_rows for table in handed] == [4]


def test_a_consumer_that_stops_leaves_no_batch_stored_unreported(store: EventStore) -> None:
    batches = [[payment(n) for n in range(k, k + 5)] for k in (0, 5, 10)]
    stream = ingest_stream(store, checked(batches))

    report = next(stream)
    stream.close()

    assert report.accepted == 5
    assert store.count() == 5


def test_a_load_stopped_part_way_then_run_again_stores_every_event_exactly_once(
    store: EventStore,
) -> None:
    raws = [payment(n, customer=f"cus-{n % 3}") for n in range(60)]
    batches = [raws[k : k + 7] for k in range(0, len(raws), 7)]  # 9 batches, the last of 4
    stream = ingest_stream(store, checked(batches))
    first_run = [next(stream) for _ in range(4)]
    stream.close()  # the load stops here, as if killed after its fourth batch

    second_run = list(ingest_stream(store, checked(batches)))

    stored_first = sum(r.accepted for r in first_run)
    assert stored_first == 28
    assert sum(r.accepted for r in second_run) == 60 - 28
    assert sum(r.duplicates for r in second_run) == 28
    assert all(not r.rejected for r in (*first_run, *second_run))
    assert store.count() == 60
    stored = {e.event_id: e for c in ("cus-0", "cus-1", "cus-2") for e in store.for_customer(c)}
    assert stored == {str(raw["event_id"]): parse_event(raw) for raw in raws}


class StagingStore(InMemoryEventStore):
    """A `StagedEventStore` that notes the thread that stages each batch and the thread
    that stores it."""

    def __init__(self) -> None:
        super().__init__()
        self.staged_on: list[str] = []
        self.stored_on: list[str] = []

    def append_table(self, table: pa.Table) -> AppendResult:
        return self.stage_table(table)()

    def stage_table(self, table: pa.Table) -> Callable[[], AppendResult]:
        self.staged_on.append(threading.current_thread().name)
        events = ValidBatch(table, tuple(range(table.num_rows))).events()

        def store_it() -> AppendResult:
            self.stored_on.append(threading.current_thread().name)
            return self.append(events)

        return store_it


def test_a_staging_store_encodes_on_the_callers_thread_and_stores_on_the_writer() -> None:
    store = StagingStore()
    assert isinstance(store, StagedEventStore)
    batches = [[payment(n) for n in range(k, k + 4)] for k in (0, 4, 8)]

    reports = list(ingest_stream(store, checked(batches)))

    assert [r.accepted for r in reports] == [4, 4, 4]
    caller = threading.current_thread().name
    assert store.staged_on == [caller] * 3
    assert len(store.stored_on) == 3
    assert all(name.startswith("event-writer") for name in store.stored_on)
    stored = {e.event_id: e for e in store.for_customer("cus-1")}
    assert stored == {f"evt-{n}": parse_event(payment(n)) for n in range(12)}
