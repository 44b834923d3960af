"""The unit of work: one database transaction, shared by every repository in it.

`with uow:` opens a session; nothing is kept unless `uow.commit()` is called before the
block ends (leaving the block rolls back). Capabilities subclass it and expose their
repositories as attributes, so a use case that spans capabilities (approve an application,
open its credit line) runs in one transaction.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker


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

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
