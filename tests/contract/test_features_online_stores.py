"""Every online feature store (in process, Redis) keeps the same state and reads the same."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis

from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.adapters.redis_store import RedisFeatureStore
from creditline.features.domain.definitions import feature_names
from creditline.features.domain.events import EventType
from creditline.features.ports import OnlineFeatureStore
from tests.conftest import REDIS_URL, unavailable
from tests.unit.features.handmade import (
    AS_OF,
    EXPECTED_A,
    assert_matches_expected,
    at,
    event,
    history,
)

StoreFactory = Callable[[], OnlineFeatureStore]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def new_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """A factory of stores that share one state (a second process, for Redis)."""
    if request.param == "memory":
        shared = InMemoryFeatureStore()
        yield lambda: shared
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(error).__name__}")
    prefix = f"test-features-{uuid.uuid4().hex[:8]}"
    made: list[RedisFeatureStore] = []

    def make() -> OnlineFeatureStore:
        made.append(RedisFeatureStore(redis.Redis.from_url(REDIS_URL), prefix=prefix))
        return made[-1]

    yield make
    RedisFeatureStore(client, prefix=prefix).clear()
    client.close()


def test_a_store_reads_what_was_worked_out_by_hand(new_store: StoreFactory) -> None:
    new_store().apply(history())

    vector = new_store().read("A", AS_OF)

    assert tuple(vector) == feature_names()
    assert_matches_expected(dict(vector), EXPECTED_A)


def test_events_applied_in_several_batches_give_the_same_vector(new_store: StoreFactory) -> None:
    events = history()
    store = new_store()
    for start in range(0, len(events), 7):
        store.apply(events[start : start + 7])

    assert_matches_expected(dict(new_store().read("A", AS_OF)), EXPECTED_A)


def test_reading_as_of_a_later_day_counts_the_newer_events(new_store: StoreFactory) -> None:
    new_store().apply(history())

    later = new_store().read("A", AS_OF + timedelta(days=6))

    # D 00:10 (800) and D+5 (1 600) now count; D-30 and D-31 left the 30-day window.
    assert later["payment_count_30d"] == 3
    assert later["payment_amount_30d"] == 100 + 800 + 1_600
    assert later["declared_monthly_income"] == 99_999
    assert later["shared_device_customers"] == 2  # C arrived on dev-1 at D+3


def test_a_new_event_is_visible_to_the_next_read(new_store: StoreFactory) -> None:
    store = new_store()
    store.apply(history())
    before = store.read("A", AS_OF)

    store.apply([event("A", EventType.PAYMENT, at(-2), amount_minor=50, category="health")])

    after = new_store().read("A", AS_OF)
    assert after["payment_count_30d"] == before["payment_count_30d"] + 1  # type: ignore[operator]
    assert after["category_diversity_90d"] == 5


def test_every_customer_with_an_event_has_state(new_store: StoreFactory) -> None:
    new_store().apply(history())

    assert new_store().customers() == ["A", "B", "C", "X", "Y", "Z"]


def test_an_unknown_customer_reads_as_empty(new_store: StoreFactory) -> None:
    vector = new_store().read("nobody", AS_OF)

    assert vector["order_count_365d"] == 0
    assert vector["declared_monthly_income"] is None
