"""Engines for the system of record: a SQLite file by default, PostgreSQL in production.

SQLite is made to keep the same promises as PostgreSQL: foreign keys are enforced, the
journal is WAL (readers never block the writer), and every transaction starts with
`BEGIN IMMEDIATE`, so concurrent writers queue up instead of failing half-way; that is how
"a credit line can never be overdrawn" holds on SQLite. PostgreSQL uses row locks
(`SELECT … FOR UPDATE`) in the repositories for the same promise.

With `synchronous=NORMAL` a WAL commit does not wait for the disk; only a checkpoint
(copying the WAL back into the database file) does. SQLite runs it inside whichever
commit crosses the threshold, so about one request in a hundred paid for everybody's
writes. A file database therefore gets a checkpointer thread that runs a passive
checkpoint every half second on its own connection (never blocking readers or the
writer); the commits' own automatic checkpoint stays as a backstop at 64 MiB of WAL, in
case that thread falls behind.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection idle this long is pinged before use (see the module docstring).
PING_AFTER_IDLE_SECONDS = 1.0


def create_db_engine(
    url: str,
    *,
    echo: bool = False,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    threads: int = 8,
) -> Engine:
    """An engine for `url`; creates the folder of a SQLite file if needed. `threads`: how
    many threads may run transactions at once (a server's `http_threads`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, echo=echo)
    # One kept connection per thread that runs transactions, and two spare: overflow
    # connections (opened past the pool's size, closed on return) are for bursts from
    # elsewhere, and a server that churned them paid a connection set-up on both sides.
    engine = create_engine(
        url, echo=echo, pool_size=threads + 2, max_overflow=10, pool_use_lifo=True
    )
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Ping a connection at checkout if it was returned `after` seconds ago or more; a
    dead one is replaced by a new connection (the pool retries on `DisconnectionError`)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < after:
            return  # new, or back in the pool only a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.DisconnectionError("pooled connection found dead") from error
            raise
        if not alive:
            raise exc.DisconnectionError("pooled connection found dead")


def _sqlite_engine(url: str, database: str | None, *, echo: bool) -> Engine:
    in_memory = not database or database == ":memory:"
    if not in_memory and database is not None:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"echo": echo, "connect_args": {"check_same_thread": False}}
    if not in_memory:
        kwargs["connect_args"]["timeout"] = 30
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    if not in_memory and database is not None:
        checkpointer = WalCheckpointer(database, engine)
        event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())
    return engine


# Pages of WAL (4 KiB each) after which a commit checkpoints by itself: the backstop.
BACKSTOP_PAGES = 16384
CHECKPOINT_SECONDS = 0.5


class WalCheckpointer:
    """Checkpoints a SQLite file's WAL off the request path, while its engine lives.

    The thread holds only a weak reference to the engine: it ends when the engine is
    disposed or garbage-collected, so short-lived engines (tests, CLI commands) leave no
    thread behind for long.
    """

    def __init__(self, database: str, engine: Engine) -> None:
        self._database = database
        self._engine = weakref.ref(engine)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wal-checkpoint:{Path(database).name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the thread and close its connection before returning: after `dispose()`
        the last connection closes, so SQLite folds the WAL back into the file (a copy
        of the file alone is then the whole database)."""
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopped.wait(CHECKPOINT_SECONDS) and self._engine() is not None:
                if connection is None:
                    if not Path(self._database).exists():
                        continue
                    connection = sqlite3.connect(self._database, timeout=0, isolation_level=None)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    # Busy (another checkpoint runs) or the file is gone: try next time.
                    continue
        finally:
            if connection is not None:
                connection.close()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)
