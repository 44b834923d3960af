"""The unit of work: one database transaction, shared by every repository in it.

`with uow:` opens a session; nothing is kept unless `uow.commit()` is called before the
block ends (leaving the block rolls back). Capabilities subclass it and expose their
repositories as attributes, so a use case that spans capabilities (approve an application,
open its credit line) runs in one transaction. `connection()` is that transaction's
connection, for statements that are not a repository's (an idempotency record).

`with uow.committing():` holds the writes that end a use case; the block's end commits
them. On PostgreSQL they are sent in one psycopg pipeline with the `COMMIT`, so the last
statements of a transaction cost one round trip instead of one each (each round trip
waits for the server process to be scheduled, which on a busy machine is where a
request's tail comes from). A statement in the block gets no rows back, and a database
error in any of them is raised, as SQLAlchemy's error, when the block ends; nothing is
kept then. Other databases run the block as written, then commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Self, cast

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

_CONNECTION_KEY = "storage.transaction_connection"


def transaction_connection(session: Session) -> Connection:
    """The connection of the session's current transaction, asked of the session once per
    transaction (each `Session.connection()` call walks the session's transaction state,
    which cost more than some of the statements run on it)."""
    transaction = session.get_transaction()
    cached = session.info.get(_CONNECTION_KEY)
    if transaction is not None and cached is not None and cached[0] is transaction:
        return cast(Connection, cached[1])
    connection = session.connection()
    session.info[_CONNECTION_KEY] = (session.get_transaction(), connection)
    return connection


@contextmanager
def committing(session: Session) -> Iterator[None]:
    """Run the block's writes, then commit them, sent together where the driver can (see
    the module docstring)."""
    driver = transaction_connection(session).connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        try:
            with driver.pipeline():
                yield
                # Queued behind the writes, so that the pipeline's one closing sync sends
                # them all and waits once (`driver.commit()` would sync, then the exit
                # would sync again: two round trips).
                driver.execute("COMMIT")
        except psycopg.Error as error:  # raised by the pipeline's sync, outside SQLAlchemy
            raise DBAPIError.instance(None, None, error, psycopg.Error) from error
    else:
        yield
    # SQLAlchemy's own commit ends its transaction and returns the connection to the pool
    # (after the pipeline: the driver has nothing left to commit by then).
    session.commit()


class SqlAlchemyUnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._session

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open")
        self._session = self._session_factory()
        self._on_enter()
        return self

    def _on_enter(self) -> None:
        """Hook for subclasses to build their repositories on the new session."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None

    def connection(self) -> Connection:
        """The connection of this unit of work's transaction (opened if need be)."""
        return transaction_connection(self.session)

    def committing(self) -> AbstractContextManager[None]:
        """The writes that end the use case, committed when the block ends."""
        return committing(self.session)

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
