"""Benchmark: credit decisions over HTTP on PostgreSQL (issue 7's second target).

    .venv/bin/python -m bench.decision_http --rates 100,300,500 --workers 1

Seeds a champion model (the demo simulation, `--population` customers), registers
`--customers` applicants with both consents on a fresh PostgreSQL database, then starts
`creditline serve` (`--workers` processes, a listening socket each; `--server uvicorn` for
uvicorn's workers on one shared socket, `--server granian` for Granian) and sends `POST
/v1/applications` from this process, one new applicant per application, with the load
models of `bench/lending_http.py`: paced open-loop Poisson arrivals at each `--rates`
value (latency from the due time, achieved rate printed next to the offered one), then a
closed-loop saturation run with the same clients. Each decision runs the whole path: lock
the customer, read privacy, lending and online features, score with the champion, evaluate
the policy tables, limit and price, open the credit line, store the decision, all in one
PostgreSQL transaction, plus the idempotency record of the request.

The online feature vectors are the simulated population's, handed to the applicants in
turn by the server's app factory below (as `bench/decision_latency.py` does in process);
the online store's own read path is measured in `bench/features_online.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from bench.applicants import SimulatedVectors, load_vectors, register_applicant
from bench.lending_http import (
    DEFAULT_POSTGRES,
    SERVERS,
    START,
    Connection,
    CpuMeter,
    Run,
    Step,
    fresh_database,
    http_server,
    print_runs,
    run_load_models,
)
from creditline.bootstrap import build_container
from creditline.config import Settings
from creditline.shared.clock import FixedClock

FEATURES_ENV = "CREDITLINE_BENCH_FEATURES"


def create_bench_app() -> FastAPI:
    """`create_app()` from the environment, with the simulated vectors as online features."""
    from creditline.api.app import create_app

    app = create_app()
    vectors = load_vectors(Path(os.environ[FEATURES_ENV]))
    app.state.container._feature_store = SimulatedVectors(vectors)
    return app


def prepare(url: str, work: Path, customers: int, population: int) -> list[str]:
    """Seed the champion, register and consent `customers` applicants; their ids."""
    from creditline.jobs.seed_demo import seed_demo

    clock = FixedClock(datetime(2026, 1, 15, 2, tzinfo=UTC))
    settings = Settings(database_url=url, data_dir=work, initial_business_date=START)
    seed_demo(settings, clock, customers=population)
    container = build_container(settings, clock=clock)

    def register(n: int) -> str:
        return register_applicant(container, clock, n, settings.notice_version)

    with ThreadPoolExecutor(8) as pool:  # round trips dominate: overlap them
        ids = list(pool.map(register, range(customers)))
    container.close()
    return ids


class Applicants:
    """Hands each application a customer who has not applied yet; counts the outcomes."""

    def __init__(self, ids: list[str]) -> None:
        self._ids = iter(ids)
        self.outcomes: dict[str, int] = {}

    async def step(self, conn: Connection) -> str:
        import json

        customer = next(self._ids)
        status, raw = await conn.request(
            "POST", "/v1/applications", {"customer_id": customer}, uuid.uuid4().hex
        )
        if status != 201:
            raise RuntimeError(f"application: {status} {raw[:200]!r}")
        decision = json.loads(raw)["decision"]
        self.outcomes[decision] = self.outcomes.get(decision, 0) + 1
        return "decision"


async def drive(
    port: int, meter: CpuMeter, applicants: Applicants, args: argparse.Namespace
) -> list[Run]:
    steps: list[Step] = [applicants.step for _ in range(args.clients)]
    return await run_load_models(port, meter, steps, args, warmup_rate=50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=SERVERS, default="creditline")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads per worker for the blocking work (CREDITLINE_HTTP_THREADS; "
        "default: the setting's default)",
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rates", default="100,300,500", help="paced decisions per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each paced run")
    parser.add_argument("--saturation-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--population", type=int, default=1000, help="simulated customers")
    parser.add_argument(
        "--most", type=float, default=600, help="most decisions/s expected (sizes the applicants)"
    )
    args = parser.parse_args()
    args.rate_steps = [float(r) for r in args.rates.split(",") if r]
    # Every application needs a customer who has not applied yet.
    needed = int(sum(args.rate_steps) * args.seconds + args.most * args.saturation_seconds) + 200
    work = Path(tempfile.mkdtemp(prefix="decision-http-"))
    with fresh_database("postgresql", args.postgres, work) as url:
        applicants = Applicants(prepare(url, work, needed, args.population))
        features = work / "demo" / "features.parquet"
        with http_server(
            url,
            work,
            args.workers,
            app="bench.decision_http:create_bench_app",
            server=args.server,
            **{FEATURES_ENV: str(features)},
            **({} if args.threads is None else {"CREDITLINE_HTTP_THREADS": str(args.threads)}),
        ) as (port, meter):
            runs = asyncio.run(drive(port, meter, applicants, args))
    print_runs(
        f"decisions over HTTP: postgresql, {args.server}, {args.workers} worker(s)"
        f"{'' if args.threads is None else f' x {args.threads} threads'}, {args.clients} clients "
        f"({os.cpu_count()} cores shared by server and load generator)",
        runs,
    )
    print(f"outcomes: {applicants.outcomes}")


if __name__ == "__main__":
    main()
