"""Export the stored events to month-partitioned Parquet, the analytic copy.

The system of record (`behaviour_events`) is what the API acknowledges; population-wide
scans (batch features on DuckDB or Spark) read Parquet in the same columns, partitioned
by the China-time month of `occurred_at` (`event_month=YYYY-MM/…`), the layout the
simulator writes. An export goes to a new folder, in `(occurred_at, event_id)` order and
fixed-size parts, so the same table always gives the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, select

from creditline.data.adapters.arrow_schema import EVENT_SCHEMA, write_partitions
from creditline.data.adapters.sql import behaviour_events
from creditline.data.domain.events import FIELD_NAMES

PART_ROWS = 200_000


def export_events(engine: Engine, out: Path, *, part_rows: int = PART_ROWS) -> int:
    """Write every stored event under `out` (new or empty); returns the number of events."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; export into a new folder")
    query = (
        select(*(behaviour_events.c[name] for name in FIELD_NAMES))
        .order_by(behaviour_events.c.occurred_at, behaviour_events.c.event_id)
        .execution_options(yield_per=part_rows)
    )
    exported = part = 0
    with engine.connect() as connection:
        for rows in connection.execute(query).partitions(part_rows):
            write_partitions(_table(rows), out, f"export-{part:05d}")
            exported += len(rows)
            part += 1
    return exported


def _table(rows: Any) -> pa.Table:
    columns: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [[] for _ in FIELD_NAMES]
    )
    arrays = [
        pa.array([_plain(v) for v in column], type=field.type)
        for column, field in zip(columns, EVENT_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _plain(value: object) -> object:
    return value.value if hasattr(value, "value") else value
