"""Event schemas: every kind of bad field is refused with its name and reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from creditline.data.domain.events import (
    EVENT_SCHEMAS,
    FIELD_NAMES,
    EventType,
    parse_event,
)
from creditline.shared.errors import InvalidInputError

BASE = {
    "event_id": "evt-1",
    "customer_id": "cus-1",
    "occurred_at": "2026-01-15T10:00:00+08:00",
    "source": "alipay",
}

GOOD: dict[EventType, dict[str, object]] = {
    EventType.PROFILE_UPDATE: {"occupation": "salaried", "amount_minor": 1_200_000},
    EventType.PAYMENT: {"amount_minor": 3_550, "category": "dining", "channel": "qr_code"},
    EventType.ORDER: {"amount_minor": 19_900, "category": "apparel", "reference_id": "ord-9"},
    EventType.REFUND: {"amount_minor": 19_900, "reference_id": "ord-9"},
    EventType.BILL: {"product_id": "card-1", "due_on": "2026-02-05", "amount_due_minor": 0},
    EventType.BILL_REPAYMENT: {"product_id": "card-1", "due_on": "2026-02-05", "amount_minor": 1},
    EventType.ALTERNATIVE_PAYMENT: {"category": "utility", "amount_minor": 8_000},
    EventType.TRANSFER: {"counterparty_id": "cus-2", "amount_minor": 50_000},
    EventType.DEVICE_LOGIN: {"device_id": "dev-7", "is_sim_change": "true", "location": "cn-31"},
    EventType.BALANCE: {"category": "wealth", "amount_minor": 0},
}


def issues_of(raw: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInputError) as caught:
        parse_event(raw)
    return [(issue.field, issue.code) for issue in caught.value.issues]


def test_every_event_type_has_a_good_example() -> None:
    assert set(GOOD) == set(EVENT_SCHEMAS)


@pytest.mark.parametrize("kind", list(EventType))
def test_a_good_event_of_each_type_parses(kind: EventType) -> None:
    event = parse_event({**BASE, "event_type": kind.value, **GOOD[kind]})

    assert event.event_type is kind
    assert event.occurred_at == datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    assert set(event.as_record()) == set(FIELD_NAMES)


def test_text_from_a_csv_file_is_converted_to_typed_values() -> None:
    event = parse_event(
        {
            **BASE,
            "event_type": "bill",
            "product_id": "card-1",
            "due_on": "2026-02-05",
            "amount_due_minor": "123456",
            "credit_limit_minor": " 1000000 ",
            "device_id": "",
        }
    )

    assert event.amount_due_minor == 123_456
    assert event.credit_limit_minor == 1_000_000
    assert event.due_on == date(2026, 2, 5)
    assert event.device_id is None


def test_a_z_suffix_is_utc() -> None:
    event = parse_event({**BASE, "occurred_at": "2026-01-15T02:00:00Z", **_payment()})

    assert event.occurred_at.utcoffset() == timedelta(0)


def _payment() -> dict[str, object]:
    return {"event_type": "payment", "amount_minor": 100, "category": "dining"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event_id": None}, ("event_id", "required")),
        ({"customer_id": ""}, ("customer_id", "required")),
        ({"source": None}, ("source", "required")),
        ({"occurred_at": None}, ("occurred_at", "required")),
        ({"occurred_at": "2026-01-15T10:00:00"}, ("occurred_at", "invalid_type")),
        ({"occurred_at": "yesterday"}, ("occurred_at", "invalid_type")),
        ({"event_type": "loan"}, ("event_type", "unknown_value")),
        ({"event_type": None}, ("event_type", "required")),
        ({"amount_minor": None}, ("amount_minor", "required")),
        ({"amount_minor": 0}, ("amount_minor", "out_of_range")),
        ({"amount_minor": -5}, ("amount_minor", "out_of_range")),
        ({"amount_minor": "12.50"}, ("amount_minor", "invalid_type")),
        ({"amount_minor": 12.5}, ("amount_minor", "invalid_type")),
        ({"amount_minor": True}, ("amount_minor", "invalid_type")),
        ({"amount_minor": 10**15}, ("amount_minor", "out_of_range")),
        ({"channel": "telepathy"}, ("channel", "unknown_value")),
        ({"currency": "GBP"}, ("currency", "unknown_value")),
        ({"device_id": "dev-1"}, ("device_id", "not_allowed")),
        ({"colour": "red"}, ("colour", "unknown_field")),
        ({"event_id": "has space"}, ("event_id", "invalid_format")),
        ({"event_id": "x" * 65}, ("event_id", "invalid_format")),
        ({"source": "Alipay"}, ("source", "invalid_format")),
        ({"schema_version": 2}, ("schema_version", "unsupported")),
        ({"customer_id": 42}, ("customer_id", "invalid_type")),
    ],
)
def test_a_bad_field_is_named_with_its_reason(
    change: dict[str, object], expected: tuple[str, str]
) -> None:
    raw = {**BASE, **_payment(), **change}

    assert expected in issues_of(raw)


def test_every_broken_field_is_reported_at_once() -> None:
    raw = {**BASE, **_payment(), "amount_minor": -1, "channel": "fax", "source": None}

    assert sorted(issues_of(raw)) == [
        ("amount_minor", "out_of_range"),
        ("channel", "unknown_value"),
        ("source", "required"),
    ]


def test_a_transfer_to_oneself_is_refused() -> None:
    raw = {**BASE, "event_type": "transfer", "counterparty_id": "cus-1", "amount_minor": 1}

    assert issues_of(raw) == [("counterparty_id", "invalid_value")]


def test_alternative_payments_and_balances_have_closed_categories() -> None:
    bad_kind = {**BASE, "event_type": "alternative_payment", "category": "rent", "amount_minor": 1}
    bad_balance = {**BASE, "event_type": "balance", "category": "crypto", "amount_minor": 1}

    assert issues_of(bad_kind) == [("category", "unknown_value")]
    assert issues_of(bad_balance) == [("category", "unknown_value")]


def test_an_empty_profile_update_is_refused() -> None:
    assert issues_of({**BASE, "event_type": "profile_update"}) == [("event_type", "empty_event")]


def test_a_bill_due_date_must_be_a_date() -> None:
    raw = {**BASE, **GOOD[EventType.BILL], "event_type": "bill", "due_on": "2026-02-30"}

    assert issues_of(raw) == [("due_on", "invalid_type")]


def test_the_digest_ignores_how_the_instant_was_written() -> None:
    in_china = parse_event({**BASE, **_payment()})
    in_utc = parse_event(
        {**BASE, **_payment(), "occurred_at": datetime(2026, 1, 15, 2, 0, tzinfo=UTC)}
    )
    other = parse_event({**BASE, **_payment(), "amount_minor": 101})

    assert in_china.digest() == in_utc.digest()
    assert in_china.digest() != other.digest()


def test_a_naive_instant_cannot_build_an_event() -> None:
    event = parse_event({**BASE, **_payment()})
    china = timezone(timedelta(hours=8))

    assert event.occurred_at.astimezone(china).hour == 10
    with pytest.raises(ValueError, match="timezone-aware"):
        type(event)(
            event_id="e",
            customer_id="c",
            event_type=EventType.PAYMENT,
            occurred_at=datetime(2026, 1, 1),  # noqa: DTZ001
            source="s",
        )
