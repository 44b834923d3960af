"""The in-process online feature store, the embedded default.

State lives in dictionaries: one `CustomerState` per customer, plus the two indexes the
graph features read (who logged in on each device and when first; when each customer
first had a flag event, e.g. a repayment 90+ days late).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from creditline.features.domain.events import FeatureEvent, day_number
from creditline.features.domain.online import (
    CustomerState,
    FeatureVector,
    OnlinePlan,
    events_for_state,
    login_device,
    matches,
)


class InMemoryFeatureStore:
    def __init__(self, plan: OnlinePlan | None = None) -> None:
        self.plan = plan or OnlinePlan.of()
        self._states: dict[str, CustomerState] = {}
        self._devices: dict[str, dict[str, int]] = {}
        self._flags: dict[str, int] = {}

    def apply(self, events: Iterable[FeatureEvent]) -> int:
        applied = 0
        for event in events_for_state(events):
            state = self._states.get(event.customer_id)
            if state is None:
                state = self._states[event.customer_id] = self.plan.new_state()
            self.plan.apply(state, event)
            self._index(event)
            applied += 1
        return applied

    def _index(self, event: FeatureEvent) -> None:
        day = event.day
        device = login_device(event)
        if device is not None:
            seen = self._devices.setdefault(device, {})
            seen[event.customer_id] = min(day, seen.get(event.customer_id, day))
        flag = self.plan.flag_source
        if flag is not None and matches(flag, event):
            self._flags[event.customer_id] = min(day, self._flags.get(event.customer_id, day))

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        state = self._states.get(customer_id) or self.plan.new_state()
        return self.plan.read(customer_id, state, day_number(as_of), self)

    def customers(self) -> list[str]:
        return sorted(self._states)

    def device_customers(self, device_id: str) -> Mapping[str, int]:
        return self._devices.get(device_id, {})

    def flag_day(self, customer_id: str) -> int | None:
        return self._flags.get(customer_id)
