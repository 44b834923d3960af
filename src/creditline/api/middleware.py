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

Routes whose paths are given as `self_claiming` (the draw and the repayment) claim their
key themselves, on the thread their endpoint runs on, through the `DeferredClaim` left in
`request.state.idempotency_claim`: claim, the work, and storing the response then take
one trip through the thread pool instead of three, and each trip (a thread wake-up and a
GIL hand-over each way) cost about as much CPU as a database statement. The contract is
the same: a route that does not reach its endpoint (a body FastAPI refuses, say) has its
key claimed after the fact, which is the same as claiming it first, since nothing ran; an
answer the route did not store itself (a problem raised by its service) is stored here.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditline.api.problems import problem
from creditline.shared.errors import FieldIssue
from creditline.storage.idempotency import Claim, ClaimOutcome, request_fingerprint

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SANE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = frozenset({b"content-type", b"location"})

access_log = structlog.get_logger("creditline.access")


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
        request_id = offered if _SANE_ID.match(offered) else uuid.uuid4().hex
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
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            access_log.info(
                "request",
                method=method,
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )
            structlog.contextvars.unbind_contextvars("request_id")


class _Store(Protocol):
    def claim(self, key: str, fingerprint: str, method: str, path: str, now: datetime) -> Claim: ...

    def complete(
        self, key: str, status_code: int, headers: dict[str, str], body: bytes
    ) -> None: ...

    def release(self, key: str) -> None: ...


class _Clock(Protocol):
    def now(self) -> datetime: ...


class DeferredClaim:
    """An idempotent request whose route claims its key itself, from its own thread.

    `run(respond)` claims the key; if it is this request's to run, calls `respond` and
    stores its answer before returning it. Otherwise it returns a placeholder, and the
    middleware answers with the stored response (a replay) or the 409 problem.
    """

    def __init__(
        self, store: _Store, clock: _Clock, key: str, fingerprint: str, method: str, path: str
    ) -> None:
        self.store = store
        self.clock = clock
        self.key = key
        self.fingerprint = fingerprint
        self.method = method
        self.path = path
        self.claim: Claim | None = None
        self.stored = False

    @property
    def claimed(self) -> bool:
        return self.claim is not None and self.claim.outcome is ClaimOutcome.CLAIMED

    def take(self) -> Claim:
        """Claim the key now (what the middleware does first for other routes)."""
        return self.store.claim(
            self.key, self.fingerprint, self.method, self.path, self.clock.now()
        )

    def run(self, respond: Callable[[], Response]) -> Response:
        self.claim = self.take()
        if not self.claimed:
            return Response(status_code=204)  # not sent: the middleware answers instead
        response = respond()
        if response.status_code < 500:
            self.store.complete(
                self.key,
                response.status_code,
                _replayable(response.raw_headers),
                bytes(response.body),
            )
            self.stored = True
        return response


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, self_claiming: Sequence[re.Pattern[str]] = ()) -> None:
        self.app = app
        self.self_claiming = tuple(self_claiming)

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
        body = await _read_body(receive)
        container = scope["app"].state.container
        path = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        fingerprint = request_fingerprint(scope["method"], path, body)
        deferred = DeferredClaim(
            container.idempotency, container.clock, key, fingerprint, scope["method"], path
        )
        if any(pattern.match(scope["path"]) for pattern in self.self_claiming):
            await self._run_deferred(scope, send, request, deferred, body)
        else:
            await self._run_once(scope, send, request, deferred, body)

    async def _run_once(
        self, scope: Scope, send: Send, request: Request, deferred: DeferredClaim, body: bytes
    ) -> None:
        store = deferred.store
        claim = await run_in_threadpool(deferred.take)
        if claim.outcome is not ClaimOutcome.CLAIMED:
            await _answer_unclaimed(scope, send, request, claim, body)
            return
        scope.setdefault("state", {})["idempotency_key"] = deferred.key
        captured = _CapturedResponse()
        try:
            await self.app(scope, _replay(body), captured.send)
        except BaseException:
            await run_in_threadpool(store.release, deferred.key)
            raise
        await _store_captured(store, deferred.key, captured)
        await captured.replay(send)

    async def _run_deferred(
        self, scope: Scope, send: Send, request: Request, deferred: DeferredClaim, body: bytes
    ) -> None:
        """Let the route claim the key on its own thread (see the module docstring)."""
        state = scope.setdefault("state", {})
        state["idempotency_key"] = deferred.key
        state["idempotency_claim"] = deferred
        captured = _CapturedResponse()
        try:
            await self.app(scope, _replay(body), captured.send)
        except BaseException:
            if deferred.claimed:
                await run_in_threadpool(deferred.store.release, deferred.key)
            raise
        claim = deferred.claim
        if claim is None:
            # The route did not run (the request was refused before its endpoint), so
            # nothing happened yet: claim now, exactly as if the key had been claimed first.
            claim = await run_in_threadpool(deferred.take)
        if claim.outcome is not ClaimOutcome.CLAIMED:
            await _answer_unclaimed(scope, send, request, claim, body)
            return
        if not deferred.stored:
            await _store_captured(deferred.store, deferred.key, captured)
        await captured.replay(send)


async def _answer_unclaimed(
    scope: Scope, send: Send, request: Request, claim: Claim, body: bytes
) -> None:
    """A replay of the stored response, or 409 for another request or one still running."""
    if claim.outcome is ClaimOutcome.REPLAY:
        await _send_stored(send, claim.status_code or 200, claim.headers or {}, claim.body or b"")
        return
    code, detail = {
        ClaimOutcome.MISMATCH: (
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ),
        ClaimOutcome.IN_FLIGHT: (
            "request_in_flight",
            "a request with this Idempotency-Key is still being processed",
        ),
    }[claim.outcome]
    await problem(409, code, detail, request=request)(scope, _replay(body), send)


async def _store_captured(store: _Store, key: str, captured: _CapturedResponse) -> None:
    """Keep the answer for replays; forget the claim after a server error (may retry)."""
    if captured.status >= 500:
        await run_in_threadpool(store.release, key)
    else:
        await run_in_threadpool(
            store.complete, key, captured.status, captured.replayable_headers, captured.body
        )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
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

    @property
    def replayable_headers(self) -> dict[str, str]:
        return _replayable(self.headers)

    async def replay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def _replayable(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers that describe the result (not the connection), kept for replays."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in headers
        if name.lower() in _REPLAYED_HEADERS
    }


async def _send_stored(send: Send, status: int, stored: dict[str, str], body: bytes) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.items()]
    headers += [
        (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
