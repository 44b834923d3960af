"""Time is an input.

A `Clock` gives the wall-clock instant (always timezone-aware UTC) for timestamps such as
`created_at`. The *business date* is separate: the lending day that interest accrues on.
Only the end-of-day job advances it; it is persisted by a `BusinessDateStore` adapter.
Nothing in creditline calls `datetime.now()` on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

#: Mainland China time, in which business dates and customers' ages are reckoned.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that stands still until told to move (tests, replays, simulations)."""

    instant: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        if self.instant.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware instant")

    def now(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


def local_date(instant: datetime) -> date:
    """The calendar date of `instant` in China time."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(CHINA_TZ).date()


def age_on(birth_date: date, on: date) -> int:
    """Whole years of age on a date (a 29 February birthday counts on 1 March)."""
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years
