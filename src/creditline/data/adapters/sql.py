"""The behaviour-event table in the system of record, and the store that appends to it.

`behaviour_events` holds every event the API or a bulk load acknowledged, keyed by
`event_id`: the primary key is what makes storage exactly-once (an insert of a stored id
does nothing, `ON CONFLICT DO NOTHING`), and one transaction per batch is what makes a
crash harmless (a batch is all there or not there). The `(customer_id, occurred_at)`
index serves single-customer look-ups. On PostgreSQL a batch whose first id is new goes
straight into the table with one binary `COPY` (see `_append_copy`, `_copy_data`); a
batch whose first id is stored (a retry) is looked up first and only its new rows are
copied; and when the COPY meets a stored id after all (a batch that is partly a retry, or
another writer), its transaction is rolled back and the batch goes again, in a new one,
through a temporary table and one `INSERT … SELECT … ON CONFLICT DO NOTHING`. On SQLite
a batch whose first id is new is inserted first and looked up only if some row was
already there (`_insert_first`); the rows are inserted with one `executemany` per set of
empty fields, naming only the columns that have values (see `_insert`). `stage_table`
splits an append into the encoding (CPU) and the transaction (I/O), for a loader that
stores on a writer thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
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
        return self.stage_table(table)()

    def stage_table(self, table: pa.Table) -> Callable[[], AppendResult]:
        """`append_table` in two steps: the batch's encoding for the database now (on
        PostgreSQL, the binary COPY data: CPU only), and the returned call that stores it
        (the transaction: I/O only, so a writer thread running it seldom needs the GIL).
        The batch's `ingested_at` is the time of this call."""
        if table.num_rows == 0:
            return _NOTHING_STORED
        now = self._clock.now().astimezone(UTC)
        if self._engine.dialect.name == "postgresql":
            return partial(self._append_copy, table, _copy_data(table, now), now)
        return partial(self._append_sqlite, table, now)

    def _append_sqlite(self, table: pa.Table, now: datetime) -> AppendResult:
        ids: list[str] = table.column("event_id").to_pylist()
        with self._engine.begin() as connection:
            if table.num_rows >= BULK_ROWS:
                connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            inserted, existing = _insert_first(connection, table, now, ids)
        return AppendResult(len(inserted), existing)

    def _append_copy(self, table: pa.Table, data: bytes, now: datetime) -> AppendResult:
        """PostgreSQL: a batch whose first id is new is most likely all new, so its rows
        (`data`, from `_copy_data`) are copied straight into the table with no look-up:
        five round trips (BEGIN, the probe of the first id, COPY and its data, COMMIT).
        A batch whose first id is stored (a retry) is looked up first and only its new
        rows are copied. A COPY that meets a stored id after all (a batch partly a retry,
        or another writer's rows) fails as a whole, and so does its transaction, which
        held nothing else: the batch is then stored again in a new transaction through the
        staging table (`_copy_insert`), which skips stored ids one by one and names the
        ones it stored. No savepoint is needed, so none costs two round trips per batch."""
        from psycopg.errors import UniqueViolation  # only a PostgreSQL engine gets here

        try:
            with self._engine.begin() as connection:
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                first = table.column("event_id")[0].as_py()
                cursor.execute("SELECT 1 FROM behaviour_events WHERE event_id = %s", (first,))
                if cursor.fetchone() is None:
                    _copy_rows(cursor, "behaviour_events", data)
                    return AppendResult(table.num_rows, {})
                ids: list[str] = table.column("event_id").to_pylist()
                existing = _digests(connection, ids)
                if len(existing) == len(ids):
                    return AppendResult(0, existing)
                new = table.filter(pa.array([i not in existing for i in ids], type=pa.bool_()))
                _copy_rows(cursor, "behaviour_events", _copy_data(new, now))
                return AppendResult(new.num_rows, existing)
        except UniqueViolation:
            pass  # the transaction rolled back: nothing of the batch is stored
        ids = table.column("event_id").to_pylist()
        with self._engine.begin() as connection:
            inserted = _copy_insert(connection, data)
            # The ids not stored now are stored already (committed, or another writer's
            # whose commit the insert waited for): their digests say duplicate or conflict.
            existing = _digests(connection, [i for i in ids if i not in inserted])
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


