"""The batch (columnar) validation agrees with `parse_event`, the per-row oracle, row by row.

For any batch of raw events, clean or broken in any of the ways a source breaks them
(blank, padded or mistyped values, numbers as text or floats, naive instants, unknown
fields, values out of range, fields the type does not allow), `validate_batch` must
accept exactly the rows that `parse_event` accepts, store the same values (the same
`BehaviourEvent`, the same digest) and refuse the others with the same issues. The
expected values come from calling `parse_event` on each row on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditline.data.columnar import BatchValidation, digests, validate_batch, validate_table
from creditline.data.domain.events import EVENT_SCHEMAS, BehaviourEvent, EventType, parse_event
from creditline.shared.errors import InvalidInputError
from tests.unit.data.test_data_events import BASE, GOOD

OFFSETS = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
instants = st.builds(
    lambda base, micros, tz: (base + timedelta(microseconds=micros)).astimezone(tz),
    st.just(datetime(2026, 1, 1, tzinfo=UTC)),
    st.integers(-(10**13), 10**13),
    st.sampled_from(OFFSETS),
)


def _instant_variants(instant: datetime) -> st.SearchStrategy[object]:
    return st.sampled_from(
        [
            instant,
            instant.isoformat(),
            instant.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            " " + instant.isoformat(),
            instant.replace(tzinfo=None),
            instant.replace(tzinfo=None).isoformat(),
            instant.date().isoformat(),
            "yesterday",
            1_700_000_000,
            "",
        ]
    )


def _int_variants(current: object) -> st.SearchStrategy[object]:
    value = current if isinstance(current, int) and not isinstance(current, bool) else 1_234
    return st.sampled_from(
        [
            value,
            str(value),
            f" {value}",
            f"+{value}",
            f"0{value}",
            float(value),
            value + 0.5,
            True,
            "ten",
            -value,
            0,
            "0",
            10**12,
            str(10**12),
            2**70,
            "",
            None,
        ]
    )


def _text_variants(value: str) -> st.SearchStrategy[object]:
    return st.sampled_from(
        [value, value.upper(), f" {value} ", "", "   ", "has space", "x" * 70, 7, None, "ok_1"]
    )


def _bool_variants(value: object) -> st.SearchStrategy[object]:
    return st.sampled_from(
        [
            True,
            False,
            "true",
            "false",
            "FALSE",
            "yes",
            " yes",
            "no",
            "1",
            "0",
            1,
            0,
            2,
            "maybe",
            "",
            None,
        ]
    )


def _date_variants(value: object) -> st.SearchStrategy[object]:
    return st.sampled_from(
        [
            date(2026, 2, 5),
            "2026-02-05",
            " 2026-02-05",
            "20260205",
            "2026-02-30",
            datetime(2026, 2, 5, tzinfo=UTC),
            "",
            None,
            45,
        ]
    )


_VARIANTS: dict[str, Callable[[Any], st.SearchStrategy[object]]] = {
    "amount_minor": _int_variants,
    "amount_due_minor": _int_variants,
    "credit_limit_minor": _int_variants,
    "schema_version": lambda v: st.sampled_from([1, "1", 2, None, "", 1.0, "v1"]),
    "is_sim_change": _bool_variants,
    "is_real_name_verified": _bool_variants,
    "due_on": _date_variants,
    "currency": lambda v: st.sampled_from(["CNY", "cny", "USD", "", None, 1]),
    "channel": lambda v: st.sampled_from(["qr_code", "online", "QR", "", None]),
    "occupation": lambda v: st.sampled_from(["salaried", "student", "chef", "", None]),
    "education": lambda v: st.sampled_from(["bachelor", "phd", "", None]),
    "event_type": lambda v: st.sampled_from(
        [v, v, v, "paymnt", f" {v}", "", None, "transfer", "balance"]
    ),
    "category": lambda v: st.sampled_from(["dining", "utility", "wealth", "Dining", "", None]),
    "counterparty_id": lambda v: st.sampled_from(["cus-2", "cus-1", "", None, "bad id"]),
}


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(EventType)))
    raw: dict[str, Any] = {**BASE, "event_type": kind.value, **GOOD[kind]}
    raw["event_id"] = f"evt-{draw(st.integers(0, 5))}"
    raw["occurred_at"] = draw(instants)
    # Mostly fields this type has (so that the changed value is what decides), sometimes any.
    pool = sorted(EVENT_SCHEMAS[kind].allowed) if draw(st.booleans()) else sorted(_VARIANTS)
    for name in draw(st.sets(st.sampled_from(pool), max_size=2)):
        variants = _VARIANTS.get(name)
        current = raw.get(name)
        if name == "occurred_at":
            raw[name] = draw(_instant_variants(draw(instants)))
        elif variants is not None:
            raw[name] = draw(variants(current))
        else:
            raw[name] = draw(_text_variants(str(current or "x-1")))
    if draw(st.booleans()) and draw(st.booleans()):
        raw[draw(st.sampled_from(["colour", "amount", "device_id"]))] = "red"
    if draw(st.booleans()):
        raw = {k: v for k, v in raw.items() if v is not None}
    return raw


def oracle(raw: dict[str, Any]) -> BehaviourEvent | InvalidInputError:
    try:
        return parse_event(raw)
    except InvalidInputError as error:
        return error


STORED_SCHEMA = validate_batch([]).valid.table.schema


def assert_agrees_with_oracle(
    checked: BatchValidation, expected: list[BehaviourEvent | InvalidInputError]
) -> None:
    """The batch accepted exactly the rows `parse_event` accepts, with equal events and
    digests, and refused the others with the same issues, in input order."""
    accepted = [i for i, result in enumerate(expected) if isinstance(result, BehaviourEvent)]
    assert list(checked.valid.positions) == accepted
    assert checked.valid.events() == [expected[i] for i in accepted]
    assert checked.valid.digests == [expected[i].digest() for i in accepted]  # type: ignore[union-attr]
    assert [(i, error.issues) for i, error in checked.invalid] == [
        (i, result.issues)
        for i, result in enumerate(expected)
        if isinstance(result, InvalidInputError)
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_events(), min_size=1, max_size=12))
def test_the_batch_path_accepts_refuses_and_stores_like_parse_event(
    raws: list[dict[str, Any]],
) -> None:
    expected = [oracle(raw) for raw in raws]

    checked = validate_batch(raws)

    assert_agrees_with_oracle(checked, expected)


def test_a_clean_batch_needs_no_row_by_row_check() -> None:
    raws = [
        {**BASE, "event_id": f"e-{kind.value}", "event_type": kind.value, **GOOD[kind]}
        for kind in EventType
    ]

    checked = validate_batch(raws)

    assert checked.invalid == ()
    assert checked.valid.events() == [parse_event(raw) for raw in raws]


def _weighted(common: object, rare: list[object]) -> st.SearchStrategy[object]:
    """`common` most of the time (so that whole columns are often clean), else a rare one."""
    return st.one_of(st.just(common), st.just(common), st.just(common), st.sampled_from(rare))


_ID_EDGES: list[object] = [
    "",
    " evt-1",
    "evt-1 ",
    "evt\n1",
    "évt-1",
    "_evt",
    "-evt",
    ".evt",
    ":evt",
    "e" * 64,
    "e" * 65,
    "E.v:t_1-2",
    "evt/1",
    7,
]
_LABEL_EDGES: list[object] = ["", "Alipay", "ali pay", "a" * 64, "a" * 65, "-x", "x-1.2:3_4", "\n"]
_INSTANT_EDGES: list[object] = [
    "2026-01-15T10:00:00Z",
    "2026-01-15T10:00:00.5+08:00",
    "2026-01-15T10:00:00.1234567+08:00",
    "2026-02-30T10:00:00+08:00",
    "2026-01-15T24:00:00+08:00",
    "2026-01-15T10:00:60+08:00",
    "2026-01-15T10:00:00+24:00",
    "2026-01-15T10:00:00-23:59",
    "2026-01-15 10:00:00+08:00",
    "2026-01-15T10:00:00",
    "2026-01-15T10:00:00+0800",
    "0000-01-15T10:00:00+08:00",
    "2026-01-15",
    " 2026-01-15T10:00:00+08:00",
    "2026-01-15T10:00:00+08:00\n2026-01-15T10:00:00+08:00",
    "",
]
_DATE_EDGES: list[object] = [
    "2026-02-30",
    "2024-02-29",
    "2023-02-29",
    "20260205",
    " 2026-02-05",
    "0000-01-01",
    "0001-01-01",
    "2026-13-01",
    "2026-02-05\n2026-02-05",
    "",
]


@st.composite
def text_events(draw: st.DrawFn) -> dict[str, Any]:
    """Events as JSON gives them (text, numbers, booleans): mostly in the plain forms that
    a whole column is checked in at once, sometimes with one value just outside them."""
    kind = draw(st.sampled_from(list(EventType)))
    raw: dict[str, Any] = {**BASE, "event_type": kind.value, **GOOD[kind]}
    raw["event_id"] = draw(_weighted(f"evt-{draw(st.integers(0, 99))}", _ID_EDGES))
    raw["customer_id"] = draw(_weighted("cus-1", _ID_EDGES))
    instant = draw(instants)
    plain = instant.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds"])))
    raw["occurred_at"] = draw(_weighted(plain, _INSTANT_EDGES))
    raw["source"] = draw(_weighted("alipay", _LABEL_EDGES))
    if "due_on" in raw:
        raw["due_on"] = draw(_weighted("2026-02-05", _DATE_EDGES))
    for name in ("reference_id", "counterparty_id", "device_id", "product_id"):
        if name in raw:
            raw[name] = draw(_weighted(raw[name], _ID_EDGES))
    for name in ("category", "location"):
        if name in raw:
            raw[name] = draw(_weighted(raw[name], _LABEL_EDGES))
    if "channel" in raw:
        raw["channel"] = draw(_weighted(raw["channel"], ["QR", "", "in_store", 3]))
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(text_events(), min_size=1, max_size=12))
def test_text_columns_checked_whole_agree_with_parse_event(raws: list[dict[str, Any]]) -> None:
    expected = [oracle(raw) for raw in raws]

    checked = validate_batch(raws)

    assert_agrees_with_oracle(checked, expected)


def test_a_column_in_the_plain_forms_is_taken_whole_and_one_odd_value_is_named() -> None:
    raws = [
        {
            **BASE,
            "event_type": "bill",
            **GOOD[EventType.BILL],
            "event_id": f"evt-{i}",
            "occurred_at": f"2026-01-{i + 1:02d}T10:00:00.25{i}+08:00",
        }
        for i in range(9)
    ]
    clean = validate_batch(raws)
    raws[4] = {**raws[4], "due_on": "2026-02-30"}
    raws[6] = {**raws[6], "occurred_at": "2026-01-07T10:00:00+24:00"}
    raws[7] = {**raws[7], "event_id": "evt\n7"}

    checked = validate_batch(raws)

    assert_agrees_with_oracle(
        clean,
        [oracle(raw) for raw in raws[:4]]
        + [
            parse_event({**raw, "due_on": "2026-02-05"}) if i == 4 else oracle(raw)
            for i, raw in enumerate(raws[4:6], start=4)
        ]
        + [
            parse_event({**raws[6], "occurred_at": "2026-01-07T10:00:00.256+08:00"}),
            parse_event({**raws[7], "event_id": "evt-7"}),
            oracle(raws[8]),
        ],
    )
    assert [(i, [issue.field for issue in error.issues]) for i, error in checked.invalid] == [
        (4, ["due_on"]),
        (6, ["occurred_at"]),
        (7, ["event_id"]),
    ]
    assert list(checked.valid.positions) == [0, 1, 2, 3, 5, 8]


class _NoOffset(tzinfo):
    """A time zone that knows no offset: an instant carrying it is naive to `parse_event`."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


