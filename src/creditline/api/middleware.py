"""ASGI middleware: request ids, access logs, Prometheus metrics, and idempotent writes.

`RequestContextMiddleware` (outermost) gives each request an id (the caller's
`X-Request-ID` when it is sane, else a new one), binds it to every log line, echoes it in
the response, and records count and latency per route template.

`IdempotencyMiddleware` implements the `Idempotency-Key` contract for POSTs (see
`creditline.storage.idempotency`): the first request runs and its response is stored; a
replay returns that response with `Idempotent-Replayed: true`; the same key with another
request, or while the first is still running, is 409. Server errors (5xx) are not stored,
so the client may retry. The key is handed to the route in `request.state.idempotency_key`
so that services can use it as the id of what they create.

A route that keeps the record in its own transaction (`record_in_transaction`: a decision,
a draw, a repayment) has nothing written here: its claim is only noted in memory, on the
event loop, and the route gets a `KeyedRequest` in `request.state.idempotency_request`
(see `creditline.api.idempotent`). Afterwards only an answer the route did not record
(a problem raised before or inside its service) is written, on the thread pool; so such a
request costs one trip through the pool, for its work, instead of three (each trip, a
thread wake-up and a GIL hand-over each way, cost about as much CPU as a statement).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditline.api.blocking import run_blocking
from creditline.api.idempotent import REFUSALS, KeyedRequest, replayable, stored_response
from creditline.api.problems import problem
from creditline.bootstrap import Container
from creditline.shared.errors import FieldIssue
from creditline.storage.idempotency import (
    Claim,
    ClaimOutcome,
    SqlIdempotencyStore,
    keeps_own_record,
    request_fingerprint,
)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SANE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

access_log = structlog.get_logger("creditline.access")
_ROOT = logging.getLogger()


class Metrics:
    """The HTTP metrics of one app, on their own registry (so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "creditline_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "creditline_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # The labelled children, kept: `labels()` takes a lock and checks its arguments on
        # every call. The keys are bounded: route templates (not paths) and status codes.
        self._counts: dict[tuple[str, str, int], Counter] = {}
        self._latencies: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        count = self._counts.get((method, route, status))
        if count is None:
            count = self.requests.labels(method, route, str(status))
            self._counts[(method, route, status)] = count
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self.latency.labels(method, route)
            self._latencies[(method, route)] = latency
        count.inc()
        latency.observe(seconds)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _SANE_ID.match(offered) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            status = status_holder["status"]
            self.metrics.observe(method, route, status, elapsed)
            # `configure_logging` sets the same level for structlog and the root logger;
            # asking the latter first spares a request the lazy logger's set-up when the
            # access log is off (a server at WARNING).
            if _ROOT.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )
            structlog.contextvars.unbind_contextvars("request_id")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key_bytes = dict(scope.get("headers") or []).get(b"idempotency-key")
        if key_bytes is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        key = key_bytes.decode("latin-1")
        if not _SANE_KEY.match(key):
            response = problem(
                400,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                request=request,
                errors=[FieldIssue("Idempotency-Key", "invalid", "1–255 visible ASCII characters")],
            )
            await response(scope, receive, send)
            return
        body = await read_body(receive)
        container: Container = scope["app"].state.container
        store: SqlIdempotencyStore = container.idempotency
        method = scope["method"]
        path = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        fingerprint = request_fingerprint(method, path, body)
        now = container.clock.now()
        state = scope.setdefault("state", {})
        if keeps_own_record(method, path):
            # Noted in memory only (no I/O): the route's transaction writes the record.
            claim = store.claim(key, fingerprint, method, path, now)
            state["idempotency_request"] = KeyedRequest(key, fingerprint, method, path)
        else:
            claim = await run_blocking(
                container, lambda: store.claim(key, fingerprint, method, path, now)
            )
        if claim.outcome is not ClaimOutcome.CLAIMED:
            await _answer_unclaimed(scope, send, request, claim, body)
            return
        state["idempotency_key"] = key
        captured = _CapturedResponse()
        try:
            await self.app(scope, replay(body), captured.send)
        except BaseException:
            await _settle(container, store.release_later(key))
            raise
        if captured.status >= 500:  # not stored: the client may retry
            await _settle(container, store.release_later(key))
            await captured.replay(send)
            return
        instead = await _settle(
            container,
            store.complete_later(key, captured.status, replayable(captured.headers), captured.body),
        )
        if instead is not None:  # the key had a record the route never reached
            await _answer_unclaimed(scope, send, request, instead, body)
            return
        await captured.replay(send)


async def _settle(container: Container, write: Callable[[], Claim | None] | None) -> Claim | None:
    """Do a record's write, if it needs one, where the routes do theirs (`api.blocking`)."""
    return None if write is None else await run_blocking(container, write)


async def _answer_unclaimed(
    scope: Scope, send: Send, request: Request, claim: Claim, body: bytes
) -> None:
    """A replay of the stored response, or 409 for another request or one still running."""
    if claim.outcome is ClaimOutcome.REPLAY:
        await stored_response(claim)(scope, replay(body), send)
        return
    code, detail = REFUSALS[claim.outcome]
    await problem(409, code, detail, request=request)(scope, replay(body), send)


async def read_body(receive: Receive) -> bytes:
    """The whole body of a request, from its `http.request` messages."""
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    """A `receive` that hands over `body`, already read, once (then a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class _CapturedResponse:
    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def replay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})
