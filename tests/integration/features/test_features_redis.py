"""The Redis store's write path: appends, compaction into the state, and reads in between."""

from __future__ import annotations

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
    before = store.read("A", AS_OF)

    first, second = store.compact("A"), store.compact("A")

    assert first > 0
    assert second == 0
    assert store.read("A", AS_OF) == before
