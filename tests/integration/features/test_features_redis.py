"""The Redis store's write path: appends, compaction into the state, and reads in between."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis

from creditline.features.adapters import redis_store
from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.adapters.redis_store import COMPACT_AT, RedisFeatureStore
from creditline.features.domain.events import EventType, FeatureEvent, day_number
from tests.conftest import REDIS_URL, unavailable
from tests.unit.features.handmade import AS_OF, at, event, history

pytestmark = pytest.mark.redis


@pytest.fixture
def store() -> Iterator[RedisFeatureStore]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(error).__name__}")
    made = RedisFeatureStore(client, prefix=f"test-features-{uuid.uuid4().hex[:8]}")
    yield made
    made.clear()
    client.close()


# Ids of their own: `handmade.event` draws from a pool shared by every test module.
_payment_ids = itertools.count(1)


def payments(count: int) -> list[FeatureEvent]:
    return [
        event(
            "A",
            EventType.PAYMENT,
            at(-1 - n % 300),
            event_id=f"pay-{next(_payment_ids)}",
            amount_minor=n + 1,
            category=f"c{n % 5}",
        )
        for n in range(count)
    ]


def test_a_long_pending_list_is_folded_into_the_state(store: RedisFeatureStore) -> None:
    store.apply(payments(COMPACT_AT + 5))

    pending = store.client.llen(f"{store.prefix}:pending:A")
    assert store.client.exists(f"{store.prefix}:state:A") == 1
    assert pending < COMPACT_AT


def test_reads_between_compactions_see_every_event(store: RedisFeatureStore) -> None:
    events = history() + payments(3 * COMPACT_AT + 7)
    reference = InMemoryFeatureStore()
    reference.apply(events)

    for start in range(0, len(events), 11):
        store.apply(events[start : start + 11])
        assert store.read("A", AS_OF)["payment_count_365d"] == sum(
            1
            for e in events[: start + 11]
            if e.customer_id == "A"
            and e.event_type is EventType.PAYMENT
            and e.day < day_number(AS_OF)
        )

    assert store.read("A", AS_OF) == reference.read("A", AS_OF)
    assert store.read("X", AS_OF) == reference.read("X", AS_OF)


def test_compacting_twice_folds_nothing_twice(store: RedisFeatureStore) -> None:
    store.apply(history())
    store.compact("A")  # nothing of the history pending, whatever its length
    store.apply(payments(COMPACT_AT - 1))  # fewer than trigger a compaction: all pending
    before = store.read("A", AS_OF)

    first, second = store.compact("A"), store.compact("A")

    assert first > 0
    assert second == 0
    assert store.read("A", AS_OF) == before


def test_writers_compacting_the_same_customers_at_once_lose_and_repeat_nothing(
    store: RedisFeatureStore,
) -> None:
    """Several writers, each with its own connection, fold events of the same customers
    concurrently; the compare-and-set makes every loser retry, so the result is the
    in-process store's for the same events."""
    events = history() + payments(6 * COMPACT_AT + 3)
    reference = InMemoryFeatureStore()
    reference.apply(events)
    writers = [
        RedisFeatureStore(redis.Redis.from_url(REDIS_URL), prefix=store.prefix) for _ in range(3)
    ]
    chunks = [events[start : start + 5] for start in range(0, len(events), 5)]

    def write(index: int) -> None:
        for chunk in chunks[index :: len(writers)]:
            writers[index].apply(chunk)
            writers[index].compact("A")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for customer in ("A", "B", "C", "X"):
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)
    for writer in writers:
        writer.client.close()


def test_a_compaction_based_on_a_stale_version_is_refused(store: RedisFeatureStore) -> None:
    store.apply(payments(5))
    store.compact("A")
    store.apply(payments(3))  # one batch: one pending entry
    keys = store._compaction_keys(["A"])
    pending, version = keys[0], keys[1]
    current = store.client.get(version)

    written = store._compare_and_set_many(keys=keys, args=[b"", b"other:1", b"{}", 1])

    assert written == [0]
    assert store.client.get(version) == current
    assert store.client.llen(pending) == 1
    assert store.read("A", AS_OF)["payment_count_365d"] == 8


