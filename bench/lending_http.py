"""Benchmark: draw and repayment latency over HTTP, under a stated load model.

    .venv/bin/python bench/lending_http.py --database postgresql --clients 50 --rate 100

Starts `creditline serve` (`--workers` processes, each with a listening socket of its own;
`--server uvicorn` for uvicorn's own workers on one shared socket, `--server granian` for
Granian; `--threads` for `CREDITLINE_HTTP_THREADS`) on a fresh migrated database (a new
PostgreSQL database, dropped afterwards, or a SQLite file), opens credit lines, then
drives it from this process (a separate one) with 50 concurrent clients, each on its own
keep-alive connection. Every client alternates a draw (`POST /v1/credit-lines/{id}/draws`)
and a repayment of part of that loan (`POST /v1/loans/{id}/repayments`), each with a new
`Idempotency-Key`. A line allows 50 open draws, so each client rotates over lines of its
own, moving to the next after `DRAWS_PER_LINE` draws.

Two load models, both printed:

- **Paced (open loop), the latency figure.** The 50 clients together send `--rate`
  requests per second as a Poisson process (each client's gaps are exponential with mean
  `clients / rate`). A request's latency runs from the moment it was *due*, not the moment
  it was sent, so a request held back behind a slow one is charged for the wait (no
  coordinated omission). The achieved rate is printed next to the offered one: if it falls
  short, the server could not keep up and the percentiles describe an overload.
- **Saturation (closed loop), the throughput figure.** The same 50 clients send their
  next request as soon as the previous answer arrives, with no pause. This measures the
  most the server completes per second; its latencies are mostly queueing (50 requests
  waiting for 2 cores), which is why the paced run, not this one, gives the p99.

Each run also prints the CPU time per request of the server's processes (`app CPU`) and of
the PostgreSQL backends serving our database (`db CPU`, a lower bound: backends that
close during the run, such as the pool's overflow connections, are not counted). On a
shared machine the latencies measure the queue for a core as much as the server; the CPU
per request does not depend on what else runs.

The load generator speaks HTTP/1.1 on asyncio streams directly (no HTTP client library),
so that it takes as little as possible of the cores it shares with the server. Setting
`PYTHONPATH` to another tree's `src` runs the same load against that code (the server
and the setup both import it), which is how a before/after pair is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditline.lending import service
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.shared.clock import FixedClock
from creditline.shared.money import Money
from creditline.storage import migrate
from creditline.storage.business_date import SqlBusinessDateStore
from creditline.storage.engine import create_db_engine, make_session_factory

START = date(2026, 1, 15)
REPOSITORY = Path(__file__).resolve().parents[1]
DRAWS_PER_LINE = 40  # below the product's 50 open draws per line
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --- a minimal HTTP/1.1 keep-alive client ---------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it go one at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: object | None = None, key: str | None = None
    ) -> tuple[int, bytes]:
        """Send one request; reconnect once if the server had closed the idle connection
        (safe to resend: every write carries an Idempotency-Key)."""
        for attempt in range(2):
            try:
                return await self._send(method, path, body, key)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    async def _send(
        self, method: str, path: str, body: object | None, key: str | None
    ) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if key is not None:
            head.append(f"Idempotency-Key: {key}")
        head.append(f"Content-Length: {len(payload)}")
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# --- load models ----------------------------------------------------------------------

#: One client's next request: send it on the connection, return the operation's name.
Step = Callable[[Connection], Awaitable[str]]


@dataclass
class Run:
    name: str
    offered: float | None  # requests per second offered (None for a closed loop)
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    server_cpu: float = 0.0  # seconds of CPU the server's processes used during the run
    database_cpu: float = 0.0  # seconds of CPU our PostgreSQL backends used
    client_cpu: float = 0.0  # seconds of CPU this load generator used (same two cores)

    @property
    def completed(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def record(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds * 1000)


async def paced(
    name: str, steps: list[Step], conns: list[Connection], rate: float, seconds: float
) -> Run:
    """Open loop: Poisson arrivals at `rate`/s over all clients; latency from due time."""
    run = Run(name, rate)
    per_client = rate / len(steps)
    started = time.perf_counter()

    async def client(step: Step, conn: Connection, rng: random.Random) -> None:
        due = started + rng.expovariate(per_client)
        while due < started + seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                kind = await step(conn)
            except RuntimeError:
                run.errors += 1
            else:
                run.record(kind, time.perf_counter() - due)
            due += rng.expovariate(per_client)

    await asyncio.gather(
        *(client(s, c, random.Random(n)) for n, (s, c) in enumerate(zip(steps, conns, strict=True)))
    )
    run.seconds = time.perf_counter() - started
    return run


async def saturation(name: str, steps: list[Step], conns: list[Connection], seconds: float) -> Run:
    """Closed loop: every client sends its next request as soon as it has an answer."""
    run = Run(name, None)
    started = time.perf_counter()

    async def client(step: Step, conn: Connection) -> None:
        while time.perf_counter() < started + seconds:
            sent = time.perf_counter()
            try:
                kind = await step(conn)
            except RuntimeError:
                run.errors += 1
            else:
                run.record(kind, time.perf_counter() - sent)

    await asyncio.gather(*(client(s, c) for s, c in zip(steps, conns, strict=True)))
    run.seconds = time.perf_counter() - started
    return run


class CpuMeter:
    """CPU seconds used by the server's processes and by its PostgreSQL backends.

    CPU per request is what the server costs, whatever else the shared machine is doing;
    latencies on a loaded machine are not. Backends are found in `pg_stat_activity` by
    database name (ours is new for the run, so no one else's work is counted).
    """

    def __init__(self, server_pid: int, url: str | None) -> None:
        self._server = psutil.Process(server_pid)
        self._engine = create_engine(url) if url and url.startswith("postgresql") else None

    def _pids(self) -> tuple[list[int], list[int]]:
        server = [self._server.pid] + [c.pid for c in self._server.children(recursive=True)]
        backends: list[int] = []
        if self._engine is not None:
            with self._engine.connect() as connection:
                backends = list(
                    connection.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    ).scalars()
                )
        return server, backends

    def connections(self, port: int) -> list[int]:
        """Open client connections on `port` held by each of the server's processes that
        holds any (how the server spread them over its workers), most first."""
        counts = []
        for process in [self._server, *self._server.children(recursive=True)]:
            try:
                held = sum(
                    1
                    for c in process.net_connections(kind="tcp")
                    if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
                )
            except psutil.Error:
                continue
            if held:
                counts.append(held)
        return sorted(counts, reverse=True)

    def snapshot(self) -> tuple[dict[int, float], dict[int, float]]:
        server, backends = self._pids()
        return _cpu(server), _cpu(backends)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[pid] = times.user + times.system
    return found


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


async def measured(meter: CpuMeter | None, run: Awaitable[Run]) -> Run:
    """Await `run`, charging it the CPU the server and the database used meanwhile."""
    before = meter.snapshot() if meter else None
    client_before = time.process_time()
    done = await run
    done.client_cpu = time.process_time() - client_before
    if meter is not None and before is not None:
        after = meter.snapshot()
        done.server_cpu = _used(before[0], after[0])
        done.database_cpu = _used(before[1], after[1])
    return done


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def print_runs(title: str, runs: list[Run]) -> None:
    print(title)
    print(
        f"{'run':<16}{'offered/s':>10}{'achieved/s':>11}{'operation':>11}{'n':>6}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>7}"
        f"{'app CPU ms/req':>15}{'db CPU ms/req':>14}{'client CPU ms/req':>18}"
    )
    for run in runs:
        offered = f"{run.offered:.0f}" if run.offered is not None else "closed"
        achieved = run.completed / run.seconds if run.seconds else 0.0
        done = max(run.completed, 1)
        for kind, ms in sorted(run.latencies.items()):
            print(
                f"{run.name:<16}{offered:>10}{achieved:>11.0f}{kind:>11}{len(ms):>6}"
                f"{percentile(ms, 0.5):>9.1f}{percentile(ms, 0.95):>9.1f}"
                f"{percentile(ms, 0.99):>9.1f}{max(ms):>9.1f}{run.errors:>7}"
                f"{run.server_cpu * 1000 / done:>15.2f}{run.database_cpu * 1000 / done:>14.2f}"
                f"{run.client_cpu * 1000 / done:>18.2f}"
            )
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


# --- the server under test ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fresh_database(kind: str, postgres: str, work: Path) -> Iterator[str]:
    """A new migrated database: its own PostgreSQL database (dropped after) or a file."""
    if kind == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
        migrate.upgrade(url)
        yield url
        return
    name = f"creditline_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


SERVERS = ("creditline", "uvicorn", "granian")


def server_command(server: str, app: str, port: int, workers: int) -> list[str]:
    """The command line of an HTTP server running the app factory `app`: `creditline
    serve` (uvicorn in workers with a listening socket each, `creditline.cli.workers`),
    uvicorn's own workers (one shared socket), or Granian (not a dependency: `uv pip
    install granian` to compare; measured in docs/benchmarks.md, seventh round, and not
    adopted)."""
    if server == "creditline":
        return [
            sys.executable, "-m", "creditline.cli.main", "serve", "--app", app,
            "--port", str(port), "--workers", str(workers), "--no-migrate",
        ]  # fmt: skip
    if server == "granian":
        if importlib.util.find_spec("granian") is None:
            raise SystemExit("--server granian: Granian is not installed (uv pip install granian)")
        return [
            sys.executable, "-m", "granian", app, "--factory", "--interface", "asgi",
            "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", app, "--factory",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        "--no-access-log", "--timeout-keep-alive", "120",
    ]  # fmt: skip


@contextmanager
def http_server(
    url: str,
    work: Path,
    workers: int,
    app: str = "creditline.api.app:create_app",
    server: str = "uvicorn",
    **env: str,
) -> Iterator[tuple[int, CpuMeter]]:
    """An HTTP server (`server`: uvicorn or granian) running the factory `app` on a free
    port, until done (cwd: the repository)."""
    port = free_port()
    environment = {
        **os.environ,
        "CREDITLINE_DATABASE_URL": url,
        "CREDITLINE_DATA_DIR": str(work),
        "CREDITLINE_INITIAL_BUSINESS_DATE": START.isoformat(),
        "CREDITLINE_LOG_LEVEL": "WARNING",
        "CREDITLINE_KEEP_ALIVE_SECONDS": "120",
        **env,
    }
    process = subprocess.Popen(
        server_command(server, app, port, workers),
        env=environment,
        cwd=REPOSITORY,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(0.5 * workers)  # every worker has imported and built its app
        meter = CpuMeter(process.pid, url)
        try:
            yield port, meter
        finally:
            meter.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the lending workload -------------------------------------------------------------


class LendingClient:
    """A client that alternates a draw and a repayment of that loan, over its own lines."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._draws = 0
        self._loan: str | None = None

    async def step(self, conn: Connection) -> str:
        key = uuid.uuid4().hex
        if self._loan is None:
            line = self._lines[self._draws // DRAWS_PER_LINE]
            body = {"amount": "100.00", "term_months": 3, "repayment_method": "equal_principal"}
            status, raw = await conn.request("POST", f"/v1/credit-lines/{line}/draws", body, key)
            if status != 201:
                raise RuntimeError(f"draw: {status} {raw[:200]!r}")
            self._draws += 1
            self._loan = json.loads(raw)["loan_id"]
            return "draw"
        loan, self._loan = self._loan, None
        status, raw = await conn.request(
            "POST", f"/v1/loans/{loan}/repayments", {"amount": "10.00"}, key
        )
        if status != 201:
            raise RuntimeError(f"repayment: {status} {raw[:200]!r}")
        return "repayment"


def open_lines(url: str, count: int) -> list[str]:
    """Open `count` lines directly through the service (and fix the first business date)."""
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    SqlBusinessDateStore(engine, FixedClock(), START).get()
    ids = [f"CL{n:05d}" for n in range(count)]
    for n, line_id in enumerate(ids):
        service.open_credit_line(
            SqlLendingUnitOfWork(factory, FixedClock()),
            line_id=line_id,
            customer_id=f"C{n}",
            limit=Money.yuan(200_000),
            daily_rate=Decimal("0.0003"),
            on=START,
        )
    engine.dispose()
    return ids


async def drive(
    port: int, meter: CpuMeter, lines: list[str], args: argparse.Namespace
) -> list[Run]:
    per_client = len(lines) // args.clients
    clients = [
        LendingClient(lines[n * per_client : (n + 1) * per_client]) for n in range(args.clients)
    ]
    steps: list[Step] = [c.step for c in clients]
    return await run_load_models(port, meter, steps, args, warmup_rate=min(args.rate, 50))


async def run_load_models(
    port: int, meter: CpuMeter, steps: list[Step], args: argparse.Namespace, *, warmup_rate: float
) -> list[Run]:
    """Warm up, then each paced rate of `args.rate_steps`, then saturation: one client
    connection per step, closed at the end whatever happens."""
    conns = [Connection("127.0.0.1", port) for _ in steps]
    runs = []
    try:
        await paced("warm-up", steps, conns, warmup_rate, args.warmup)
        spread = "/".join(str(n) for n in meter.connections(port))
        print(f"connections per server process: {spread}", flush=True)
        for rate in args.rate_steps:
            runs.append(
                await measured(
                    meter, paced(f"paced {rate:.0f}/s", steps, conns, rate, args.seconds)
                )
            )
        runs.append(
            await measured(meter, saturation("saturation", steps, conns, args.saturation_seconds))
        )
    finally:
        for conn in conns:
            conn.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", choices=SERVERS, default="creditline")
    parser.add_argument(
        "--threads", type=int, help="CREDITLINE_HTTP_THREADS (default: the setting's default)"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="paced requests per second")
    parser.add_argument("--rates", default="", help="comma-separated paced rates instead of --rate")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each paced run")
    parser.add_argument("--saturation-seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    args.rate_steps = [float(r) for r in args.rates.split(",") if r] or [args.rate]
    most = sum(args.rate_steps) * args.seconds + 1500 * args.saturation_seconds + 50 * args.warmup
    lines_per_client = int(most / 2 / args.clients / DRAWS_PER_LINE) + 2
    work = Path(tempfile.mkdtemp(prefix="lending-http-"))
    with fresh_database(args.database, args.postgres, work) as url:
        lines = open_lines(url, lines_per_client * args.clients)
        threads = {} if args.threads is None else {"CREDITLINE_HTTP_THREADS": str(args.threads)}
        with http_server(url, work, args.workers, server=args.server, **threads) as (port, meter):
            runs = asyncio.run(drive(port, meter, lines, args))
    print_runs(
        f"lending over HTTP: {args.database}, {args.server}, {args.workers} worker(s)"
        f"{'' if args.threads is None else f' x {args.threads} threads'}, {args.clients} clients "
        f"({os.cpu_count()} cores shared by server and load generator)",
        runs,
    )


if __name__ == "__main__":
    main()