@pytest.mark.parametrize(
    "zones",
    [
        [ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC"), UTC, timezone(timedelta(hours=-3))],
        [ZoneInfo("Asia/Shanghai"), None],
        [UTC, _NoOffset()],
    ],
)
def test_instants_given_as_datetimes_are_taken_like_parse_event_takes_them(
    zones: list[tzinfo | None],
) -> None:
    # Every occurred_at a datetime (the batch path's quick case when every zone has an
    # offset), in plain dicts and in read-only mappings (the general column extraction).
    base = datetime(2026, 1, 31, 23, 30, 15, 123456, tzinfo=UTC).replace(tzinfo=None)
    raws = [
        {
            **BASE,
            "event_type": "payment",
            **GOOD[EventType.PAYMENT],
            "event_id": f"evt-{i}",
            "occurred_at": base.replace(tzinfo=zone) + timedelta(minutes=i),
        }
        for i, zone in enumerate(zones)
    ]
    expected = [oracle(raw) for raw in raws]

    assert_agrees_with_oracle(validate_batch(raws), expected)
    assert_agrees_with_oracle(validate_batch([MappingProxyType(raw) for raw in raws]), expected)


def test_digests_are_the_events_own() -> None:
    event = parse_event({**BASE, "event_type": "payment", **GOOD[EventType.PAYMENT]})
    table = pa.Table.from_pylist([event.as_record()])
    table = table.cast(validate_batch([]).valid.table.schema.remove(22))

    assert digests(table).to_pylist() == [event.digest()]


@st.composite
def typed_rows(draw: st.DrawFn) -> dict[str, Any]:
    """Rows as a Parquet file holds them: every value already of its column's type."""
    kind = draw(st.sampled_from(list(EventType)))
    raw = parse_event({**BASE, "event_type": kind.value, **GOOD[kind]}).as_record()
    raw["event_id"] = f"evt-{draw(st.integers(0, 5))}"
    raw["occurred_at"] = draw(instants)
    for name in draw(st.sets(st.sampled_from(sorted(EVENT_SCHEMAS[kind].allowed)), max_size=2)):
        if name in ("amount_minor", "amount_due_minor", "credit_limit_minor", "schema_version"):
            raw[name] = draw(st.sampled_from([None, -1, 0, 1, 2, 10**12, 123_456]))
        elif name in ("is_sim_change", "is_real_name_verified"):
            raw[name] = draw(st.sampled_from([None, True, False]))
        elif name == "due_on":
            raw[name] = draw(st.sampled_from([None, date(2026, 2, 5)]))
        elif name != "occurred_at":
            raw[name] = draw(st.sampled_from([None, "", " x", "ok-1", "salaried", "CNY", "USD"]))
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(typed_rows(), min_size=1, max_size=12), st.booleans())
def test_arrow_columns_are_validated_like_the_same_rows(
    rows: list[dict[str, Any]], extra_column: bool
) -> None:
    table = pa.Table.from_pylist(
        rows, schema=STORED_SCHEMA.remove(STORED_SCHEMA.get_field_index("digest"))
    )
    if extra_column:
        table = table.append_column("colour", pa.array(["red"] + [None] * (len(rows) - 1)))
    records = table.to_pylist()
    expected = [oracle(record) for record in records]

    checked = validate_table(table)

    assert_agrees_with_oracle(checked, expected)


