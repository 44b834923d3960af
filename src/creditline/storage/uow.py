"""The unit of work: one database transaction, shared by every repository in it.

`with uow:` opens a session; nothing is kept unless `uow.commit()` is called before the
block ends (leaving the block rolls back). Capabilities subclass it and expose their
repositories as attributes, so a use case that spans capabilities (approve an application,
open its credit line) runs in one transaction. `connection()` is that transaction's
connection, for statements that are not a repository's (an idempotency record).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self, cast

from sqlalchemy import Connection
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

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
