"""The online engine's state and reads, against the hand-made history worked out by hand."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.domain.definitions import feature_names
from creditline.features.domain.events import EventType, FeatureEvent, day_number, event_day
from creditline.features.domain.online import CustomerState, OnlinePlan, SumSeries
from tests.unit.features.handmade import (
    AS_OF,
    EXPECTED_A,
    assert_matches_expected,
    at,
    event,
    history,
)


def test_the_online_store_reads_what_was_worked_out_by_hand() -> None:
    store = InMemoryFeatureStore()
    store.apply(history())

    vector = store.read("A", AS_OF)

    assert set(vector) == set(feature_names())
    assert_matches_expected(dict(vector), EXPECTED_A)


def test_a_customer_without_events_has_zero_counts_and_missing_ratios() -> None:
    store = InMemoryFeatureStore()

    vector = store.read("nobody", AS_OF)

    assert vector["payment_count_30d"] == 0
    assert vector["payment_amount_365d"] == 0
    assert vector["payment_average_30d"] is None
    assert vector["account_tenure_days"] is None
    assert vector["income_stability_180d"] == 0.0
    assert vector["neighbour_delinquent_share"] is None


def test_the_day_of_an_event_is_its_date_in_china_time() -> None:
    just_after_midnight = at(0, 0, 10)

    assert just_after_midnight.astimezone(UTC).day == 28  # still the day before in UTC
    assert event_day(just_after_midnight) == event_day(at(0, 23, 59))
    assert event_day(at(-1, 23, 59)) == event_day(just_after_midnight) - 1


def test_arrival_order_does_not_change_the_vector() -> None:
    events = history()
    in_order, shuffled = InMemoryFeatureStore(), InMemoryFeatureStore()
    in_order.apply(sorted(events, key=lambda e: e.occurred_at))
    mixed = events[:]
    random.Random(4).shuffle(mixed)
    shuffled.apply(mixed)

    for customer in ("A", "B", "X"):
        assert shuffled.read(customer, AS_OF) == in_order.read(customer, AS_OF)


def test_state_round_trips_through_json() -> None:
    plan = OnlinePlan.of()
    state = plan.new_state()
    for item in history():
        if item.customer_id == "A":
            plan.apply(state, item)

    restored = CustomerState.from_data(plan, json.loads(json.dumps(state.to_data())))

    store = InMemoryFeatureStore(plan)
    assert plan.read("A", restored, 20_513, store) == plan.read("A", state, 20_513, store)


def test_a_state_keeps_only_the_series_its_events_fed() -> None:
    plan = OnlinePlan.of()
    state = plan.new_state()
    payment = event("A", EventType.PAYMENT, at(-3), amount_minor=500, category="food")

    plan.apply(state, payment)

    assert plan.new_state().to_data()["series"] == {}
    assert 0 < len(state.series) < len(plan.series)
    for name, series in state.series.items():
        assert any(series.to_data()), name  # every series kept holds something
    restored = CustomerState.from_data(plan, json.loads(json.dumps(state.to_data())))
    assert restored.to_data() == state.to_data()


def test_a_count_and_a_sum_of_the_same_source_share_one_series() -> None:
    plan = OnlinePlan.of()
    state = plan.new_state()
    for days_ago, amount in ((3, 500), (3, 700), (40, 100)):
        plan.apply(state, event("A", EventType.PAYMENT, at(-days_ago), amount_minor=amount))

    vector = plan.read("A", state, day_number(AS_OF), InMemoryFeatureStore(plan))

    assert vector["payment_count_30d"] == 2
    assert vector["payment_amount_30d"] == 1_200
    assert vector["payment_count_90d"] == 3
    assert len([name for name in state.series if name.startswith("sum:payment:")]) == 1


def test_a_transfer_needs_a_counterparty() -> None:
    with pytest.raises(ValueError, match="counterparty"):
        event("A", EventType.TRANSFER, at(-1), amount_minor=1)


@settings(max_examples=60, deadline=None)
@given(
    adds=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 1_000)), max_size=40),
    start=st.integers(-5, 65),
    length=st.integers(0, 70),
)
def test_sum_series_windows_equal_a_direct_sum(
    adds: list[tuple[int, int]], start: int, length: int
) -> None:
    series = SumSeries()
    for day, value in adds:
        series.add(day, value)

    end = start + length
    assert series.count(start, end) == sum(1 for day, _ in adds if start <= day < end)
    assert series.total(start, end) == sum(v for day, v in adds if start <= day < end)


def test_feature_events_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FeatureEvent("e", "A", EventType.PAYMENT, datetime(2026, 1, 1))  # noqa: DTZ001
