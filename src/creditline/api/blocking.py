"""Where a request's blocking work (a database transaction) runs: a thread, or the loop.

By default (`CREDITLINE_HTTP_THREADS` ≥ 1) the work runs on the process's thread pool,
so one server process overlaps several transactions' waits on the database. Each trip
costs a thread wake-up and a GIL hand-over each way, and the threads then take turns at
the GIL with the event loop, which parses the next requests meanwhile.

With `CREDITLINE_HTTP_THREADS=0` the hot write routes (a decision, a draw, a repayment)
run their transaction inline on the event loop: a process serves one such request at a
time, and a server scales by processes (`creditline serve --workers N`) instead, as a
synchronous worker model does. On a small machine this does the same work with less CPU
per request (no thread trips, no GIL contention); a process waiting on the database then
holds its other connections' requests. On two cores, one process per core gave the
highest saturation (docs/benchmarks.md, eighth round).
The idempotency middleware's own writes (for a key whose route does not keep its record)
follow the same setting; routes off the hot path keep running on the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from creditline.bootstrap import Container

T = TypeVar("T")


def runs_inline(container: Container) -> bool:
    """Whether the hot routes of this container's server run their work on the loop."""
    return container.settings.http_threads == 0


async def run_blocking(container: Container, work: Callable[[], T]) -> T:
    """`work()` on the thread pool, or right here with `CREDITLINE_HTTP_THREADS=0`."""
    if runs_inline(container):
        return work()
    return await run_in_threadpool(work)
