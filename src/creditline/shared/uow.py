"""The unit-of-work protocol every capability's storage port extends.

`with uow:` opens one transaction; nothing is kept unless `commit()` is called inside the
block. A capability's own protocol adds its repositories as read-only properties.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class UnitOfWork(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
