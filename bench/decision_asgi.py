"""What the HTTP layer costs a decision, in process: the ASGI app against the bare service.

    .venv/bin/python -m bench.decision_asgi [--applications N] [--postgres URL]

The same decisions as `bench/decision_latency.py` (the demo champion, simulated online
vectors, one new applicant per application), taken in alternating blocks two ways in one
process: by calling `service.apply_for_credit` directly, and as `POST /v1/applications`
with an `Idempotency-Key` through the whole ASGI app (`create_app`: request context and
idempotency middleware, FastAPI routing, validation, the thread-pool trip, the response)
driven by a minimal ASGI server loop on uvloop, with no sockets. The difference of the two
CPU medians is what the application's HTTP layer adds to one decision, apart from the
server's own HTTP parsing (uvicorn's httptools) and the network. CPU figures are this
process's (all threads); on a shared machine they move much less than wall time does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop
from starlette.types import ASGIApp, Message, Scope

from bench.applicants import register_applicant
from bench.decision_latency import database, seeded_container
from creditline.api.app import create_app
from creditline.decisioning import service
from creditline.observability import configure_logging
from creditline.shared.clock import FixedClock


def http_scope(body: bytes, key: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/applications",
        "raw_path": b"/v1/applications",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"idempotency-key", key.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def post(app: ASGIApp, body: bytes, key: str) -> int:
    """One request through the ASGI app; returns the status (the body is checked by it)."""
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # a client that stays connected
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(http_scope(body, key), receive, send)
    if status != 201:
        raise RuntimeError(f"HTTP {status}: {b''.join(chunks)[:300]!r}")
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--applications", type=int, default=2000)
    parser.add_argument("--block", type=int, default=10, help="decisions per block")
    parser.add_argument("--postgres", metavar="URL", help="decide on a fresh PostgreSQL database")
    parser.add_argument(
        "--http-only",
        action="store_true",
        help="every decision through the app (to profile the HTTP layer alone)",
    )
    args = parser.parse_args()
    configure_logging("WARNING", json=False)  # as the servers of the HTTP benches run
    with tempfile.TemporaryDirectory() as tmp, database(args.postgres, Path(tmp)) as url:
        clock = FixedClock(datetime(2026, 1, 15, 2, tzinfo=UTC))
        container = seeded_container(Path(tmp), url, clock)
        wiring = container.decisioning()
        ids = [register_applicant(container, clock, n, "2026-01") for n in range(args.applications)]
        app = create_app(container)
        cpu: dict[str, list[float]] = {"service": [], "http": []}
        outcomes: dict[str, dict[str, int]] = {"service": {}, "http": {}}

        async def run() -> None:
            for start in range(0, len(ids), args.block):
                way = "http" if args.http_only or (start // args.block) % 2 else "service"
                for n in range(start, min(start + args.block, len(ids))):
                    began = time.process_time()
                    if way == "service":
                        decision, _ = service.apply_for_credit(
                            wiring.uow(),
                            clock,
                            policies=wiring.policies,
                            scorer=wiring.scorer,
                            apr_of=wiring.apr_of,
                            application_id=f"app-{n}",
                            customer_id=ids[n],
                            requested_limit=None,
                        )
                        outcome = decision.outcome.value
                    else:
                        body = json.dumps({"customer_id": ids[n]}).encode()
                        await post(app, body, f"app-{n}")
                        outcome = "201"
                    cpu[way].append((time.process_time() - began) * 1000)
                    outcomes[way][outcome] = outcomes[way].get(outcome, 0) + 1

        uvloop.run(run())
        print(f"database: {'postgresql' if url else 'sqlite'}; {len(ids)} applications")
        print(f"{'way':<10}{'n':>6}{'cpu p25 ms':>12}{'cpu p50 ms':>12}{'cpu mean ms':>13}")
        quartiles = {}
        for way, values in cpu.items():
            warm = values[50:]
            if len(warm) < 2:
                continue
            quartiles[way] = statistics.quantiles(warm, n=4)
            p25, p50, _ = quartiles[way]
            print(f"{way:<10}{len(warm):>6}{p25:>12.3f}{p50:>12.3f}{statistics.fmean(warm):>13.3f}")
        if not args.http_only:
            added = [quartiles["http"][i] - quartiles["service"][i] for i in (0, 1)]
            print(f"HTTP layer per decision: {added[0]:.3f} ms CPU (p25), {added[1]:.3f} ms (p50)")
        print(f"outcomes: {outcomes}")
        container.close()


if __name__ == "__main__":
    main()
