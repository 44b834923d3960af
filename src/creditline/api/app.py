"""The FastAPI app factory: `create_app(container)` wires routes, errors and middleware.

The app is built at start-up from an already wired `Container` (see `bootstrap`); nothing
is created at import time. `create_app()` with no argument reads `Settings` from the
environment, which is what `uvicorn --factory creditline.api.app:create_app` uses; it then
also sets up logging from those settings (`CREDITLINE_LOG_LEVEL`, `CREDITLINE_LOG_JSON`),
since no CLI ran before it to do so. An app given a container leaves logging to its caller.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from creditline import __version__
from creditline.api.hot import HotLane
from creditline.api.middleware import IdempotencyMiddleware, Metrics, RequestContextMiddleware
from creditline.api.problems import install_problem_handlers
from creditline.api.routes import applications, customers, events, lending, system
from creditline.bootstrap import Container, build_container
from creditline.config import Settings
from creditline.observability import configure_logging
from creditline.storage import migrate

_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(container: Container | None = None) -> FastAPI:
    owned = container is None
    if container is None:
        settings = Settings()
        configure_logging(settings.log_level, json=settings.log_json)
        wired = build_container(settings)
    else:
        wired = container
    if not migrate.is_up_to_date(wired.engine):
        raise RuntimeError("the database schema is not up to date: run `creditline db upgrade`")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Blocking work (a database transaction) runs on the thread pool. On two cores a
        # few threads keep both busy; anyio's default of 40 only added GIL hand-overs
        # between runnable threads and a connection per thread (see docs/benchmarks.md).
        # With 0 (see `api.blocking`) only the routes off the hot path use it: one thread.
        threads = max(1, wired.settings.http_threads)
        to_thread.current_default_thread_limiter().total_tokens = threads
        if owned:
            # What start-up built (modules, the container, policy tables) lives as long as
            # the process: keep it out of the cyclic collector, whose full passes over it
            # were the longest pauses in a decision (8-9 ms; under 1 ms once frozen).
            gc.freeze()
        yield
        if owned:
            wired.close()

    app = FastAPI(
        title="creditline",
        version=__version__,
        summary="Instant consumer credit lines: customers, consent, decisions, lending.",
        lifespan=lifespan,
        # Unless asked for, FastAPI's native OpenTelemetry is off: with it on but no
        # provider configured, every request still checked three global providers.
        telemetry=None if wired.settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.container = wired
    app.state.metrics = Metrics()
    install_problem_handlers(app)
    # Capability routers are registered here, in this list. A request is matched against
    # the routes in this order, so the busiest come first (decisions, draws and
    # repayments, events); no two routers' paths overlap, so the order changes nothing else.
    # They are included without a prefix (their paths are whole), which the hot lane uses.
    routers = [applications.router, lending.router, events.router, customers.router]
    for router in [*routers, system.router]:
        app.include_router(router)
    # The innermost middleware: the `@hot` routes' own lane (see `api.hot`).
    app.add_middleware(HotLane, routers=routers, handlers=app.exception_handlers)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app
