"""The PostgreSQL binary COPY data of a batch (`_copy_data`) holds exactly the batch's
values: read back here by a small decoder of the format written from its documentation
(header, per row a field count, per field a length or -1 and big-endian bytes), and
compared with the table's own Python values, for a chunked and a sliced table too."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from creditline.data.adapters.sql import _COLUMNS, _copy_data, behaviour_events
from creditline.data.columnar import validate_batch
from creditline.data.domain.events import EventType
from tests.unit.data.test_data_events import BASE, GOOD

NOW = datetime(2026, 1, 15, 2, 0, 0, 654321, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def decode(data: bytes) -> list[list[object]]:
    """Rows of raw field bytes (None for NULL)."""
    assert data[:11] == SIGNATURE
    assert data[11:19] == bytes(8)  # no flags, no header extension
    at = 19
    rows: list[list[object]] = []
    while True:
        count = int.from_bytes(data[at : at + 2], "big", signed=True)
        at += 2
        if count == -1:
            assert at == len(data)
            return rows
        row: list[object] = []
        for _ in range(count):
            size = int.from_bytes(data[at : at + 4], "big", signed=True)
            at += 4
            row.append(None if size == -1 else data[at : at + size])
            at += max(size, 0)
        rows.append(row)


def value(name: str, raw: object) -> object:
    if raw is None:
        return None
    assert isinstance(raw, bytes)
    kind = type(behaviour_events.c[name].type).__name__
    if kind in ("BigInteger", "Integer"):
        assert len(raw) == (8 if kind == "BigInteger" else 4)
        return int.from_bytes(raw, "big", signed=True)
    if kind == "Boolean":
        return raw != b"\x00"
    if kind == "Date":
        return date(2000, 1, 1) + timedelta(days=int.from_bytes(raw, "big", signed=True))
    if kind == "UtcDateTime":
        return EPOCH + timedelta(microseconds=int.from_bytes(raw, "big", signed=True))
    return raw.decode()


def batch() -> pa.Table:
    raws: list[dict[str, object]] = [
        {**BASE, "event_id": f"e-{kind.value}", "event_type": kind.value, **fields}
        for kind, fields in GOOD.items()
    ]
    raws.append(
        {
            **BASE,
            "event_id": "e-old",
            "event_type": "bill",
            **GOOD[EventType.BILL],
            "occurred_at": "1999-12-31T23:59:59.999999+00:00",
            "due_on": "1999-12-31",
            "credit_limit_minor": 10**11,
        }
    )
    checked = validate_batch(raws)
    assert checked.invalid == ()
    return checked.valid.table


def expected(table: pa.Table) -> list[list[object]]:
    return [[*row.values(), NOW] for row in table.to_pylist()]


def decoded(table: pa.Table) -> list[list[object]]:
    return [
        [value(name, raw) for name, raw in zip(_COLUMNS, row, strict=True)]
        for row in decode(_copy_data(table, NOW))
    ]


def test_every_value_of_a_batch_is_in_the_copy_data() -> None:
    table = batch()

    assert decoded(table) == expected(table)


def test_a_chunked_or_sliced_batch_gives_the_same_rows() -> None:
    table = batch()
    chunked = pa.concat_tables([table.slice(0, 4), table.slice(4)])
    sliced = table.slice(3, 5)

    assert chunked.column("event_id").num_chunks == 2
    assert decoded(chunked) == expected(table)
    assert decoded(sliced) == expected(sliced)
