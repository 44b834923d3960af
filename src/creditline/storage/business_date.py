"""The persisted business date: the lending day that only the end-of-day job moves.

A new database starts on the configured initial date (or today in China time, read from
the `Clock` once); after that, only `advance_to` changes it, and never backwards.

Every draw, repayment and decision reads it, so on PostgreSQL the read is one statement in
autocommit (no BEGIN/COMMIT round trips). Two first requests on a new database may both
find no row: the loser of the insert reads the winner's date instead of failing.

A use case may instead read it inside its own transaction (`get_in`): a decision reads it
with the customer's lock, in the same statement, and only a new database without the row
needs `get_in`, which starts the date on that transaction's connection (never on a
second one, which on SQLite would wait for the first's write lock).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from creditline.shared.clock import Clock, local_date
from creditline.shared.errors import ConflictError
from creditline.storage.tables import business_date

_ROW = 1
_READ = select(business_date.c.business_date).where(business_date.c.id == _ROW)
#: Start the date unless a concurrent transaction has (it then waits for that one's commit).
_START = {
    "postgresql": postgresql.insert(business_date).on_conflict_do_nothing(index_elements=["id"]),
    "sqlite": sqlite.insert(business_date).on_conflict_do_nothing(index_elements=["id"]),
}


class SqlBusinessDateStore:
    def __init__(self, engine: Engine, clock: Clock, initial: date | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self._initial = initial

    def get(self) -> date:
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect() as connection:
                autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                found = autocommit.execute(_READ).scalar_one_or_none()
            if isinstance(found, date):
                return found
        try:
            return self._read_or_start()
        except IntegrityError:
            # Another request started the date first; its date is the one that holds.
            return self._read_or_start()

    def get_in(self, connection: Connection) -> date:
        """The date, read (or started, on a new database) in the caller's transaction."""
        found = connection.execute(_READ).scalar_one_or_none()
        if isinstance(found, date):
            return found
        start = self._initial or local_date(self._clock.now())
        connection.execute(
            _START[connection.dialect.name],
            {"id": _ROW, "business_date": start, "updated_at": self._clock.now()},
        )
        stored = connection.execute(_READ).scalar_one()
        if not isinstance(stored, date):  # pragma: no cover - the column is a DATE
            raise TypeError(f"business date stored as {stored!r}")
        return stored

    def _read_or_start(self) -> date:
        with self._engine.begin() as connection:
            found = connection.execute(_READ).scalar_one_or_none()
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
