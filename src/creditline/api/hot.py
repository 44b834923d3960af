"""The hot lane: the busiest write routes, called without FastAPI's per-request machinery.

A decision, a draw and a repayment (the endpoints marked `@hot`) are the requests a
lender sends most, and each of them is one short database transaction, so what the web
framework does around it is a large share of its CPU. For such a request this ASGI
middleware, which sits just inside the idempotency middleware, matches the route by
method and path, parses the JSON body with `json.loads` and validates it with the
endpoint's own Pydantic model in Python mode, as FastAPI does, and calls the endpoint
itself. It skips FastAPI's routing over every route, its request handler (telemetry,
exit stacks, dependency solving) and its exception middleware.

It only takes what it can answer exactly as FastAPI would:

- a request whose body is not JSON (by content type), does not parse, or does not
  validate goes on to FastAPI untouched (its body replayed), which answers it with its
  usual 422 problem; so the hot lane has no error format of its own;
- an exception the endpoint raises goes to the app's own exception handlers (the RFC 9457
  problems of `api.problems`), looked up by class as Starlette does; one that has no
  handler but the catch-all propagates to the server-error middleware, as before.

The route object is left in the scope (`scope["route"]`), so metrics and access logs
name the route template as they do for every other route. The OpenAPI document is
FastAPI's, from the same route declarations.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from creditline.api.middleware import read_body, replay

F = TypeVar("F", bound=Callable[..., Awaitable[Response]])

_HOT = "__creditline_hot_lane__"


def hot(endpoint: F) -> F:
    """Mark an `async def` endpoint (body model, `Request`, path parameters as `str`) for
    the hot lane. Declare the route with FastAPI as usual; this only marks it."""
    function: Callable[..., Any] = endpoint
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"{endpoint.__name__}: only an async endpoint can take the hot lane")
    setattr(endpoint, _HOT, True)
    return endpoint


@dataclass(frozen=True, slots=True)
class _Lane:
    """One hot route: how to match it and how to call its endpoint."""

    route: APIRoute
    pattern: re.Pattern[str]
    endpoint: Callable[..., Awaitable[Response]]
    body_name: str
    body_model: type[BaseModel]
    request_name: str


def _lane(route: APIRoute) -> _Lane:
    hints = get_type_hints(route.endpoint)
    body = [(n, t) for n, t in hints.items() if isinstance(t, type) and issubclass(t, BaseModel)]
    request = [n for n, t in hints.items() if t is Request]
    parameters = {n for n, t in hints.items() if t is str}
    declared = set(inspect.signature(route.endpoint).parameters)
    if len(body) != 1 or len(request) != 1 or declared != {body[0][0], request[0], *parameters}:
        raise TypeError(
            f"{route.endpoint.__name__}: a hot endpoint takes one body model, the Request "
            "and its path parameters (str), and nothing else"
        )
    if set(route.param_convertors) != parameters:
        raise TypeError(f"{route.endpoint.__name__}: path parameters {sorted(parameters)}")
    if not all(isinstance(c, StringConvertor) for c in route.param_convertors.values()):
        raise TypeError(f"{route.endpoint.__name__}: hot path parameters are plain strings")
    return _Lane(route, route.path_regex, route.endpoint, body[0][0], body[0][1], request[0])


class HotLane:
    """ASGI middleware: serve the `@hot` routes of `routers` directly (see the module).

    The routers are the ones the app includes, without a prefix (their paths are whole);
    `handlers` are the app's exception handlers (`app.exception_handlers`).
    """

    def __init__(
        self,
        app: ASGIApp,
        routers: Sequence[APIRouter],
        handlers: Mapping[Any, Callable[..., Any]],
    ) -> None:
        self.app = app
        self._handlers = handlers
        self.lanes: dict[str, list[_Lane]] = {}
        for router in routers:
            for route in router.routes:
                if isinstance(route, APIRoute) and getattr(route.endpoint, _HOT, False):
                    for method in route.methods or ():
                        self.lanes.setdefault(method, []).append(_lane(route))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lanes = self.lanes.get(scope["method"])
        if lanes:
            path = scope["path"]
            for lane in lanes:
                match = lane.pattern.match(path)
                if match is not None:
                    await self._serve(lane, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, lane: _Lane, parameters: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await read_body(receive)
        model = _validated(lane.body_model, scope, body)
        if model is None:  # FastAPI answers it, with its own 422
            await self.app(scope, replay(body), send)
            return
        scope["route"] = lane.route
        scope["path_params"] = parameters
        request = Request(scope, replay(body), send)
        arguments: dict[str, Any] = {
            **parameters,
            lane.body_name: model,
            lane.request_name: request,
        }
        try:
            response = await lane.endpoint(**arguments)
        except Exception as error:
            handler = _handler_for(self._handlers, error)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, replay(body), send)


def _validated(model: type[BaseModel], scope: Scope, body: bytes) -> BaseModel | None:
    """The body as `model`, or None for anything FastAPI should answer instead."""
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
            break
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json" or not body:
        return None
    try:
        return model.model_validate(json.loads(body))
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError too
        return None


def _handler_for(
    handlers: Mapping[Any, Callable[..., Any]], error: Exception
) -> Callable[[Request, Exception], Awaitable[Response]] | None:
    """The app's handler for `error`'s class or nearest base, but not the catch-all (the
    server-error middleware runs that one, and logs the error, as for any route)."""
    for cls in type(error).__mro__:
        if cls is Exception:
            return None
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None