def _insert_first(
    connection: Connection, table: pa.Table, now: datetime, ids: list[str]
) -> tuple[set[str], dict[str, str]]:
    """SQLite: store the batch's new rows; the ids inserted, and the stored digest of each
    id that was already there.

    A fresh batch (the common case) is inserted straight away, without looking its ids
    up first: the insert probes the primary key anyway, and `total_changes` says whether
    every row went in. Only when some did not are the stored ones looked up, restricted
    to rows older than the batch: the transaction began with BEGIN IMMEDIATE (no other
    writer), and SQLite gives a new row a rowid above the largest one in the table (the
    table is append-only and never near the largest rowid), so `rowid <= ceiling` is
    exactly the rows that were there before. A batch whose first id is already stored is
    most likely a retry, so it is looked up first and only its new rows are bound."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    probe = driver.execute("SELECT 1 FROM behaviour_events WHERE event_id = ?", (ids[0],))
    if probe.fetchone() is not None:
        existing = _digests(connection, ids)
        return _insert(connection, table, now, existing), existing
    ceiling = driver.execute("SELECT coalesce(max(rowid), 0) FROM behaviour_events").fetchone()
    before = driver.total_changes
    _insert(connection, table, now, {})
    if driver.total_changes - before == len(ids):
        return set(ids), {}
    existing = _digests(connection, ids, older_than=int(ceiling[0]) + 1)
    return {event_id for event_id in ids if event_id not in existing}, existing


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


_NAMES = ", ".join(f'"{name}"' for name in _COLUMNS)


def _copy_rows(cursor: Any, table_name: str, data: bytes) -> None:
    """One binary `COPY` of `data` (`_copy_data`) into `table_name`: every row or none
    (a stored id fails it whole with a unique violation)."""
    with cursor.copy(f"COPY {table_name} ({_NAMES}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(data)


def _nothing_stored() -> AppendResult:
    return AppendResult(0, {})


_NOTHING_STORED: Callable[[], AppendResult] = _nothing_stored


#: PostgreSQL's binary COPY format: the file header (signature, no flags, no extension),
#: the end-of-data marker, and the field that stands for a NULL (length -1).
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_COPY_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())
_FIELD_COUNT = pa.scalar(len(_COLUMNS).to_bytes(2, "big"), pa.binary())
#: PostgreSQL counts dates and instants from 2000-01-01, Arrow from 1970-01-01 (UTC).
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_DAYS = 10_957
_PG_EPOCH_MICROS = _PG_EPOCH_DAYS * 86_400_000_000
#: Bytes of each fixed-width field kind in the binary format (a whole number: as its column).
_WIDTHS = {FieldKind.TIMESTAMP: 8, FieldKind.DATE: 4, FieldKind.BOOL: 1}


def _copy_data(table: pa.Table, now: datetime) -> bytes:
    """The rows in PostgreSQL's binary COPY format, in `_COLUMNS` order (the batch's
    fields, digest, `now`), built by Arrow without a Python object per value.

    Binary COPY spares the server the parsing of text (instants above all): about a fifth
    less server CPU than CSV for the same rows, measured. Each field is a 4-byte
    big-endian length (-1 for NULL) and the value's bytes: text as UTF-8, whole numbers,
    dates (days) and instants (microseconds since 2000-01-01 UTC) big-endian. Every row
    is the join of its fields' pieces (`binary_join_element_wise`, NULL pieces empty)."""
    pieces: list[pa.Array | pa.Scalar] = [_FIELD_COUNT]
    for name, kind in EVENT_FIELDS:
        column = table.column(name).combine_chunks()
        if column.null_count == len(column):
            pieces.append(_COPY_NULL)  # a field no row of the batch has
        else:
            pieces.extend(_binary_field(column, kind, _width(name, kind)))
    pieces.extend(_binary_field(table.column("digest").combine_chunks(), FieldKind.STRING, 0))
    micros = (now - _PG_EPOCH) // timedelta(microseconds=1)
    pieces.append(pa.scalar(b"\x00\x00\x00\x08" + micros.to_bytes(8, "big"), pa.binary()))
    rows = pc.binary_join_element_wise(*pieces, b"", null_handling="replace", null_replacement=b"")
    _, offset_buffer, data_buffer = rows.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32, count=len(rows) + 1, offset=rows.offset * 4)
    return b"".join(
        (_COPY_HEADER, memoryview(data_buffer)[offsets[0] : offsets[-1]], _COPY_TRAILER)
    )


