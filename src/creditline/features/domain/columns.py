"""A batch of feature events as columns: what the online state folds in one pass.

`FeatureEvent` is one object per event; a batch that arrives as columns (an Arrow table
from ingestion, the pending lists of a Redis store) is folded without building one: each
column is a plain list and row `i` of every list is one event. The rules it keeps are
those of `FeatureEvent`:

- the day of a row is its calendar date in China time (`day`), days late is
  `max(0, day − due day)` and only for rows with a due day (`days_late`);
- **a transfer ties two customers**: `build(..., mirror=True)` adds, for each transfer
  with a counterparty, its `transfer_in` mirror on the receiving customer (as
  `FeatureEvent.mirrored` does), so the state sees both ends;
- **order is kept**: `order` lists the rows in the order the events were given, each
  mirror right after its transfer (where `events_for_state` puts it). A customer's state
  is pruned as its newest day advances, so the fold walks the rows in this order to prune
  at the very same points as folding the events one by one.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from creditline.features.domain.events import (
    CHINA_OFFSET_SECONDS,
    MICROS_PER_SECOND,
    SECONDS_PER_DAY,
    EventType,
    FeatureEvent,
    day_number,
)

#: The value columns of a row besides its id, customer, type, instant and due day.
VALUE_COLUMNS = (
    "amount_minor",
    "category",
    "counterparty_id",
    "device_id",
    "is_sim_change",
    "product_id",
    "amount_due_minor",
    "credit_limit_minor",
)
_DAY_MICROS = SECONDS_PER_DAY * MICROS_PER_SECOND
_OFFSET_MICROS = CHINA_OFFSET_SECONDS * MICROS_PER_SECOND
_TYPES: dict[str, EventType] = {t.value: t for t in EventType}


@dataclass(frozen=True, slots=True)
class EventColumns:
    """Feature events as parallel lists; row `i` of every list is one event."""

    event_id: list[str]
    customer_id: list[str]
    event_type: list[EventType]
    #: The instant, whole microseconds since 1970-01-01T00:00Z.
    micros: list[int]
    #: The day of the instant in China time (`events.event_day`).
    day: list[int]
    #: The due date of a row as a day number (None without one), and its days late.
    due_day: list[int | None]
    days_late: list[int | None]
    #: `VALUE_COLUMNS` by name.
    values: dict[str, list[Any]]
    #: The rows in the order the events were given (mirrors right after their transfer).
    order: list[int]

    def __len__(self) -> int:
        return len(self.event_id)

    def column(self, name: str) -> list[Any]:
        """A value column, or `days_late`, by the name a `Where` or a series uses."""
        return self.days_late if name == "days_late" else self.values[name]

    @classmethod
    def build(
        cls,
        *,
        event_id: list[str],
        customer_id: list[str],
        event_type: Sequence[str],
        micros: list[int],
        due_day: list[int | None],
        values: dict[str, list[Any]],
        mirror: bool = True,
    ) -> EventColumns:
        """Columns from plain lists (event types as values or members, due dates as day
        numbers); with `mirror`, each transfer's `transfer_in` mirror is added."""
        types = [_TYPES[t] for t in event_type]
        size = len(event_id)
        columns = {name: values[name] for name in VALUE_COLUMNS}
        order = list(range(size))
        if mirror:
            counterparties = columns["counterparty_id"]
            transfers = [
                row
                for row, kind in enumerate(types)
                if kind is EventType.TRANSFER and counterparties[row] is not None
            ]
            if transfers:
                event_id = event_id + [event_id[row] for row in transfers]
                mirrored_customers = [counterparties[row] for row in transfers]
                mirrored_partners = [customer_id[row] for row in transfers]
                customer_id = customer_id + mirrored_customers
                types = types + [EventType.TRANSFER_IN] * len(transfers)
                micros = micros + [micros[row] for row in transfers]
                due_day = due_day + [due_day[row] for row in transfers]
                columns = {
                    name: column + [column[row] for row in transfers]
                    for name, column in columns.items()
                }
                columns["counterparty_id"][size:] = mirrored_partners
                order = _interleave(size, transfers)
        days = [(m + _OFFSET_MICROS) // _DAY_MICROS for m in micros]
        days_late = [
            None if due is None else max(0, day - due)
            for day, due in zip(days, due_day, strict=True)
        ]
        return cls(event_id, customer_id, types, micros, days, due_day, days_late, columns, order)

    @classmethod
    def of_events(cls, events: Iterable[FeatureEvent], *, mirror: bool = True) -> EventColumns:
        """The columns of `FeatureEvent`s (with each transfer's mirror, by default)."""
        rows = list(events)
        return cls.build(
            event_id=[e.event_id for e in rows],
            customer_id=[e.customer_id for e in rows],
            event_type=[e.event_type for e in rows],
            micros=[e.occurred_at_micros for e in rows],
            due_day=[None if e.due_on is None else day_number(e.due_on) for e in rows],
            values={name: [getattr(e, name) for e in rows] for name in VALUE_COLUMNS},
            mirror=mirror,
        )

    def of_customers(self, customers: Container[str]) -> EventColumns:
        """The rows of these customers only, in the order they were given."""
        owners = self.customer_id
        rows = [row for row in self.order if owners[row] in customers]

        def pick(column: list[Any]) -> list[Any]:
            return [column[row] for row in rows]

        return EventColumns(
            pick(self.event_id),
            pick(owners),
            pick(self.event_type),
            pick(self.micros),
            pick(self.day),
            pick(self.due_day),
            pick(self.days_late),
            {name: pick(column) for name, column in self.values.items()},
            list(range(len(rows))),
        )

    def customers_in_order(self) -> list[str]:
        """Each customer with a row, in the order of its first row."""
        customers = self.customer_id
        return list(dict.fromkeys(customers[row] for row in self.order))


def _interleave(size: int, transfers: list[int]) -> list[int]:
    """Rows 0 … size−1 in order, with mirror row size + k right after row transfers[k]."""
    order: list[int] = []
    start = 0
    for k, row in enumerate(transfers):
        order.extend(range(start, row + 1))
        order.append(size + k)
        start = row + 1
    order.extend(range(start, size))
    return order
