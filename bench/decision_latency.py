"""In-process credit decision latency on the embedded default (issue 7's first target).

Each decision runs the whole path `POST /v1/applications` runs, minus HTTP: lock the
customer, read privacy, lending and online features, score with the champion, evaluate
the four policy tables, limit and price, open the credit line, store the decision.
Run: `python -m bench.decision_latency [--applications N]`. Prints p50/p95/p99 in ms of
wall time, and the p50 of the process's CPU time per decision (all its threads, so
zen-engine's worker is counted): on a shared machine the wall figures grow with the
load of other processes, the CPU figure much less. The first 50 decisions warm up.
The policy is the one shipped in `policies/v2` (named explicitly, whatever the default).
`--postgres URL` runs the same decisions on a fresh PostgreSQL database (the production
system of record) instead: the CPU column then shows what the application spends per
decision there, the figure that bounds decisions per second over HTTP, and beside it
`pg cpu`: the CPU the database's server processes spent per decision (their mean over the
timed decisions, read from /proc; PostgreSQL on this machine only).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from bench.applicants import SimulatedVectors, load_vectors, register_applicant
from bench.lending_http import fresh_database
from creditline.bootstrap import Container, build_container
from creditline.config import Settings
from creditline.decisioning import service
from creditline.jobs.seed_demo import seed_demo
from creditline.shared.clock import FixedClock

POLICIES = Path(__file__).resolve().parents[1] / "policies" / "v2"


def backend_cpu(engine: Engine) -> float | None:
    """Seconds of CPU spent so far by the server processes connected to the engine's
    database (None where they cannot be read: another machine, or not PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        ticks = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                return None
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def database(postgres: str | None, work: Path) -> Iterator[str | None]:
    """The URL of a fresh PostgreSQL database, or None for the embedded default."""
    if postgres is None:
        yield None
        return
    with fresh_database("postgresql", postgres, work) as url:
        yield url


def seeded_container(work: Path, url: str | None, clock: FixedClock) -> Container:
    """A container on a database seeded with the demo champion (2,000 simulated customers),
    whose online features are the simulated population's vectors, handed out in turn."""
    settings = Settings(
        data_dir=work,
        database_url=url,
        initial_business_date=date(2026, 1, 15),
        policy_dir=POLICIES,
    )
    seed_demo(settings, clock, customers=2000)
    container = build_container(settings, clock=clock, apply_migrations=True)
    container._feature_store = SimulatedVectors(load_vectors(work / "demo" / "features.parquet"))
    return container


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--applications", type=int, default=2000)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="move everything built at start-up out of the collector's reach (gc.freeze) "
        "before deciding, as a server could once it is wired",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="decide on a fresh database of this PostgreSQL server "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.postgres, Path(tmp)) as url:
        clock = FixedClock(datetime(2026, 1, 15, 2, tzinfo=UTC))
        container = seeded_container(Path(tmp), url, clock)
        wiring = container.decisioning()
        today = container.business_date()
        ids = [register_applicant(container, clock, n, "2026-01") for n in range(args.applications)]
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        timings = []
        cpu = []
        outcomes: dict[str, int] = {}
        pg_started = None
        for n, customer_id in enumerate(ids):
            if n == 50:
                pg_started = backend_cpu(container.engine)
            started = time.perf_counter()
            started_cpu = time.process_time()
            decision, _ = service.apply_for_credit(
                wiring.uow(),
                clock,
                policies=wiring.policies,
                scorer=wiring.scorer,
                apr_of=wiring.apr_of,
                application_id=f"app-{n}",
                customer_id=customer_id,
                requested_limit=None,
                business_date=today,
            )
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            first = decision.draft.reasons[0].code if decision.draft.reasons else "-"
            key = f"{decision.outcome.value}:{first}"
            outcomes[key] = outcomes.get(key, 0) + 1
        warm = sorted(timings[50:])
        q = statistics.quantiles(warm, n=100)
        cpu_p50 = statistics.median(cpu[50:])
        pg_ended = backend_cpu(container.engine)
        pg = "-"
        if pg_started is not None and pg_ended is not None:
            pg = f"{(pg_ended - pg_started) * 1000 / len(warm):.2f}"
        head = ("decisions", "p50 ms", "p95 ms", "p99 ms", "cpu p50 ms", "pg cpu ms")
        print(
            f"{head[0]:<12}{head[1]:>10}{head[2]:>10}{head[3]:>10}{head[4]:>12}{head[5]:>11}"
            "   outcomes"
        )
        cells = f"{len(warm):<12}{q[49]:>10.2f}{q[94]:>10.2f}{q[98]:>10.2f}{cpu_p50:>12.2f}"
        print(f"{cells}{pg:>11}   {outcomes}")
        container.close()


if __name__ == "__main__":
    main()
