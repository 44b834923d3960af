"""Folding a batch as columns gives exactly the state of folding its events one by one.

The oracle is `OnlinePlan.apply` on each event in the order given, each transfer followed
by its mirror (`events_for_state`), with the device and flag indexes kept per event as
`login_device` and `matches` define them: the per-event path that the hand-worked and
batch-engine parity tests pin. Each store under test is fed the same events as Arrow
tables (what ingestion hands over), in batches of random sizes and in a random order
(late events and several prunes per customer inside one batch included), and must then
hold the same states (in process) and read the same vectors (both stores) for every
customer as of several days.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.adapters.redis_store import RedisFeatureStore
from creditline.features.domain.events import EVENT_COLUMNS, FeatureEvent, day_number
from creditline.features.domain.online import (
    CustomerState,
    FeatureVector,
    OnlinePlan,
    events_for_state,
    login_device,
    matches,
)
from tests.conftest import REDIS_URL, unavailable
from tests.unit.features.handmade import AS_OF, at
from tests.unit.features.test_features_online_pruning import _make, raw_events

_ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
}
SCHEMA = pa.schema([(name, _ARROW[kind]) for name, kind in EVENT_COLUMNS])


def table_of(events: list[FeatureEvent]) -> pa.Table:
    """The events as an Arrow table in the input schema, plus an extra column (ingestion
    hands over its `digest` too)."""
    rows = [{name: getattr(e, name) for name, _ in EVENT_COLUMNS} for e in events]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return table.append_column("digest", pa.array([f"d{i}" for i in range(len(events))]))


class OneByOne:
    """The reference: every event folded on its own, in order."""

    def __init__(self, plan: OnlinePlan) -> None:
        self.plan = plan
        self.states: dict[str, CustomerState] = {}
        self.devices: dict[str, dict[str, int]] = {}
        self.flags: dict[str, int] = {}

    def apply(self, events: list[FeatureEvent]) -> None:
        for event in events_for_state(events):
            state = self.states.get(event.customer_id)
            if state is None:
                state = self.states[event.customer_id] = self.plan.new_state()
            self.plan.apply(state, event)
            device = login_device(event)
            if device is not None:
                seen = self.devices.setdefault(device, {})
                seen[event.customer_id] = min(event.day, seen.get(event.customer_id, event.day))
            flag = self.plan.flag_source
            if flag is not None and matches(flag, event):
                old = self.flags.get(event.customer_id, event.day)
                self.flags[event.customer_id] = min(event.day, old)

    def device_customers(self, device_id: str) -> Mapping[str, int]:
        return self.devices.get(device_id, {})

    def flag_day(self, customer_id: str) -> int | None:
        return self.flags.get(customer_id)

    def read(self, customer_id: str, as_of_day: int) -> FeatureVector:
        return self.plan.read(customer_id, self.states[customer_id], as_of_day, self)


def _batches(events: list[FeatureEvent], sizes: list[int]) -> Iterator[list[FeatureEvent]]:
    start = 0
    for size in sizes:
        if start >= len(events):
            return
        yield events[start : start + size]
        start += size
    if start < len(events):
        yield events[start:]


def _fed(raw: list[tuple[int, str, int, int, int]], seed: int) -> list[FeatureEvent]:
    events = [_make(*item) for item in raw]
    # Dense recent activity too, and one customer's several years in one batch.
    events += [_make(n % 10, "A", n % 40, 100 + n, n % 6) for n in range(30)]
    random.Random(seed).shuffle(events)
    return events


def _as_of_days(events: list[FeatureEvent]) -> list[int]:
    newest = max(e.day for e in events)
    return [newest + 1, newest - 30, newest - 365, day_number(AS_OF)]


batch_sizes = st.lists(st.integers(1, 60), min_size=1, max_size=6)
SETTINGS: dict[str, Any] = {
    "max_examples": 40,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}


@settings(**SETTINGS)
@given(raw=raw_events, sizes=batch_sizes, seed=st.integers(0, 1_000))
def test_in_process_batch_apply_equals_per_event_apply(
    raw: list[tuple[int, str, int, int, int]], sizes: list[int], seed: int
) -> None:
    events = _fed(raw, seed)
    reference = OneByOne(OnlinePlan.of())
    reference.apply(events)
    store = InMemoryFeatureStore()
    for batch in _batches(events, sizes):
        store.apply_table(table_of(batch))

    assert store.customers() == sorted(reference.states)
    for customer in store.customers():
        assert store._states[customer].to_data() == reference.states[customer].to_data()
    assert store._devices == reference.devices
    assert store._flags == reference.flags
    for customer in store.customers():
        for day in _as_of_days(events):
            as_of = AS_OF + timedelta(days=day - day_number(AS_OF))
            assert store.read(customer, as_of) == reference.read(customer, day)


def test_the_event_path_and_the_table_path_hold_the_same_state() -> None:
    events = _fed([(k % 10, "ABC"[k % 3], (k * 37) % 2_000, 100 + k, k % 6) for k in range(300)], 3)
    by_events, by_table = InMemoryFeatureStore(), InMemoryFeatureStore()
    for batch in _batches(events, [50] * 10):
        by_events.apply(batch)
        by_table.apply_table(table_of(batch))

    for customer in by_events.customers():
        assert by_events._states[customer].to_data() == by_table._states[customer].to_data()


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(error).__name__}")
    yield client
    client.close()


@pytest.mark.redis
@settings(**{**SETTINGS, "max_examples": 25})
@given(raw=raw_events, sizes=batch_sizes, seed=st.integers(0, 1_000))
def test_redis_batch_apply_reads_like_per_event_apply(
    redis_client: redis.Redis,
    raw: list[tuple[int, str, int, int, int]],
    sizes: list[int],
    seed: int,
) -> None:
    events = _fed(raw, seed)
    reference = OneByOne(OnlinePlan.of())
    reference.apply(events)
    store = RedisFeatureStore(redis_client, prefix=f"test-batch-{uuid.uuid4().hex[:8]}")
    try:
        for batch in _batches(events, sizes):
            store.apply_table(table_of(batch))
        store.compact_many(store.customers()[::2])  # some states folded, some pending

        assert store.customers() == sorted(reference.states)
        for customer in store.customers():
            for day in _as_of_days(events):
                as_of = AS_OF + timedelta(days=day - day_number(AS_OF))
                assert store.read(customer, as_of) == reference.read(customer, day)
    finally:
        store.clear()


def test_the_reference_sees_days_in_china_time() -> None:
    # at(0, 0, 10) is D 00:10 in China, still D-1 in UTC: the reference counts it on D.
    assert _make(0, "A", 0, 1, 0).day == day_number(AS_OF)
    assert at(0, 0, 10).utcoffset() == timedelta(hours=8)
