"""Idempotency-Key records kept in the transaction of the work they answer.

A route that moves money or opens a line (a decision, a draw, a repayment) is named with
`record_in_transaction` (see `creditline.storage.idempotency`). The middleware then writes
nothing for its key: it leaves a `KeyedRequest` in `request.state`, and the route hands a
`TransactionRecord` to its service. The service claims the key with the first statement
of its transaction and stores the response with the last, so the work, the claim and the
answer commit together or not at all, on one connection:

- a retry after a commit finds the stored answer (a replay, byte for byte);
- a retry after a crash or a rollback finds nothing and runs again;
- a twin sent while the first is running waits on the key's unique index and then
  replays; the same key with another request is a 409.

The record renders its answer with the route's own renderer, so a replay returns what the
first request returned. `respond` runs the work on the route's thread and returns the
response (the stored one, a replay, or a 409 problem); it tells the store the key was
answered here, so the middleware stores only answers the route never reached (a 4xx
raised before or inside the service, which roll the transaction back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from creditline.api.blocking import run_blocking
from creditline.api.problems import problem
from creditline.bootstrap import Container
from creditline.shared.clock import Clock
from creditline.storage.direct import DirectStatement
from creditline.storage.idempotency import Claim, ClaimOutcome, SqlIdempotencyStore

T = TypeVar("T")

#: Headers that describe the result (not the connection), kept for replays.
REPLAYED_HEADERS = frozenset({b"content-type", b"location"})

#: The 409 of a key that cannot run now: (code, detail) by claim outcome.
REFUSALS = {
    ClaimOutcome.MISMATCH: (
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request",
    ),
    ClaimOutcome.IN_FLIGHT: (
        "request_in_flight",
        "a request with this Idempotency-Key is still being processed",
    ),
}


def replayable(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers of a response worth storing for its replays."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in headers
        if name.lower() in REPLAYED_HEADERS
    }


def stored_response(claim: Claim) -> Response:
    """The stored answer of a completed key, marked as a replay."""
    headers = dict(claim.headers or {})
    headers["idempotent-replayed"] = "true"
    return Response(claim.body or b"", status_code=claim.status_code or 200, headers=headers)


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """An idempotent request whose record the route keeps (left by the middleware)."""

    key: str
    fingerprint: str
    method: str
    path: str


class Answered(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The request was answered before its work ran (a replay or a 409): roll back."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered")
        self.response = response


class TransactionRecord(Generic[T]):
    """The `RequestRecord` of one keyed request: claim and answer on `connection()`."""

    def __init__(
        self,
        store: SqlIdempotencyStore,
        clock: Clock,
        keyed: KeyedRequest,
        request: Request,
        connection: Callable[[], Connection],
        render: Callable[[T], Response],
    ) -> None:
        self._store = store
        self._clock = clock
        self._keyed = keyed
        self._request = request
        self._connection = connection
        self._render = render
        self._now: datetime  # the claim's time, set with its statement
        self.response: Response | None = None

    def claim(self) -> None:
        connection = self._connection()
        statement, values = self.claim_statement(connection.dialect.name)
        self.claimed(statement.execute(connection, values))

    def claim_statement(self, dialect: str) -> tuple[DirectStatement, dict[str, Any]]:
        """The claim as a statement, for a repository that sends it in one round trip with
        the statements that open the work (a `StatementClaim`); `claimed` takes its rows."""
        keyed = self._keyed
        self._now = self._clock.now()
        return self._store.claim_statement(
            dialect, keyed.key, keyed.fingerprint, keyed.method, keyed.path, self._now
        )

    def claimed(self, rows: list[dict[str, Any]]) -> None:
        keyed = self._keyed
        claim = self._store.claim_result_in(
            self._connection(), rows, keyed.key, keyed.fingerprint, self._now
        )
        if claim.outcome is ClaimOutcome.CLAIMED:
            return
        if claim.outcome is ClaimOutcome.REPLAY:
            raise Answered(stored_response(claim))
        code, detail = REFUSALS[claim.outcome]
        raise Answered(problem(409, code, detail, request=self._request))

    def complete(self, result: T) -> None:
        response = self._render(result)
        self._store.complete_in(
            self._connection(),
            self._keyed.key,
            response.status_code,
            replayable(response.raw_headers),
            bytes(response.body),
        )
        self.response = response

    def answered(self) -> None:
        """Tell the store this key was answered here (stored, replayed or refused)."""
        self._store.recorded(self._keyed.key)


def transaction_record(
    container: Container,
    keyed: KeyedRequest | None,
    request: Request,
    connection: Callable[[], Connection],
    render: Callable[[T], Response],
) -> TransactionRecord[T] | None:
    """The record of a keyed request for its use case, or None for a request without a key."""
    if keyed is None:
        return None
    return TransactionRecord(
        container.idempotency, container.clock, keyed, request, connection, render
    )


def respond(
    record: TransactionRecord[T] | None,
    work: Callable[[], T],
    render: Callable[[T], Response],
) -> Response:
    """Run `work` (which claims and completes `record`, if any) and answer for it."""
    try:
        result = work()
    except Answered as answered:
        if record is not None:
            record.answered()
        return answered.response
    if record is not None:
        record.answered()
        if record.response is not None:
            return record.response
    return render(result)


async def respond_blocking(
    container: Container,
    record: TransactionRecord[T] | None,
    work: Callable[[], T],
    render: Callable[[T], Response],
) -> Response:
    """`respond`, run where the app runs a request's blocking work (`api.blocking`)."""
    return await run_blocking(container, lambda: respond(record, work, render))
