"""The persisted business date: the lending day that only the end-of-day job moves.

A new database starts on the configured initial date (or today in China time, read from
the `Clock` once); after that, only `advance_to` changes it, and never backwards.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, insert, select, update

from creditline.shared.clock import Clock, local_date
from creditline.shared.errors import ConflictError
from creditline.storage.tables import business_date

_ROW = 1


class SqlBusinessDateStore:
    def __init__(self, engine: Engine, clock: Clock, initial: date | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self._initial = initial

    def get(self) -> date:
        with self._engine.begin() as connection:
            found = connection.execute(
                select(business_date.c.business_date).where(business_date.c.id == _ROW)
            ).scalar_one_or_none()
            if isinstance(found, date):
                return found
            start = self._initial or local_date(self._clock.now())
            connection.execute(
                insert(business_date).values(
                    id=_ROW, business_date=start, updated_at=self._clock.now()
                )
            )
            return start

    def advance_to(self, new_date: date) -> None:
        current = self.get()
        if new_date < current:
            raise ConflictError(
                f"the business date only moves forward: {current} is later than {new_date}",
                code="business_date_backwards",
            )
        with self._engine.begin() as connection:
            connection.execute(
                update(business_date)
                .where(business_date.c.id == _ROW)
                .values(business_date=new_date, updated_at=self._clock.now())
            )
