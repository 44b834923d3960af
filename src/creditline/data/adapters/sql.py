"""The behaviour-event table in the system of record, and the store that appends to it.

`behaviour_events` holds every event the API or a bulk load acknowledged, keyed by
`event_id`: the primary key is what makes storage exactly-once (an insert of a stored id
does nothing, `ON CONFLICT DO NOTHING`), and one transaction per batch is what makes a
crash harmless (a batch is all there or not there). The `(customer_id, occurred_at)`
index serves single-customer look-ups. On PostgreSQL a batch is streamed with `COPY` into
a temporary table and moved across with one `INSERT … SELECT … ON CONFLICT DO NOTHING`.
On SQLite the rows are inserted with one `executemany` per set of empty fields, naming
only the columns that have values (see `_insert`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection

from creditline.data.columnar import EVENT_SCHEMA, utc_text
from creditline.data.domain.events import (
    EVENT_FIELDS,
    FIELD_NAMES,
    BehaviourEvent,
    FieldKind,
    parse_event,
)
from creditline.data.domain.ingest import AppendResult
from creditline.shared.clock import Clock
from creditline.storage.metadata import metadata
from creditline.storage.types import UtcDateTime

_LENGTHS = {"currency": 3, "channel": 16, "occupation": 32, "education": 32, "event_type": 32}


def _column(name: str, kind: FieldKind) -> Column[Any]:
    if kind is FieldKind.STRING:
        return Column(name, String(_LENGTHS.get(name, 64)), nullable=name not in _REQUIRED)
    if kind is FieldKind.INT64:
        if name == "schema_version":
            return Column(name, Integer, nullable=False)
        return Column(name, BigInteger)
    if kind is FieldKind.BOOL:
        return Column(name, Boolean)
    if kind is FieldKind.DATE:
        return Column(name, Date)
    return Column(name, UtcDateTime(), nullable=False)


_REQUIRED = frozenset({"event_id", "customer_id", "event_type", "source", "currency"})

behaviour_events = Table(
    "behaviour_events",
    metadata,
    *(_column(name, kind) for name, kind in EVENT_FIELDS),
    Column("digest", String(64), nullable=False),
    Column("ingested_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("event_id", name="pk_behaviour_events"),
    Index("ix_behaviour_events_customer_id", "customer_id", "occurred_at"),
)
#: SQLite: a batch of at least this many rows is a bulk load, and its connection gets a page
#: cache of `BULK_CACHE_KIB` KiB (SQLite's default is 2 MiB): the primary-key and customer
#: indexes then stay in memory across a load, instead of being read back and spilled to the
#: WAL mid-transaction. The setting stays with the pooled connection; SQLite allocates the
#: pages only as it uses them. Durability is untouched (`synchronous` is not changed).
BULK_ROWS = 5_000
BULK_CACHE_KIB = 65_536


class SqlEventStore:
    """`EventStore` on SQLite or PostgreSQL (COPY on PostgreSQL)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def append(self, events: Sequence[BehaviourEvent]) -> AppendResult:
        if not events:
            return AppendResult(0, {})
        table = pa.Table.from_pylist([event.as_record() for event in events], schema=EVENT_SCHEMA)
        table = table.append_column("digest", pa.array([event.digest() for event in events]))
        return self.append_table(table)

    def append_table(self, table: pa.Table) -> AppendResult:
        """Append a validated batch given as columns (`ValidBatch.table`: the columns of
        `EVENT_SCHEMA` and `digest`), with distinct event ids, in one transaction."""
        if table.num_rows == 0:
            return AppendResult(0, {})
        now = self._clock.now().astimezone(UTC)
        ids: list[str] = table.column("event_id").to_pylist()
        with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                inserted = _copy_insert(connection, table, now)
                missing = [event_id for event_id in ids if event_id not in inserted]
                existing = _digests(connection, missing)
            else:
                if table.num_rows >= BULK_ROWS:
                    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
                existing = _digests(connection, ids)
                inserted = _insert(connection, table, now, existing)
        return AppendResult(len(inserted), existing)

    def count(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(behaviour_events)) or 0)

    def scan(self, batch_rows: int = 10_000) -> Iterator[BehaviourEvent]:
        """Every stored event, oldest first, read in batches (to rebuild derived state)."""
        query = (
            select(*(behaviour_events.c[name] for name in FIELD_NAMES))
            .order_by(behaviour_events.c.occurred_at, behaviour_events.c.event_id)
            .execution_options(yield_per=batch_rows)
        )
        with self._engine.connect() as connection:
            for row in connection.execute(query).mappings():
                yield parse_event(dict(row))

    def for_customer(self, customer_id: str) -> list[BehaviourEvent]:
        query = (
            select(*(behaviour_events.c[name] for name in FIELD_NAMES))
            .where(behaviour_events.c.customer_id == customer_id)
            .order_by(behaviour_events.c.occurred_at, behaviour_events.c.event_id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [parse_event(dict(row)) for row in rows]


_COLUMNS = [*FIELD_NAMES, "digest", "ingested_at"]


def _sqlite_columns(table: pa.Table) -> list[list[Any] | None]:
    """Each column as the values SQLAlchemy's SQLite types store (so reads round-trip):
    instants as UTC text, dates as ISO text, booleans as 0/1; None for a column with no
    value at all (no list is made for it)."""
    columns: list[list[Any] | None] = []
    for name, kind in EVENT_FIELDS:
        column = table.column(name)
        if column.null_count == len(column):
            columns.append(None)
            continue
        if kind is FieldKind.TIMESTAMP:
            column = utc_text(column)
        elif kind is FieldKind.DATE:
            column = column.cast(pa.string())
        elif kind is FieldKind.BOOL:
            column = column.cast(pa.int8())
        columns.append(column.to_pylist())
    columns.append(table.column("digest").to_pylist())
    return columns


def _null_shapes(table: pa.Table) -> np.ndarray:
    """Per row, a bit mask of the event fields that are NULL in it (bit `i`: field `i`)."""
    shapes = np.zeros(table.num_rows, dtype=np.int64)
    for bit, name in enumerate(FIELD_NAMES):
        column = table.column(name)
        if 0 < column.null_count < len(column):
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            shapes |= nulls.astype(np.int64) << bit
    return shapes


@lru_cache(maxsize=512)
def _insert_sql(names: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    return f"INSERT INTO behaviour_events ({quoted}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def _insert(
    connection: Connection, table: pa.Table, now: datetime, stored: dict[str, str]
) -> set[str]:
    """SQLite: the transaction began with BEGIN IMMEDIATE, so no other writer can race us
    between the look-up of stored ids and the insert (`ON CONFLICT DO NOTHING` stays as a
    second guard).

    Rows are inserted in groups that share the same NULL fields, each group with one
    `executemany` naming only the columns it has values for (the others are NULL by
    default): the sqlite3 module binds a None only after a failed adapter look-up (about
    1.3 µs each, against 0.2 µs for a number), and an event leaves most payload fields
    empty, so binding them was half the cost of the insert. Which row gets which rowid
    does not matter: every read orders by its own columns."""
    ids: list[str] = table.column("event_id").to_pylist()
    if stored:
        new = [event_id not in stored for event_id in ids]
        table = table.filter(pa.array(new, type=pa.bool_()))
        ids = [event_id for event_id, keep in zip(ids, new, strict=True) if keep]
    if not ids:
        return set()
    columns = _sqlite_columns(table)
    columns.append([now.strftime("%Y-%m-%d %H:%M:%S.%f")] * len(ids))
    shapes = _null_shapes(table)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if not shapes.any() or (shapes == shapes[0]).all():
        groups = [(int(shapes[0]), None)]
    else:
        order = np.argsort(shapes, kind="stable")
        starts = np.flatnonzero(np.diff(shapes[order])) + 1
        groups = [
            (int(shapes[rows[0]]), rows.tolist()) for rows in np.split(order, starts.tolist())
        ]
    for shape, rows in groups:
        kept = [
            (name, values)
            for bit, (name, values) in enumerate(zip(_COLUMNS, columns, strict=True))
            if values is not None and not shape >> bit & 1
        ]
        picked = [values for _, values in kept]
        if rows is not None:
            picked = [[values[row] for row in rows] for values in picked]
        statement = _insert_sql(tuple(name for name, _ in kept))
        cursor.executemany(statement, zip(*picked, strict=True))
    return set(ids)


def _copy_insert(connection: Connection, table: pa.Table, now: datetime) -> set[str]:
    """COPY the batch (written as CSV by Arrow) into a temporary table, then insert the new
    ids in one statement; `RETURNING` names the ids that were new."""
    names = ", ".join(f'"{name}"' for name in _COLUMNS)
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS behaviour_events_incoming "
        "(LIKE behaviour_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    stamped = table.select([*FIELD_NAMES, "digest"]).append_column(
        "ingested_at", pa.array([now] * table.num_rows, type=pa.timestamp("us", tz="UTC"))
    )
    buffer = io.BytesIO()
    pa_csv.write_csv(stamped, buffer, pa_csv.WriteOptions(include_header=False))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY behaviour_events_incoming ({names}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getbuffer())
    # On the driver's cursor: its fetchall reads the returned ids in one go (SQLAlchemy's
    # result would wrap every row).
    cursor.execute(
        f"INSERT INTO behaviour_events ({names}) "
        f"SELECT DISTINCT ON (event_id) {names} FROM behaviour_events_incoming "
        "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    return {str(event_id) for (event_id,) in cursor.fetchall()}


def _digests(connection: Connection, event_ids: list[str]) -> dict[str, str]:
    """The stored digest of each of `event_ids` that is already stored: one statement for
    the whole batch on the driver's cursor (the ids travel as one JSON array on SQLite,
    one array on PostgreSQL), each id one primary-key probe inside the database."""
    if not event_ids:
        return {}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if connection.dialect.name == "postgresql":
        cursor.execute(
            "SELECT event_id, digest FROM behaviour_events WHERE event_id = ANY(%s)",
            (event_ids,),
        )
    else:
        cursor.execute(
            "SELECT event_id, digest FROM behaviour_events "
            "WHERE event_id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(event_ids).decode(),),
        )
    return {str(event_id): str(digest) for event_id, digest in cursor.fetchall()}


def count_events(engine: Engine) -> int:
    """How many events are stored (used by tests and benchmarks)."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM behaviour_events")).scalar_one())
