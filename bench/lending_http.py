"""Benchmark: draw and repayment latency over HTTP with concurrent clients.

    .venv/bin/python bench/lending_http.py --database postgresql --clients 50 --requests 20

Starts `uvicorn creditline.api.app:create_app` (`--workers` processes) on a fresh
migrated database (a new PostgreSQL database, dropped afterwards, or a SQLite file),
opens one credit line per client, then every client (a thread with its own HTTP
connection) alternates draws and repayments on its own line, each with a new
Idempotency-Key. Prints p50/p95/p99/max latency per operation, as measured by the client.
The clients run on the same machine as the server, so they compete for its cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditline.lending import service
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.shared.clock import FixedClock
from creditline.shared.money import Money
from creditline.storage import migrate
from creditline.storage.engine import create_db_engine, make_session_factory

START = date(2026, 1, 15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def client_run(base: str, line_id: str, requests: int, out: dict[str, list[float]]) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        loan_id = None
        for n in range(requests):
            key = {"Idempotency-Key": uuid.uuid4().hex}
            started = time.perf_counter()
            if n % 2 == 0 or loan_id is None:
                body = {"amount": "100.00", "term_months": 3, "repayment_method": "equal_principal"}
                response = http.post(f"/v1/credit-lines/{line_id}/draws", json=body, headers=key)
                kind = "draw"
                if response.status_code == 201:
                    loan_id = response.json()["loan_id"]
            else:
                response = http.post(
                    f"/v1/loans/{loan_id}/repayments", json={"amount": "10.00"}, headers=key
                )
                kind = "repayment"
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise RuntimeError(f"{kind}: {response.status_code} {response.text}")
            out[kind].append(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lending-http-"))
    name = f"creditline_bench_{uuid.uuid4().hex[:8]}"
    if args.database == "postgresql":
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{work / 'bench.db'}"
    server = None
    try:
        migrate.upgrade(url)
        engine = create_db_engine(url)
        factory = make_session_factory(engine)
        for n in range(args.clients):
            service.open_credit_line(
                SqlLendingUnitOfWork(factory, FixedClock()),
                line_id=f"CL{n}",
                customer_id=f"C{n}",
                limit=Money.yuan(200_000),
                daily_rate=Decimal("0.0003"),
                on=START,
            )
        engine.dispose()
        port = free_port()
        env = {
            **os.environ,
            "CREDITLINE_DATABASE_URL": url,
            "CREDITLINE_DATA_DIR": str(work),
            "CREDITLINE_INITIAL_BUSINESS_DATE": START.isoformat(),
            "CREDITLINE_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "creditline.api.app:create_app", "--factory",
             "--port", str(port), "--workers", str(args.workers), "--log-level", "warning",
             "--no-access-log"],
            env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        results: dict[str, list[float]] = {"draw": [], "repayment": []}
        threads = [
            threading.Thread(target=client_run, args=(base, f"CL{n}", args.requests, results))
            for n in range(args.clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.database == "postgresql":
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    total = sum(len(v) for v in results.values())
    print(
        f"{args.database}, {args.clients} clients, {args.workers} workers: "
        f"{total} requests in {wall:.1f} s ({total / wall:.0f}/s)"
    )
    print(f"{'operation':>10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in results.items():
        ms = [v * 1000 for v in values]
        print(
            f"{kind:>10} {len(ms):>5} {statistics.median(ms):>8.1f} {percentile(ms, 0.95):>8.1f} "
            f"{percentile(ms, 0.99):>8.1f} {max(ms):>8.1f}"
        )


if __name__ == "__main__":
    main()
