"""Engines for the system of record: a SQLite file by default, PostgreSQL in production.

SQLite is made to keep the same promises as PostgreSQL: foreign keys are enforced, the
journal is WAL (readers never block the writer), and every transaction starts with
`BEGIN IMMEDIATE`, so concurrent writers queue up instead of failing half-way; that is how
"a credit line can never be overdrawn" holds on SQLite. PostgreSQL uses row locks
(`SELECT … FOR UPDATE`) in the repositories for the same promise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`; creates the folder of a SQLite file if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, echo=echo)
    # A worker's thread pool runs up to 40 requests at once; 20 + 20 connections keep them
    # from queueing for a connection or opening and closing overflow ones at full load.
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=20, max_overflow=20)


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
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)
