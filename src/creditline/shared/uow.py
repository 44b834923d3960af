"""The unit-of-work protocol every capability's storage port extends.

`with uow:` opens one transaction; nothing is kept unless `commit()` is called inside the
block. A capability's own protocol adds its repositories as read-only properties. A use
case may instead end with `with uow.committing(): <writes>`, which commits when the
block ends: storage may send those writes and the commit together, so a write's error
can surface only at the end of the block (and then nothing is kept); a read inside the
block gets nothing back.

A `RequestRecord` is the caller's record of the request that asked for the work (an HTTP
`Idempotency-Key`), kept in the work's own transaction: a use case that takes one claims
it with its first statement and completes it with the result by its last, so the record
commits or rolls back with the work, and a retry finds either both or neither.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol, Self, TypeVar

R_contra = TypeVar("R_contra", contravariant=True)


class UnitOfWork(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class CommittingUnitOfWork(UnitOfWork, Protocol):
    def committing(self) -> AbstractContextManager[None]:
        """The writes that end the use case, committed when the block ends (see above)."""
        ...


class RequestRecord(Protocol[R_contra]):
    """The record of the request behind a use case, kept in the use case's transaction."""

    def claim(self) -> None:
        """Claim the request; raises to stop (a replay, or a key used for another request)."""
        ...

    def complete(self, result: R_contra) -> None:
        """Store the answer to `result` beside the work, before the commit."""
        ...
