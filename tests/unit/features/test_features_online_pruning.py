"""The online state is bounded in time: pruning never changes a read it promises to keep.

A store whose plan prunes (the default, `RETAIN_DAYS`) and one that keeps everything
(`retain_days=None`, the reference) fold the same events, in any order; every read as of
a day no earlier than 365 days before the newest event must be the same vector. The
pruned state must also stop growing with time.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.domain.events import EventType, FeatureEvent
from creditline.features.domain.online import (
    PRUNE_EVERY_DAYS,
    RETAIN_DAYS,
    KeyedDays,
    LatestSeries,
    MaxSeries,
    OnlinePlan,
    SumSeries,
)
from tests.unit.features.handmade import AS_OF, at, on

CUSTOMERS = ("A", "B", "C")
SPAN_DAYS = 2_200  # six years: most of the history falls behind the horizon
_ids = count()


def _handmade_event(customer: str, kind: EventType, when: datetime, **fields: Any) -> FeatureEvent:
    return FeatureEvent(f"prune-{next(_ids):07d}", customer, kind, when, **fields)


def _make(kind: int, customer: str, days_ago: int, amount: int, key: int) -> FeatureEvent:
    return _event(kind, customer, days_ago, amount, key)


def _event(kind: int, customer: str, days_ago: int, amount: int, key: int) -> FeatureEvent:
    when = at(-days_ago, hour=1 + key % 20)
    due = on(-days_ago - key % 3)
    match kind:
        case 0:
            return _handmade_event(
                customer, EventType.PAYMENT, when, amount_minor=amount, category=f"c{key}"
            )
        case 1:
            return _handmade_event(
                customer, EventType.ORDER, when, amount_minor=amount, category=f"c{key}"
            )
        case 2:
            return _handmade_event(customer, EventType.REFUND, when, amount_minor=amount)
        case 3:
            return _handmade_event(
                customer,
                EventType.BILL,
                when,
                product_id=f"p{key}",
                due_on=due,
                amount_due_minor=amount,
                credit_limit_minor=amount + key,
            )
        case 4:
            late = on(-days_ago - 40 * (key % 2))
            return _handmade_event(
                customer,
                EventType.BILL_REPAYMENT,
                when,
                product_id=f"p{key}",
                due_on=late,
                amount_minor=amount,
            )
        case 5:
            return _handmade_event(
                customer,
                EventType.DEVICE_LOGIN,
                when,
                device_id=f"d{key}",
                is_sim_change=key % 3 == 0,
            )
        case 6:
            other = CUSTOMERS[key % len(CUSTOMERS)]
            if other == customer:
                other = f"outside-{key}"
            return _handmade_event(
                customer, EventType.TRANSFER, when, amount_minor=amount, counterparty_id=other
            )
        case 7:
            category = "savings" if key % 2 else "wealth"
            return _handmade_event(
                customer, EventType.BALANCE, when, amount_minor=amount, category=category
            )
        case 8:
            return _handmade_event(customer, EventType.PROFILE_UPDATE, when, amount_minor=amount)
        case _:
            return _handmade_event(
                customer,
                EventType.ALTERNATIVE_PAYMENT,
                when,
                category="utility",
                due_on=due,
                amount_minor=amount,
            )


raw_events = st.lists(
    st.tuples(
        st.integers(0, 9),
        st.sampled_from(CUSTOMERS),
        st.integers(0, SPAN_DAYS),
        st.integers(1, 10_000),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(raw=raw_events, shuffle_seed=st.integers(0, 1_000))
def test_a_pruned_state_reads_like_the_full_history(
    raw: list[tuple[int, str, int, int, int]], shuffle_seed: int
) -> None:
    events = [_make(*item) for item in raw]
    # Dense recent activity too, so that pruning has something recent to keep.
    events += [_make(n % 10, "A", n % 40, 100 + n, n % 6) for n in range(30)]
    pruned, full = InMemoryFeatureStore(), InMemoryFeatureStore(OnlinePlan.of(retain_days=None))
    full.apply(events)
    shuffled = events[:]
    random.Random(shuffle_seed).shuffle(shuffled)
    pruned.apply(shuffled)

    newest = max(e.occurred_at for e in events).astimezone(at(0).tzinfo).date()
    for offset in (-365, -200, -35, 1, 36, 364):
        as_of = newest + timedelta(days=offset)
        for customer in CUSTOMERS:
            assert pruned.read(customer, as_of) == full.read(customer, as_of), (customer, offset)


def _sizes(plan: OnlinePlan, days: int) -> int:
    state = plan.new_state()
    for n in range(days):
        for kind in range(10):
            plan.apply(state, _make(kind, "A", days - n, 10 + n, n % 6))
    total = 0
    for series in state.series.values():
        match series:
            case SumSeries() | MaxSeries():
                total += len(series.days)
            case KeyedDays():
                total += sum(len(d) for d in series.days_by_key.values())
            case LatestSeries():
                total += len(series.entries)
    return total


def test_the_state_stops_growing_with_time() -> None:
    plan = OnlinePlan.of()
    four_years, eight_years = _sizes(plan, 1_460), _sizes(plan, 2_920)

    # Equal up to where each falls in the pruning cycle (every PRUNE_EVERY_DAYS days).
    assert abs(eight_years - four_years) <= four_years * PRUNE_EVERY_DAYS / RETAIN_DAYS
    # And it is bounded by the retained days, not by the history.
    unpruned = _sizes(OnlinePlan.of(retain_days=None), 2_920)
    assert eight_years < unpruned / 3
    assert RETAIN_DAYS + PRUNE_EVERY_DAYS < 2_920 / 3


def test_the_retention_must_cover_the_longest_window() -> None:
    with pytest.raises(ValueError, match="longest window"):
        OnlinePlan.of(retain_days=300)


def test_a_read_as_of_today_after_years_of_events_matches_the_full_history() -> None:
    events = [_make(n % 10, "A", n, 1_000 + n, n % 6) for n in range(0, 2_000, 3)]
    pruned, full = InMemoryFeatureStore(), InMemoryFeatureStore(OnlinePlan.of(retain_days=None))
    pruned.apply(events)
    full.apply(events)

    assert pruned.read("A", AS_OF) == full.read("A", AS_OF)
    assert pruned.read("A", AS_OF)["account_tenure_days"] == 1_998
