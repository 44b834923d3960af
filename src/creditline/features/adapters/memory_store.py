"""The in-process online feature store, the embedded default.

State lives in dictionaries: one `CustomerState` per customer, plus the two indexes the
graph features read (who logged in on each device and when first; when each customer
first had a flag event, e.g. a repayment 90+ days late).

A batch is folded as columns (`OnlinePlan.apply_columns`), whether it comes as events
(`apply`) or as the Arrow table ingestion stored (`apply_table`): the same state as
folding its events one by one, with no object per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from itertools import islice

import pyarrow as pa

from creditline.features.adapters.parquet_events import columns_from_table
from creditline.features.domain.columns import EventColumns
from creditline.features.domain.events import FeatureEvent, day_number
from creditline.features.domain.online import CustomerState, FeatureVector, OnlinePlan

#: Events folded per batch by `apply` (a batch's columns are held in memory at once).
CHUNK = 65_536


class InMemoryFeatureStore:
    def __init__(self, plan: OnlinePlan | None = None) -> None:
        self.plan = plan or OnlinePlan.of()
        self._states: dict[str, CustomerState] = {}
        self._devices: dict[str, dict[str, int]] = {}
        self._flags: dict[str, int] = {}

    def apply(self, events: Iterable[FeatureEvent]) -> int:
        # In chunks, so that a whole event table (the start-up rebuild) streams through.
        applied = 0
        iterator = iter(events)
        while chunk := list(islice(iterator, CHUNK)):
            applied += self.apply_columns(EventColumns.of_events(chunk))
        return applied

    def apply_table(self, table: pa.Table) -> int:
        """Fold the rows of an Arrow table of stored events (`EVENT_COLUMNS`, any extra
        columns ignored); returns how many events, transfers' mirrors included."""
        return self.apply_columns(columns_from_table(table))

    def apply_columns(self, columns: EventColumns) -> int:
        """Fold a batch given as columns (mirrors included); returns how many rows."""
        self.plan.apply_columns(columns, self._state_of)
        devices, flags = self.plan.index_columns(columns)
        for device, firsts in devices.items():
            seen = self._devices.setdefault(device, {})
            for customer, day in firsts.items():
                old = seen.get(customer)
                if old is None or day < old:
                    seen[customer] = day
        for customer, day in flags.items():
            old = self._flags.get(customer)
            if old is None or day < old:
                self._flags[customer] = day
        return len(columns)

    def _state_of(self, customer_id: str) -> CustomerState:
        state = self._states.get(customer_id)
        if state is None:
            state = self._states[customer_id] = self.plan.new_state()
        return state

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        state = self._states.get(customer_id) or self.plan.new_state()
        return self.plan.read(customer_id, state, day_number(as_of), self)

    def customers(self) -> list[str]:
        return sorted(self._states)

    def device_customers(self, device_id: str) -> Mapping[str, int]:
        return self._devices.get(device_id, {})

    def flag_day(self, customer_id: str) -> int | None:
        return self._flags.get(customer_id)