def test_a_batch_appends_one_pending_entry_per_customer(store: RedisFeatureStore) -> None:
    """Each customer's events of a batch go into its pending list as one entry, and a read
    folds every event of every entry."""
    batches = [payments(3), payments(4), payments(2)]
    for batch in batches:
        store.apply(batch)

    assert store.client.llen(f"{store.prefix}:pending:A") == len(batches)
    assert store.read("A", AS_OF)["payment_count_365d"] == 3 + 4 + 2
    assert store.compact("A") == 3 + 4 + 2


def test_a_writer_in_step_writes_the_state_with_the_batch_in_one_call(
    store: RedisFeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer in step with a customer whose pending events reach `COMPACT_AT` writes the
    folded state in the same script call that would have appended the batch: no second
    call, no pending entry left."""
    store.apply(payments(COMPACT_AT - 1))
    calls: list[str] = []
    send, compare_and_set = store._send_write, store._compare_and_set_many

    def counted_send(connection: Any, command: Sequence[Any]) -> None:
        calls.append("write")
        send(connection, command)

    def counted_compare_and_set(*args: Any, **kwargs: Any) -> Any:
        calls.append("compare-and-set")
        return compare_and_set(*args, **kwargs)

    monkeypatch.setattr(store, "_send_write", counted_send)
    monkeypatch.setattr(store, "_compare_and_set_many", counted_compare_and_set)

    store.apply(payments(1))

    assert calls == ["write"]
    assert store.client.llen(f"{store.prefix}:pending:A") == 0
    assert store.client.exists(f"{store.prefix}:state:A") == 1
    assert store.read("A", AS_OF)["payment_count_365d"] == COMPACT_AT


def test_a_writer_folds_into_the_state_it_wrote_without_decoding_it_again(
    store: RedisFeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer alone on its customers folds their pending events into the state it
    wrote last: it does not read that state back nor decode it."""
    first = payments(COMPACT_AT)
    store.apply(first)  # compacts A: the writer now holds A's state
    decoded: list[object] = []
    load, dump = store._load, redis_store._dump
    written: list[bytes] = []

    def counted_load(raw: Any) -> Any:
        decoded.append(raw)
        return load(raw)

    def counted_dump(state: Any) -> bytes:
        written.append(dump(state))
        return written[-1]

    monkeypatch.setattr(store, "_load", counted_load)
    monkeypatch.setattr(redis_store, "_dump", counted_dump)

    later = payments(3 * COMPACT_AT)
    for start in range(0, len(later), 5):
        store.apply(later[start : start + 5])

    assert decoded == []
    compactions, pending = 0, 0
    for start in range(0, len(later), 5):
        pending += len(later[start : start + 5])
        if pending >= COMPACT_AT:
            compactions, pending = compactions + 1, 0
    assert len(written) == compactions > 0
    monkeypatch.undo()
    reference = InMemoryFeatureStore()
    reference.apply(first + later)
    assert store.read("A", AS_OF) == reference.read("A", AS_OF)
    assert store.client.llen(f"{store.prefix}:pending:A") < COMPACT_AT


def test_a_writer_in_step_notices_the_events_another_writer_appended(
    store: RedisFeatureStore,
) -> None:
    other = RedisFeatureStore(store.client, prefix=store.prefix)
    events = payments(4 * COMPACT_AT)
    store.apply(events[:COMPACT_AT])  # compacts A: the writer holds A's state
    store.apply(events[COMPACT_AT : COMPACT_AT + 3])  # folded into it as appended
    other.apply(events[COMPACT_AT + 3 : COMPACT_AT + 5])  # appended behind its back

    store.apply(events[COMPACT_AT + 5 :])

    reference = InMemoryFeatureStore()
    reference.apply(events)
    assert store.read("A", AS_OF) == reference.read("A", AS_OF)
    store.compact("A")
    assert store.read("A", AS_OF) == reference.read("A", AS_OF)


def test_a_writer_that_missed_another_writers_compaction_never_writes_its_state(
    store: RedisFeatureStore,
) -> None:
    """Another writer compacts behind this writer's back and appends one entry, so the
    list is as long as this writer expects: its appends look in step (only the length is
    compared once it has appended since its state), but the state it folded meanwhile
    misses the other writer's events, and the compare-and-set refuses it when it is
    due; every event is folded once."""
    other = RedisFeatureStore(store.client, prefix=store.prefix)
    events = payments(4 * COMPACT_AT)
    store.apply(events[:COMPACT_AT])  # compacts A: the writer holds A's state
    store.apply(events[COMPACT_AT : COMPACT_AT + 3])  # one entry, in step
    other.apply(events[COMPACT_AT + 3 : COMPACT_AT + 5])  # appended behind its back
    other.compact("A")  # a new version, the list emptied
    other.apply(events[COMPACT_AT + 5 : COMPACT_AT + 6])  # one entry again
    assert store.client.llen(f"{store.prefix}:pending:A") == 1

    for start in range(COMPACT_AT + 6, len(events), 5):
        store.apply(events[start : start + 5])

    reference = InMemoryFeatureStore()
    reference.apply(events)
    assert store.read("A", AS_OF) == reference.read("A", AS_OF)
    store.compact("A")
    assert store.read("A", AS_OF) == reference.read("A", AS_OF)


def test_a_writer_folds_a_customer_it_does_not_hold_only_once_redis_confirms_it_new(
    store: RedisFeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that does not hold a customer (dropped from its cache, or written by
    another writer) does not fold its rows: Redis answers that it is not new, and the
    events wait in the pending list for a snapshot. A customer Redis confirms new is
    folded after the call, and held from then on."""
    events = payments(COMPACT_AT + 4)
    RedisFeatureStore(store.client, prefix=store.prefix).apply(events[:5])
    newcomer = [
        event("N", EventType.ORDER, at(-3), event_id=f"pay-{next(_payment_ids)}", amount_minor=9)
    ]
    folded: list[str] = []
    fold_held = store._fold_held

    def spied(columns: Any, held: Any, customers: Sequence[str]) -> Any:
        folded.extend(customers)
        return fold_held(columns, held, customers)

    monkeypatch.setattr(store, "_fold_held", spied)

    store.apply(events[5:8] + newcomer)

    assert folded == ["N"]
    assert set(store._cache) == {"N"}
    for start in range(8, len(events), 4):
        store.apply(events[start : start + 4])
    monkeypatch.undo()
    reference = InMemoryFeatureStore()
    reference.apply(events + newcomer)
    for customer in ("A", "N"):
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)
        store.compact(customer)
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_a_batch_folds_in_step_customers_in_memory_and_the_others_from_redis(
    store: RedisFeatureStore,
) -> None:
    """One batch where the writer is in step with A but not with B (another writer
    appended to B behind its back): A is folded from the batch, B from a snapshot, and
    both read like the in-process store."""
    other = RedisFeatureStore(store.client, prefix=store.prefix)
    a_events = payments(3 * COMPACT_AT)
    b_events = [
        event(
            "B",
            EventType.ORDER,
            at(-1 - n % 40),
            event_id=f"pay-{next(_payment_ids)}",
            amount_minor=10 + n,
            category=f"k{n % 3}",
        )
        for n in range(3 * COMPACT_AT)
    ]
    store.apply(a_events[:COMPACT_AT] + b_events[:COMPACT_AT])  # holds A and B, in step
    other.apply(b_events[COMPACT_AT : COMPACT_AT + 2])  # B moves on behind its back

    store.apply(a_events[COMPACT_AT:] + b_events[COMPACT_AT + 2 :])

    reference = InMemoryFeatureStore()
    reference.apply(a_events + b_events)
    for customer in ("A", "B"):
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)
        store.compact(customer)
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_a_writer_without_a_cache_folds_every_compaction_from_redis(
    store: RedisFeatureStore,
) -> None:
    uncached = RedisFeatureStore(store.client, prefix=store.prefix, cached_states=0)
    events = history() + payments(3 * COMPACT_AT + 5)

    for start in range(0, len(events), 7):
        uncached.apply(events[start : start + 7])

    reference = InMemoryFeatureStore()
    reference.apply(events)
    assert uncached._cache == {}
    for customer in ("A", "B", "C", "X"):
        assert uncached.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_a_writer_whose_cache_is_smaller_than_the_population_reads_like_the_in_process_store(
    store: RedisFeatureStore,
) -> None:
    """Two customers' states fit in the cache, five customers write: customers keep being
    dropped and come back as not held (appended, folded from snapshots, held again), and
    every vector is the in-process store's."""
    small = RedisFeatureStore(store.client, prefix=store.prefix, cached_states=2)
    customers = ["P", "Q", "R", "S", "T"]
    events = history() + [
        event(
            customers[n % len(customers)],
            EventType.ORDER,
            at(-1 - n % 200),
            event_id=f"pay-{next(_payment_ids)}",
            amount_minor=100 + n,
            category=f"k{n % 6}",
        )
        for n in range(3 * COMPACT_AT * len(customers))
    ]

    for start in range(0, len(events), 9):
        small.apply(events[start : start + 9])

    assert len(small._cache) <= 2
    reference = InMemoryFeatureStore()
    reference.apply(events)
    for customer in ["A", "B", "C", "X", *customers]:
        assert small.read(customer, AS_OF) == reference.read(customer, AS_OF)
        small.compact(customer)
        assert small.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_a_writer_holding_a_state_sees_the_keys_cleared_under_it(
    store: RedisFeatureStore,
) -> None:
    """Versions are never reused: after another writer cleared the keys and wrote a new
    state, the state this writer holds is not mistaken for the stored one."""
    store.apply(payments(COMPACT_AT + 5))  # compacts A: the writer holds A's state
    other = RedisFeatureStore(store.client, prefix=store.prefix)
    other.clear()
    later = [
        event(
            "A",
            EventType.PAYMENT,
            at(-2),
            event_id=f"pay-{next(_payment_ids)}",
            amount_minor=7,
            category="new",
        )
        for _ in range(3 * COMPACT_AT)
    ]
    other.apply(later[:COMPACT_AT])  # compacts A anew

    store.apply(later[COMPACT_AT:])

    reference = InMemoryFeatureStore()
    reference.apply(later)
    assert store.read("A", AS_OF) == reference.read("A", AS_OF)


@pytest.mark.parametrize("per_call", [redis_store.SCRIPT_CUSTOMERS, 1])
@pytest.mark.parametrize("lost", ["before the write", "after the write"])
def test_a_write_whose_call_failed_folds_its_events_once(
    store: RedisFeatureStore, monkeypatch: pytest.MonkeyPatch, lost: str, per_call: int
) -> None:
    """The state a writer holds is folded into only once it is out of the cache: whether
    the connection was lost before the script ran (the batch is then sent again, as
    ingestion retries a failed hand-over) or after it ran (its reply is lost), no event is
    folded twice and none is lost. With one customer per call, a batch is several calls,
    the next sent before the reply to the current one is read: the lost reply leaves a
    call that ran but was never confirmed behind it."""
    monkeypatch.setattr(redis_store, "SCRIPT_CUSTOMERS", per_call)
    events = history() + payments(3 * COMPACT_AT)
    first, second, third = events[:-40], events[-40:-20], events[-20:]
    store.apply(first)
    send, receive = store._send_write, store._receive_write

    def fail_to_send(connection: Any, command: Sequence[Any]) -> None:
        raise redis.ConnectionError(f"lost the connection {lost}")

    def fail_to_receive(connection: Any, command: Sequence[Any]) -> list[Any]:
        receive(connection, command)  # the script ran
        raise redis.ConnectionError(f"lost the connection {lost}")

    if lost == "after the write":
        monkeypatch.setattr(store, "_receive_write", fail_to_receive)
    else:
        monkeypatch.setattr(store, "_send_write", fail_to_send)
    with pytest.raises(redis.ConnectionError):
        store.apply(second)
    monkeypatch.setattr(store, "_send_write", send)
    monkeypatch.setattr(store, "_receive_write", receive)
    if lost == "before the write":
        store.apply(second)
    store.apply(third)
    store.compact("A")

    reference = InMemoryFeatureStore()
    reference.apply(events)
    for customer in ("A", "B", "C", "X"):
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_a_write_loads_its_script_into_a_redis_that_lost_it(store: RedisFeatureStore) -> None:
    """Redis forgets its scripts when it restarts or they are flushed: a write whose call
    finds the script missing (so it did not run) loads it and sends the call again, and
    every event is folded once."""
    events = history() + payments(COMPACT_AT + 5)
    store.apply(events[:10])
    store.client.script_flush()

    store.apply(events[10:])

    reference = InMemoryFeatureStore()
    reference.apply(events)
    for customer in ("A", "B", "C", "X"):
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_calls_sent_ahead_of_their_replies_are_sent_again_when_the_script_was_lost(
    store: RedisFeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of several calls keeps `PIPELINED_CALLS` of them sent ahead of their
    replies; if Redis lost the script, every one of them fails without running, is sent
    again once the script is loaded, and each event is folded once."""
    monkeypatch.setattr(redis_store, "SCRIPT_CUSTOMERS", 1)
    events = history() + payments(COMPACT_AT + 5)
    store.apply(events[:10])
    store.client.script_flush()
    sent: list[int] = []
    send = store._send_write

    def counted(connection: Any, command: Sequence[Any]) -> None:
        sent.append(len(command))
        send(connection, command)

    monkeypatch.setattr(store, "_send_write", counted)

    store.apply(events[10:])

    customers = {e.customer_id for e in events[10:]} | {
        e.counterparty_id for e in events[10:] if e.event_type is EventType.TRANSFER
    }
    customers.discard(None)
    # Each customer is one call; the first failed and was sent again, and so was any
    # other sent before the script was loaded again (at most PIPELINED_CALLS in all).
    assert len(customers) > redis_store.PIPELINED_CALLS
    assert len(customers) + 1 <= len(sent) <= len(customers) + redis_store.PIPELINED_CALLS
    reference = InMemoryFeatureStore()
    reference.apply(events)
    for customer in ("A", "B", "C", "X"):
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)


def test_a_batch_writes_at_most_script_states_states_per_call(
    store: RedisFeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five customers whose pending events all reach `COMPACT_AT` in one batch are written
    in calls of at most two states each (`SCRIPT_STATES` = 2 here), and read like the
    in-process store."""
    monkeypatch.setattr(redis_store, "SCRIPT_STATES", 2)
    customers = ["P", "Q", "R", "S", "T"]
    events = [
        event(
            customer,
            EventType.ORDER,
            at(-1 - n),
            event_id=f"pay-{next(_payment_ids)}",
            amount_minor=100 + n,
            category=f"k{n % 4}",
        )
        for n in range(COMPACT_AT)
        for customer in customers
    ]
    calls: list[int] = []
    send = store._send_write

    def counted(connection: Any, command: Sequence[Any]) -> None:
        calls.append(len(command))
        send(connection, command)

    monkeypatch.setattr(store, "_send_write", counted)

    store.apply(events)

    assert len(calls) == 3  # 2 + 2 + 1 states
    reference = InMemoryFeatureStore()
    reference.apply(events)
    for customer in customers:
        assert store.client.llen(f"{store.prefix}:pending:{customer}") == 0
        assert store.read(customer, AS_OF) == reference.read(customer, AS_OF)
