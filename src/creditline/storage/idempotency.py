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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

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


class SqlIdempotencyStore:
    def __init__(self, engine: Engine, lease: timedelta) -> None:
        self._engine = engine
        self._lease = lease
        self._autocommit = engine.dialect.name == "postgresql"

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
        try:
            with self._one_statement() as connection:
                connection.execute(
                    _CLAIM,
                    {
                        "key": key,
                        "fingerprint": fingerprint,
                        "method": method,
                        "path": path,
                        "state": "in_flight",
                        "headers": {},
                        "created_at": now,
                        "locked_until": now + self._lease,
                    },
                )
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
            if row.fingerprint != fingerprint:
                return Claim(ClaimOutcome.MISMATCH)
            if row.state == "completed":
                return Claim(
                    ClaimOutcome.REPLAY, row.status_code, dict(row.headers), row.response_body
                )
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
        with self._one_statement() as connection:
            connection.execute(
                _COMPLETE,
                {
                    "the_key": key,
                    "state": "completed",
                    "status_code": status_code,
                    "headers": headers,
                    "response_body": body,
                },
            )

    def release(self, key: str) -> None:
        """Forget a claim whose request failed on our side, so that a retry may run."""
        with self._one_statement() as connection:
            connection.execute(_RELEASE, {"the_key": key})
