"""Idempotency records for HTTP writes, as Stripe and Formance keep them.

A creating request carries an `Idempotency-Key`. The first request with a key *claims*
it (state `in_flight`, with a lease); its response is then stored (`completed`). A retry
with the same key and the same request (method, path and body fingerprint) gets the
stored response again; the same key with another request is a conflict; a retry while
the first is still running is a conflict too. If a process dies mid-request, its claim
expires after the lease and the key can be used again; the services themselves take the
key as the id of what they create, so a re-run after a crash cannot create a second copy.

Claiming, completing and releasing are each one statement, and every idempotent POST does
two of them, so on PostgreSQL they run in autocommit mode: no `BEGIN`/`COMMIT` round trips
around a statement that is atomic on its own (the unique key still decides which of two
concurrent claims wins). SQLite keeps its `BEGIN IMMEDIATE` transactions, which is how
writers queue there.

A route may instead keep the record *in its own transaction* (a decision, a draw and a
repayment do: each is one transaction on one connection). Such a route is named once with
`record_in_transaction(method, path_template)`; `claim` then writes nothing for it, and
the route, as the first statement of its transaction, claims the key with `claim_in` (an
insert that does nothing on conflict: a racing twin waits on the key's unique index until
the first commits, then finds its stored response) and, as its last, stores the response
with `complete_in`. The claim and the response therefore commit or roll back with the
work itself: no lease is needed, and a replay returns the stored bytes. When the route
has done so it says `recorded(key)`, and `complete` writes nothing; a response the route
did not record (a 4xx raised before or inside it) is stored by `complete`, unless the key
has a record by then, whose answer is returned instead (`complete_later`).

The in-transaction claim is one statement whose result is needed only before the work's
own reads are used, so a repository may send it in one round trip with the statements
that open the work (`claim_statement`, then `claim_result_in` with its rows): a record
that can be claimed so is a `StatementClaim`. The server runs them in order, the claim
first, exactly as if they were sent one by one; if the key turns out to be taken, the
statements after it ran for nothing and are rolled back with the rest.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from creditline.storage.direct import DirectStatement
from creditline.storage.tables import idempotency_keys

# Built once: the two statements of every idempotent request take their values as
# parameters, so SQLAlchemy does not rebuild and re-key them per request.
_CLAIM = insert(idempotency_keys)
_COMPLETE = update(idempotency_keys).where(idempotency_keys.c.key == bindparam("the_key"))
_RELEASE = (
    delete(idempotency_keys)
    .where(idempotency_keys.c.key == bindparam("the_key"))
    .where(idempotency_keys.c.state == "in_flight")
)


# (method, path pattern) of the routes that write their own record in their transaction.
_IN_TRANSACTION: list[tuple[str, re.Pattern[str]]] = []
_TEMPLATE_PARAMETER = re.compile(r"\{[^/{}]+\}")


def record_in_transaction(method: str, template: str) -> None:
    """Name a route that keeps its own record: its method and path template, such as
    `/v1/loans/{loan_id}/repayments` (a parameter is one path segment; no query)."""
    parts = _TEMPLATE_PARAMETER.split(template)
    pattern = "[^/?]+".join(re.escape(part) for part in parts)
    _IN_TRANSACTION.append((method.upper(), re.compile(pattern)))


def keeps_own_record(method: str, path: str) -> bool:
    """Whether `claim` leaves the record of this request (path with any query) to the
    route's transaction."""
    method = method.upper()
    return any(m == method and p.fullmatch(path) for m, p in _IN_TRANSACTION)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same request": method, path (with query) and body."""
    return hashlib.sha256(b"\x00".join([method.encode(), path.encode(), body])).hexdigest()


_CLAIM_IN = {
    "postgresql": postgresql.insert(idempotency_keys)
    .on_conflict_do_nothing(index_elements=["key"])
    .returning(idempotency_keys.c.key),
    "sqlite": sqlite.insert(idempotency_keys)
    .on_conflict_do_nothing(index_elements=["key"])
    .returning(idempotency_keys.c.key),
}
_READ = select(idempotency_keys).where(idempotency_keys.c.key == bindparam("the_key"))
# The in-transaction claim and answer run on every decision, draw and repayment: directly
# on the driver (see `storage.direct`).
_CLAIM_IN_DIRECT = {name: DirectStatement(statement) for name, statement in _CLAIM_IN.items()}
_COMPLETE_IN = DirectStatement(_COMPLETE)


