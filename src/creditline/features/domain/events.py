"""The feature store's input: behaviour events in one normalised, typed shape.

Every engine (DuckDB, Spark, online) reads events through this one contract, so that
they cannot disagree about what an event says. The rules it keeps:

- **The day of an event** is its calendar date in China time (UTC+8, no daylight saving),
  counted as whole days since 1970-01-01 (`event_day`). Features "as of D" use only events
  whose day is before D: an event on D itself or later changes nothing.
- **Days late** of a repayment is `max(0, day paid − due day)`; it is defined only for
  events that carry a `due_on` (bill repayments and utility, phone and transit payments).
- **A transfer ties two customers.** Each engine mirrors a `transfer` from A to B into a
  `transfer_in` event of B with A as counterparty (`mirrored`), so that graph and income
  features see both ends.

Money is integer fen (`*_minor`). Instants are timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

EPOCH = date(1970, 1, 1)
#: China time is UTC+8 all year round.
CHINA_OFFSET_SECONDS = 8 * 3600
SECONDS_PER_DAY = 86_400
MICROS_PER_SECOND = 1_000_000
_EPOCH_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)


class EventType(StrEnum):
    """The kinds of behaviour event the features read."""

    PROFILE_UPDATE = "profile_update"  # amount_minor: declared monthly income
    PAYMENT = "payment"  # amount_minor, category: merchant category
    ORDER = "order"  # amount_minor, category: product category
    REFUND = "refund"  # amount_minor: refunded amount of an order
    BILL = "bill"  # a statement of another credit product: product_id, due_on, amounts
    BILL_REPAYMENT = "bill_repayment"  # product_id, due_on, amount_minor paid
    ALTERNATIVE_PAYMENT = "alternative_payment"  # category: utility|phone|transit; due_on
    TRANSFER = "transfer"  # amount_minor sent to counterparty_id
    TRANSFER_IN = "transfer_in"  # the mirror of a transfer, on the receiving customer
    DEVICE_LOGIN = "device_login"  # device_id, is_sim_change
    BALANCE = "balance"  # amount_minor: savings and wealth balance at that instant


#: Column names and their logical types, in the order the Parquet input has them.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("customer_id", "string"),
    ("event_type", "string"),
    ("occurred_at", "timestamp[us, UTC]"),
    ("amount_minor", "int64"),
    ("category", "string"),
    ("counterparty_id", "string"),
    ("device_id", "string"),
    ("is_sim_change", "bool"),
    ("product_id", "string"),
    ("due_on", "date"),
    ("amount_due_minor", "int64"),
    ("credit_limit_minor", "int64"),
)


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """One behaviour event as the feature engines see it; unused fields are None."""

    event_id: str
    customer_id: str
    event_type: EventType
    occurred_at: datetime
    amount_minor: int | None = None
    category: str | None = None
    counterparty_id: str | None = None
    device_id: str | None = None
    is_sim_change: bool | None = None
    product_id: str | None = None
    due_on: date | None = None
    amount_due_minor: int | None = None
    credit_limit_minor: int | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"{self.event_id}: occurred_at must be timezone-aware")
        if self.event_type is EventType.TRANSFER and not self.counterparty_id:
            raise ValueError(f"{self.event_id}: a transfer needs a counterparty_id")

    @property
    def day(self) -> int:
        return event_day(self.occurred_at)

    @property
    def days_late(self) -> int | None:
        if self.due_on is None:
            return None
        return max(0, self.day - day_number(self.due_on))

    @property
    def occurred_at_micros(self) -> int:
        return micros_since_epoch(self.occurred_at)

    def mirrored(self) -> FeatureEvent | None:
        """The `transfer_in` event of the receiving customer, for a transfer; else None."""
        if self.event_type is not EventType.TRANSFER or self.counterparty_id is None:
            return None
        return replace(
            self,
            customer_id=self.counterparty_id,
            counterparty_id=self.customer_id,
            event_type=EventType.TRANSFER_IN,
        )


def micros_since_epoch(instant: datetime) -> int:
    """Whole microseconds since 1970-01-01T00:00Z (exact: no float on the way)."""
    delta = instant - _EPOCH_INSTANT
    return (delta.days * SECONDS_PER_DAY + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def event_day(instant: datetime) -> int:
    """The day number of `instant`'s calendar date in China time."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    offset_micros = CHINA_OFFSET_SECONDS * MICROS_PER_SECOND
    return (micros_since_epoch(instant) + offset_micros) // (SECONDS_PER_DAY * MICROS_PER_SECOND)


def day_number(on: date) -> int:
    """Whole days from 1970-01-01 to `on`."""
    return (on - EPOCH).days


def date_of_day(day: int) -> date:
    return EPOCH + timedelta(days=day)
