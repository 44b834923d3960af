"""The Redis store's write path: appends, compaction into the state, and reads in between."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

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


def payments(count: int) -> list[FeatureEvent]:
    return [
        event("A", EventType.PAYMENT, at(-1 - n % 300), amount_minor=n + 1, category=f"c{n % 5}")
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
    state, version, pending = (store._key(k, "A") for k in ("state", "version", "pending"))
    store.compact("A")
    store.apply(payments(3))

    written = store._compare_and_set(keys=[state, version, pending], args=[b"", b"stale", 3])

    assert written == 0
    assert store.client.llen(pending) == 3
    assert store.read("A", AS_OF)["payment_count_365d"] == 8