@runtime_checkable
class StatementClaim(Protocol):
    """A request record whose claim a repository may send in one round trip with the
    statements that open the work (see the module docstring)."""

    def claim_statement(self, dialect: str) -> tuple[DirectStatement, dict[str, Any]]:
        """The claim, for a connection of this dialect (name)."""
        ...

    def claimed(self, rows: list[dict[str, Any]]) -> None:
        """Take the claim's rows once they are back; raises to stop, as a claim does."""
        ...


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    status_code: int | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class _Deferred:
    """A claim left to the route: what `complete` needs if the route records nothing."""

    fingerprint: str
    method: str
    path: str
    now: datetime


class SqlIdempotencyStore:
    def __init__(self, engine: Engine, lease: timedelta) -> None:
        self._engine = engine
        self._lease = lease
        self._autocommit = engine.dialect.name == "postgresql"
        # Claims left to in-transaction routes, and the keys those routes have recorded,
        # per key (two requests with one key may run at once in this process).
        self._lock = threading.Lock()
        self._deferred: dict[str, list[_Deferred]] = {}
        self._recorded: Counter[str] = Counter()

    @contextmanager
    def _one_statement(self) -> Iterator[Connection]:
        """A connection for one atomic statement: autocommit where the database allows it."""
        if not self._autocommit:
            with self._engine.begin() as connection:
                yield connection
            return
        with self._engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def claim(self, key: str, fingerprint: str, method: str, path: str, now: datetime) -> Claim:
        if keeps_own_record(method, path):
            with self._lock:
                self._deferred.setdefault(key, []).append(_Deferred(fingerprint, method, path, now))
            return Claim(ClaimOutcome.CLAIMED)
        try:
            with self._one_statement() as connection:
                values = _claim_values(key, fingerprint, method, path, now)
                connection.execute(_CLAIM, values | {"locked_until": now + self._lease})
            return Claim(ClaimOutcome.CLAIMED)
        except IntegrityError:
            return self._existing(key, fingerprint, now)

    def _existing(self, key: str, fingerprint: str, now: datetime) -> Claim:
        with self._engine.begin() as connection:
            row = connection.execute(
                select(idempotency_keys).where(idempotency_keys.c.key == key)
            ).one_or_none()
            if row is None:  # released between our insert and this read: let the client retry
                return Claim(ClaimOutcome.IN_FLIGHT)
            answer = _recorded_answer(row, fingerprint)
            if answer is not None:
                return answer
            if row.locked_until > now:
                return Claim(ClaimOutcome.IN_FLIGHT)
            # The first attempt died without finishing: take over its claim.
            taken = connection.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == key)
                .where(idempotency_keys.c.state == "in_flight")
                .where(idempotency_keys.c.locked_until == row.locked_until)
                .values(locked_until=now + self._lease)
            ).rowcount
            return Claim(ClaimOutcome.CLAIMED if taken == 1 else ClaimOutcome.IN_FLIGHT)

    def complete(self, key: str, status_code: int, headers: dict[str, str], body: bytes) -> None:
        """Store the response to replay: its status, body and replayable headers."""
        write = self.complete_later(key, status_code, headers, body)
        if write is not None:
            write()  # what an existing record says is for the middleware; here, ignored

    def complete_later(
        self, key: str, status_code: int, headers: dict[str, str], body: bytes
    ) -> Callable[[], Claim | None] | None:
        """`complete` in two steps: settle the claim now (no I/O), and return the write to
        do, if any. A key its route recorded in its own transaction needs none, so the
        caller (the event loop) need not hand it to a thread.

        For such a route that did not record this answer (it was refused before it
        claimed, or rolled back), the write stores it unless the key already has a record;
        then it returns what that record says instead (a replay, or a 409), which is what
        the request would have got had the route claimed the key."""
        deferred, recorded, alone = self._settle(key)
        if recorded:
            return None
        values = _completed(status_code, headers, body)
        if deferred is not None:
            if not alone:
                # Two requests with this key in flight here and the route recorded neither:
                # which fingerprint is whose is unknown, so none is stored (a retry re-runs,
                # which the route's own idempotency makes safe).
                return None
            return self._store_unless_recorded(key, deferred, values)
        return self._write(_COMPLETE, {"the_key": key, **values})

    def release(self, key: str) -> None:
        """Forget a claim whose request failed on our side, so that a retry may run."""
        write = self.release_later(key)
        if write is not None:
            write()

    def release_later(self, key: str) -> Callable[[], Claim | None] | None:
        """`release` in two steps, as `complete_later`."""
        deferred, _, _ = self._settle(key)
        if deferred is not None:  # the route's transaction rolled its claim back
            return None
        return self._write(_RELEASE, {"the_key": key})

    def _write(self, statement: Any, values: dict[str, Any]) -> Callable[[], Claim | None]:
        def write() -> Claim | None:
            with self._one_statement() as connection:
                connection.execute(statement, values)
            return None

        return write

    def _store_unless_recorded(
        self, key: str, deferred: _Deferred, values: dict[str, Any]
    ) -> Callable[[], Claim | None]:
        claimed = _claim_values(
            key, deferred.fingerprint, deferred.method, deferred.path, deferred.now
        )

        def write() -> Claim | None:
            with self._one_statement() as connection:
                stored = connection.execute(
                    _CLAIM_IN[self._engine.dialect.name], claimed | values
                ).first()
                if stored is not None:
                    return None
                row = connection.execute(_READ, {"the_key": key}).one_or_none()
            if row is None:  # released meanwhile: nothing to answer instead
                return None
            return _recorded_answer(row, deferred.fingerprint) or Claim(ClaimOutcome.IN_FLIGHT)

        return write

    def _settle(self, key: str) -> tuple[_Deferred | None, bool, bool]:
        """Close one deferred claim of `key`: (the claim or None, recorded by the route,
        whether it was the only one in flight)."""
        with self._lock:
            pending = self._deferred.get(key)
            if not pending:
                return None, False, True
            deferred = pending.pop()
            alone = not pending
            if alone:
                del self._deferred[key]
            recorded = self._recorded[key] > 0
            if recorded:
                self._recorded[key] -= 1
                if not self._recorded[key]:
                    del self._recorded[key]
            return deferred, recorded, alone

    def recorded(self, key: str) -> None:
        """The route has answered `key` in its own transaction (stored or replayed)."""
        with self._lock:
            if key in self._deferred:
                self._recorded[key] += 1

    # In-transaction records: statements on the route's own connection.

    def claim_in(
        self,
        connection: Connection,
        key: str,
        fingerprint: str,
        method: str,
        path: str,
        now: datetime,
    ) -> Claim:
        """Claim `key` inside the caller's transaction (see the module docstring)."""
        statement, values = self.claim_statement(
            connection.dialect.name, key, fingerprint, method, path, now
        )
        return self.claim_result_in(
            connection, statement.execute(connection, values), key, fingerprint, now
        )

    def claim_statement(
        self, dialect: str, key: str, fingerprint: str, method: str, path: str, now: datetime
    ) -> tuple[DirectStatement, dict[str, Any]]:
        """The statement of `claim_in` and its values, to be sent by the caller."""
        return _CLAIM_IN_DIRECT[dialect], _claim_values(key, fingerprint, method, path, now)

    def claim_result_in(
        self,
        connection: Connection,
        claimed: list[dict[str, Any]],
        key: str,
        fingerprint: str,
        now: datetime,
    ) -> Claim:
        """What the rows of a `claim_statement` sent in the caller's transaction mean."""
        if claimed:
            return Claim(ClaimOutcome.CLAIMED)
        row = connection.execute(_READ, {"the_key": key}).one()
        answer = _recorded_answer(row, fingerprint)
        if answer is not None:
            return answer
        if row.locked_until > now:  # an out-of-transaction claim, still running
            return Claim(ClaimOutcome.IN_FLIGHT)
        # An out-of-transaction claim whose request died: this transaction takes it over.
        connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(locked_until=now + self._lease)
        )
        return Claim(ClaimOutcome.CLAIMED)

    def complete_in(
        self,
        connection: Connection,
        key: str,
        status_code: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        """Store the response of a key claimed with `claim_in`, in the same transaction."""
        _COMPLETE_IN.execute(connection, {"the_key": key, **_completed(status_code, headers, body)})


def _recorded_answer(row: Any, fingerprint: str) -> Claim | None:
    """What an existing record says to a request with `fingerprint`: 409 if it is another
    request's, its stored answer if completed, None while its request is still running."""
    if row.fingerprint != fingerprint:
        return Claim(ClaimOutcome.MISMATCH)
    if row.state == "completed":
        return Claim(ClaimOutcome.REPLAY, row.status_code, dict(row.headers), row.response_body)
    return None


def _completed(status_code: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The columns of a stored response."""
    return {
        "state": "completed",
        "status_code": status_code,
        "headers": headers,
        "response_body": body,
    }


def _claim_values(
    key: str, fingerprint: str, method: str, path: str, now: datetime
) -> dict[str, Any]:
    return {
        "key": key,
        "fingerprint": fingerprint,
        "method": method,
        "path": path,
        "state": "in_flight",
        "headers": {},
        "created_at": now,
        "locked_until": now,
    }
