"""Clock and ages: time is an input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from creditline.shared.clock import FixedClock, age_on, local_date


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2000, 6, 15), date(2018, 6, 14), 17),
        (date(2000, 6, 15), date(2018, 6, 15), 18),
        (date(2000, 2, 29), date(2018, 2, 28), 17),
        (date(2000, 2, 29), date(2018, 3, 1), 18),
    ],
)
def test_age_counts_whole_years(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_local_date_is_china_time() -> None:
    assert local_date(datetime(2026, 1, 1, 16, 30, tzinfo=UTC)) == date(2026, 1, 2)


def test_a_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))

    clock.advance(timedelta(hours=2))

    assert clock.now() == datetime(2026, 1, 1, 2, tzinfo=UTC)


def test_a_fixed_clock_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        FixedClock(datetime(2026, 1, 1))  # noqa: DTZ001