@pytest.mark.parametrize(
    "odd_id",
    ["-evt", "evt 1", "évt-1", "e" * 65, "", " evt-1", "evt-1\x00", "evt\u00a01"],
)
def test_an_odd_id_in_a_slice_of_a_table_with_missing_ids_is_judged_by_parse_event(
    odd_id: str,
) -> None:
    # The id and label checks read the Arrow buffers (offsets and text) of a column at
    # once: a slice starts part-way into them, and missing values have no text at all.
    kind = EventType.PAYMENT
    rows = [
        {**BASE, "event_type": kind.value, **GOOD[kind], "event_id": f"evt-{n}"} for n in range(8)
    ]
    rows[2]["event_id"] = None
    rows[5]["event_id"] = odd_id
    rows[6]["source"] = None
    table = pa.Table.from_pylist(rows)
    part = table.slice(1, 6)
    expected = [oracle(record) for record in part.to_pylist()]

    checked_table = validate_table(part)
    checked_rows = validate_batch(part.to_pylist())

    assert_agrees_with_oracle(checked_table, expected)
    assert_agrees_with_oracle(checked_rows, expected)
    assert {1, 5} <= {i for i, _ in checked_table.invalid}


@pytest.mark.parametrize(
    ("values", "plain"),
    [
        (["evt-1", None, "evt-2"], True),
        (["-evt", "evt-1", None, "evt-2"], False),
        (["evt-1", None, "evt 2"], False),
        (["evt-1", None, ""], False),
        (["evt-1", "évt"], False),
    ],
)
def test_the_id_check_on_a_slice_reads_only_the_slice(
    values: list[str | None], plain: bool
) -> None:
    # Values before and after the slice break the id pattern; only the slice is judged.
    from creditline.data.columnar import _ALPHABETS, _all_match
    from creditline.data.domain.events import _ID

    array = pa.array(["bad id!", *values, "-bad"], type=pa.string()).slice(1, len(values))

    assert _all_match(array, _ALPHABETS[_ID.pattern]) is plain