def _width(name: str, kind: FieldKind) -> int:
    """Bytes of a fixed-width field (0 for text): a whole number takes its column's type."""
    if kind is FieldKind.INT64:
        column_type = behaviour_events.c[name].type
        return 8 if isinstance(column_type, BigInteger) else 4
    return _WIDTHS.get(kind, 0)


def _binary_field(column: pa.Array, kind: FieldKind, width: int) -> list[pa.Array]:
    """A column's pieces of each row: the lengths, then the values (NULL where absent)."""
    if kind is FieldKind.STRING:
        text = column.cast(pa.binary())
        return [_lengths(pc.binary_length(text).fill_null(-1).to_numpy()), text]
    if kind is FieldKind.TIMESTAMP:
        values = column.cast(pa.int64()).fill_null(0).to_numpy() - _PG_EPOCH_MICROS
    elif kind is FieldKind.DATE:
        values = column.cast(pa.int32()).fill_null(0).to_numpy() - _PG_EPOCH_DAYS
    else:  # whole numbers and booleans (as 0/1)
        values = column.cast(pa.int64()).fill_null(0).to_numpy()
    size = len(column)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if column.null_count else None
    data = pa.py_buffer(values.astype(f">i{width}" if width > 1 else np.int8).tobytes())
    fixed = pa.Array.from_buffers(pa.binary(width), size, [bitmap, data])
    return [_lengths(np.where(valid, width, -1)), fixed.cast(pa.binary())]


def _lengths(lengths: np.ndarray) -> pa.Array:
    """4-byte big-endian lengths, one binary value per row."""
    data = pa.py_buffer(lengths.astype(">i4").tobytes())
    return pa.Array.from_buffers(pa.binary(4), len(lengths), [None, data]).cast(pa.binary())


def _copy_insert(connection: Connection, data: bytes) -> set[str]:
    """COPY the batch (`_copy_data`) into a temporary table, then insert the ids not stored yet
    in one statement; `RETURNING` names the ids that were new."""
    names = _NAMES
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS behaviour_events_incoming "
        "(LIKE behaviour_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    _copy_rows(cursor, "behaviour_events_incoming", data)
    # On the driver's cursor: its fetchall reads the returned ids in one go (SQLAlchemy's
    # result would wrap every row).
    cursor.execute(
        f"INSERT INTO behaviour_events ({names}) "
        f"SELECT DISTINCT ON (event_id) {names} FROM behaviour_events_incoming "
        "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    return {str(event_id) for (event_id,) in cursor.fetchall()}


def _digests(
    connection: Connection, event_ids: list[str], *, older_than: int | None = None
) -> dict[str, str]:
    """The stored digest of each of `event_ids` that is already stored: one statement for
    the whole batch on the driver's cursor (the ids travel as one JSON array on SQLite,
    one newline-separated text on PostgreSQL), each id one primary-key probe inside the
    database. `older_than` (SQLite): only rows whose rowid is below it."""
    if not event_ids:
        return {}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if connection.dialect.name == "postgresql":
        # The ids travel as one text, split by the server: psycopg's dumping of a list
        # of 5,000 strings as an array was a tenth of a bulk load's client CPU. A stored
        # id never holds a newline (it matches the id pattern), so the split is exact.
        cursor.execute(
            "SELECT event_id, digest FROM behaviour_events "
            "WHERE event_id = ANY(string_to_array(%s, E'\\n'))",
            ("\n".join(event_ids),),
        )
    else:
        query = (
            "SELECT event_id, digest FROM behaviour_events "
            "WHERE event_id IN (SELECT value FROM json_each(?))"
        )
        parameters: tuple[object, ...] = (orjson.dumps(event_ids).decode(),)
        if older_than is not None:
            query += " AND rowid < ?"
            parameters += (older_than,)
        cursor.execute(query, parameters)
    return {str(event_id): str(digest) for event_id, digest in cursor.fetchall()}


def count_events(engine: Engine) -> int:
    """How many events are stored (used by tests and benchmarks)."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM behaviour_events")).scalar_one())
