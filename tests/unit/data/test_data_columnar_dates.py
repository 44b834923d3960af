"""Dates given as `date` objects (rows read from Parquet) are taken as they are, in one
Arrow conversion, exactly as `parse_event` takes them; an instant where a date belongs is
still refused with `parse_event`'s own message (the expected values come from it)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from creditline.data.columnar import validate_batch
from creditline.data.domain.events import EventType, parse_event
from creditline.shared.errors import InvalidInputError
from tests.unit.data.test_data_events import BASE, GOOD


def bill(n: int, due_on: object) -> dict[str, object]:
    return {
        **BASE,
        "event_id": f"evt-{n}",
        "event_type": "bill",
        **GOOD[EventType.BILL],
        "due_on": due_on,
    }


def test_date_objects_are_stored_as_parse_event_reads_them() -> None:
    raws = [bill(1, date(1, 1, 1)), bill(2, date(9999, 12, 31)), bill(3, date(2026, 2, 5))]
    raws.append({**BASE, "event_id": "evt-4", "event_type": "payment", **GOOD[EventType.PAYMENT]})

    checked = validate_batch(raws)

    assert checked.invalid == ()
    assert checked.valid.events() == [parse_event(raw) for raw in raws]


def test_an_instant_among_date_objects_is_refused_as_parse_event_refuses_it() -> None:
    raws = [bill(1, date(2026, 2, 5)), bill(2, datetime(2026, 2, 5, tzinfo=UTC))]

    checked = validate_batch(raws)

    assert checked.valid.events() == [parse_event(raws[0])]
    [(index, error)] = checked.invalid
    with pytest.raises(InvalidInputError) as expected:
        parse_event(raws[1])
    assert (index, error.issues) == (1, expected.value.issues)
