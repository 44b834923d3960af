"""Read feature-input events from Parquet into `FeatureEvent`s (to feed the online store).

Reads a file or a directory tree of Parquet files in the `EVENT_COLUMNS` schema, batch by
batch, so a large population streams through in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from creditline.features.domain.columns import VALUE_COLUMNS, EventColumns
from creditline.features.domain.events import EVENT_COLUMNS, EventType, FeatureEvent

BATCH_ROWS = 65_536


def _files(events: Path) -> list[str]:
    if events.is_file():
        return [str(events)]
    found = sorted(str(p) for p in events.rglob("*.parquet"))
    if not found:
        raise FileNotFoundError(f"no Parquet files under {events}")
    return found


def read_events(events: Path, *, batch_rows: int = BATCH_ROWS) -> Iterator[FeatureEvent]:
    dataset = ds.dataset(_files(events), format="parquet")
    present = set(dataset.schema.names)
    names = [name for name, _ in EVENT_COLUMNS if name in present]
    for batch in dataset.to_batches(columns=names, batch_size=batch_rows):
        columns = {name: batch.column(name).to_pylist() for name in names}
        for row in range(batch.num_rows):
            values = {name: columns[name][row] for name in names}
            yield event_from_record(values)


def columns_from_table(table: pa.Table, *, mirror: bool = True) -> EventColumns:
    """The rows of an Arrow table in the `EVENT_COLUMNS` schema (extra columns ignored, a
    missing optional column read as nulls) as `EventColumns`, transfers mirrored: the same
    events as `event_from_record` of each row, without an object per row. Timestamps
    without a zone are read as UTC, as `event_from_record` reads them."""
    size = table.num_rows
    present = set(table.column_names)

    def values(name: str) -> list[Any]:
        if name not in present:
            return [None] * size
        column: list[Any] = table.column(name).to_pylist()
        return column

    occurred = table.column("occurred_at")
    if pa.types.is_timestamp(occurred.type) and occurred.type.unit != "us":
        occurred = pc.cast(occurred, pa.timestamp("us", tz=occurred.type.tz))
    if "due_on" in present:
        due_day: list[Any] = (
            pc.cast(table.column("due_on"), pa.date32()).cast(pa.int32()).to_pylist()
        )
    else:
        due_day = [None] * size
    return EventColumns.build(
        event_id=values("event_id"),
        customer_id=values("customer_id"),
        event_type=values("event_type"),
        micros=occurred.cast(pa.int64()).to_pylist(),
        due_day=due_day,
        values={name: values(name) for name in VALUE_COLUMNS},
        mirror=mirror,
    )


def event_from_record(values: Mapping[str, object]) -> FeatureEvent:
    """A feature event from a behaviour event's flat record (Parquet row or `as_record()`)."""
    occurred_at = values["occurred_at"]
    if not isinstance(occurred_at, datetime):
        raise TypeError(f"occurred_at must be a timestamp, got {occurred_at!r}")
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    due_on = values.get("due_on")
    return FeatureEvent(
        event_id=str(values["event_id"]),
        customer_id=str(values["customer_id"]),
        event_type=EventType(str(values["event_type"])),
        occurred_at=occurred_at,
        amount_minor=_int(values.get("amount_minor")),
        category=_str(values.get("category")),
        counterparty_id=_str(values.get("counterparty_id")),
        device_id=_str(values.get("device_id")),
        is_sim_change=None
        if values.get("is_sim_change") is None
        else bool(values["is_sim_change"]),
        product_id=_str(values.get("product_id")),
        due_on=due_on if isinstance(due_on, date) else None,
        amount_due_minor=_int(values.get("amount_due_minor")),
        credit_limit_minor=_int(values.get("credit_limit_minor")),
    )


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _str(value: object) -> str | None:
    return None if value is None else str(value)
