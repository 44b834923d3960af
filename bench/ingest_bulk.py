"""Benchmark ingestion: bulk load into SQLite and PostgreSQL (COPY), and HTTP batches.

    .venv/bin/python bench/ingest_bulk.py --events 200000
    .venv/bin/python bench/ingest_bulk.py --events 200000 --uvicorn   # also a real server

Events come from the simulator (the same schema as real input). Each path validates every
event and stores it exactly once, as in production:

- bulk: `ingest_stream` over lazily validated batches (`check_batch`), in transactions of
  5,000 rows (`--batch`; what `creditline events load` does, minus file reading and its
  child process: on PostgreSQL the next batch is validated and encoded for COPY while a
  writer thread stores the one before, on SQLite they take turns on one thread), on
  SQLite, again on SQLite (every event a duplicate), and on PostgreSQL (COPY; skipped when
  unreachable or with `--no-postgres`);
- `creditline events load FILE` end to end (the real command in process, file reading and
  error file included) for Parquet, JSON Lines and CSV files of the same events, on
  SQLite, and the Parquet file again with `--reader-process` (reading and validation in
  a forked child, whose CPU is counted);
- HTTP: batches of 1,000 to `POST /v1/events` over SQLite, in process (FastAPI TestClient,
  no network) and, with `--uvicorn`, through a real `uvicorn` server on localhost (one
  client, one request at a time). Request bodies are serialised before the clock starts;
  the app is built before it starts too. `--no-files` and `--no-http` skip those paths.

The simulator writes its events type by type, so a batch of 1,000 holds one or two event
types; `--shuffle` mixes them first (a fixed seed), as live traffic would arrive.

Each figure is events / wall-clock seconds of the timed part only; the machine's load
average is printed with the table because the figures move with it. On a shared, loaded
machine the CPU seconds column says more about the code than the wall clock does: it is
this process's CPU, plus the uvicorn server's, plus for the COPY row the CPU of the
PostgreSQL backend that served the load (named in the label; the server's background
writers are not counted).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from creditline.data.adapters.arrow_schema import EVENT_SCHEMA
from creditline.data.adapters.sql import SqlEventStore, count_events
from creditline.data.service import check_batch, ingest_stream
from creditline.data.simulator.population import SimulationConfig
from creditline.data.simulator.run import simulate
from creditline.shared.clock import SystemClock
from creditline.storage import migrate
from creditline.storage.engine import create_db_engine

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: label, events offered, events stored, wall-clock seconds, CPU seconds (this process, and
#: the server's for uvicorn, the PostgreSQL backend's for COPY)
Result = tuple[str, int, int, float, float]


def sample_events(count: int, folder: Path) -> list[dict[str, Any]]:
    customers = max(100, count // 25 + 1)
    simulate(SimulationConfig(customers=customers, months=1, seed=5), folder / "sim")
    rows: list[dict[str, Any]] = []
    for path in sorted((folder / "sim" / "events").rglob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows[:count]


def timed(label: str, events: int, load: Callable[[], int]) -> Result:
    """The load's figures; its CPU is this process's plus that of the child processes it
    started and waited for (the batch reader of `events load`)."""
    started, cpu = time.perf_counter(), _cpu_with_children()
    stored = load()
    return label, events, stored, time.perf_counter() - started, _cpu_with_children() - cpu


def _cpu_with_children() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def bulk(url: str, events: list[dict[str, Any]], batch: int = 5_000) -> int:
    accepted, _ = bulk_with_server(url, events, batch)
    return accepted


def bulk_with_server(
    url: str, events: list[dict[str, Any]], batch: int = 5_000
) -> tuple[int, float]:
    """`bulk`, and the CPU seconds the PostgreSQL server processes of this database spent
    on it (0 on SQLite): the pooled connection is opened before the first batch and kept
    to the end, so its backend's CPU is all counted."""
    engine = create_db_engine(url)
    store = SqlEventStore(engine, SystemClock())
    before = server_cpu(engine)
    checked = (check_batch(events[start : start + batch]) for start in range(0, len(events), batch))
    overlap = engine.dialect.name != "sqlite"  # as `events load` chooses
    accepted = sum(report.accepted for report in ingest_stream(store, checked, overlap=overlap))
    spent = server_cpu(engine) - before
    engine.dispose()
    return accepted, spent


def server_cpu(engine: Engine) -> float:
    """CPU seconds (user + system) used so far by the server processes connected to the
    engine's PostgreSQL database; 0 for SQLite (its work is in this process)."""
    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as connection:
        pids = connection.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        ).scalars()
        total = 0.0
        for pid in pids:
            try:
                total += sum(psutil.Process(pid).cpu_times()[:2])
            except psutil.Error:
                continue  # a backend that ended meanwhile
    return total


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(_json(value))


def write_files(events: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    files = {
        "Parquet": folder / "events.parquet",
        "JSON Lines": folder / "events.jsonl",
        "CSV": folder / "events.csv",
    }
    pq.write_table(pa.Table.from_pylist(events, schema=EVENT_SCHEMA), files["Parquet"])
    with files["JSON Lines"].open("w") as handle:
        for event in events:
            present = {k: _json(v) for k, v in event.items() if v is not None}
            handle.write(json.dumps(present) + "\n")
    with files["CSV"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EVENT_SCHEMA.names)
        for event in events:
            writer.writerow([_text(event[name]) for name in EVENT_SCHEMA.names])
    return files


def cli_load(
    url: str, path: Path, folder: Path, batch: int = 5_000, options: tuple[str, ...] = ()
) -> int:
    """`creditline events load PATH` in process, against the database at `url`."""
    from typer.testing import CliRunner

    from creditline.cli.main import app

    env = {"CREDITLINE_DATABASE_URL": url, "CREDITLINE_DATA_DIR": str(folder / "cli")}
    command = ["events", "load", str(path), "--batch", str(batch), *options]
    result = CliRunner().invoke(app, command, env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"events load failed: {result.output}")
    engine = create_db_engine(url)
    stored = count_events(engine)
    engine.dispose()
    return stored


def bodies(events: list[dict[str, Any]], batch: int) -> list[bytes]:
    payload = [{k: _json(v) for k, v in e.items() if v is not None} for e in events]
    return [
        json.dumps({"events": payload[start : start + batch]}).encode()
        for start in range(0, len(payload), batch)
    ]


def http_in_process(url: str, requests: list[bytes], folder: Path) -> Result:
    from fastapi.testclient import TestClient

    from creditline.api.app import create_app
    from creditline.bootstrap import build_container
    from creditline.config import Settings

    container = build_container(Settings(data_dir=folder / "http", database_url=url))
    headers = {"content-type": "application/json"}
    with TestClient(create_app(container)) as client:
        client.get("/health")
        started, cpu = time.perf_counter(), time.process_time()
        accepted = sum(
            int(client.post("/v1/events", content=body, headers=headers).json()["accepted"])
            for body in requests
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    container.close()
    label = "HTTP POST /v1/events (1,000/request), in process, SQLite"
    return label, 0, accepted, seconds, cpu


def http_uvicorn(url: str, requests: list[bytes], folder: Path) -> Result:
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CREDITLINE_DATABASE_URL": url,
        "CREDITLINE_DATA_DIR": str(folder / "uvicorn"),
        "CREDITLINE_LOG_LEVEL": "WARNING",
    }
    uvicorn = Path(sys.executable).with_name("uvicorn")
    server = subprocess.Popen(
        [str(uvicorn), "--factory", "creditline.api.app:create_app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(300):
                try:
                    if client.get("/health").status_code < 500:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            headers = {"content-type": "application/json"}
            process = psutil.Process(server.pid)
            server_cpu = sum(process.cpu_times()[:2])
            started, cpu = time.perf_counter(), time.process_time()
            accepted = sum(
                int(client.post("/v1/events", content=body, headers=headers).json()["accepted"])
                for body in requests
            )
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            server_cpu = sum(process.cpu_times()[:2]) - server_cpu
            cpu += server_cpu
    finally:
        server.terminate()
        server.wait(timeout=30)
    label = f"HTTP POST /v1/events (1,000/request), uvicorn, SQLite; server {server_cpu:.2f} CPU s"
    return label, 0, accepted, seconds, cpu


def postgres_database() -> str | None:
    try:
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        name = f"creditline_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception:
        return None
    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def sqlite_database(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder}/{name}.db"
    migrate.upgrade(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--uvicorn", action="store_true", help="also post to a real server")
    parser.add_argument("--no-files", action="store_true", help="skip `events load FILE`")
    parser.add_argument("--no-http", action="store_true", help="skip `POST /v1/events`")
    parser.add_argument("--no-postgres", action="store_true", help="skip the COPY path")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per bulk transaction")
    parser.add_argument(
        "--http-only", action="store_true", help="only `POST /v1/events` (no bulk, COPY, files)"
    )
    parser.add_argument(
        "--shuffle", action="store_true", help="mix the event types in every batch (seed 5)"
    )
    args = parser.parse_args()
    if args.http_only:
        args.no_files = args.no_postgres = True
    size = args.batch
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="creditline-ingest-") as name:
        folder = Path(name)
        events = sample_events(args.events, folder)
        if args.shuffle:
            random.Random(5).shuffle(events)
        count = len(events)
        url = sqlite_database(folder, "bulk")
        txn = f"{size:,}/txn"
        if not args.http_only:
            results.append(timed(f"SQLite, bulk ({txn})", count, lambda: bulk(url, events, size)))
            results.append(
                timed("SQLite, reload (all duplicates)", count, lambda: bulk(url, events, size))
            )
        pg_url = None if args.no_postgres else postgres_database()
        if pg_url is not None:
            try:
                migrate.upgrade(pg_url)
                started, cpu = time.perf_counter(), time.process_time()
                stored, server = bulk_with_server(pg_url, events, size)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                label = f"PostgreSQL, COPY ({txn}); server {server:.2f} CPU s"
                results.append((label, count, stored, seconds, cpu + server))
            finally:
                drop(pg_url)
        if not args.no_files:
            # Import and start-up costs of the command, paid once here, outside the clock.
            warm = folder / "warm"
            warm.mkdir()
            cli_load(sqlite_database(folder, "warm"), write_files(events[:10], warm)["CSV"], warm)
            files = write_files(events, folder)
            for kind, path in files.items():
                file_url = sqlite_database(folder, f"file-{path.suffix[1:]}")
                results.append(
                    timed(
                        f"`events load` {kind} file, SQLite ({txn})",
                        count,
                        lambda p=path, u=file_url: cli_load(u, p, folder, size),  # type: ignore[misc]
                    )
                )
            reader_url = sqlite_database(folder, "file-reader")
            results.append(
                timed(
                    f"`events load` Parquet file, SQLite ({txn}), `--reader-process`",
                    count,
                    lambda: cli_load(
                        reader_url, files["Parquet"], folder, size, ("--reader-process",)
                    ),
                )
            )
        requests = bodies(events, 1_000) if args.uvicorn or not args.no_http else []
        if not args.no_http:
            label, _, stored, seconds, cpu = http_in_process(
                sqlite_database(folder, "http"), requests, folder
            )
            results.append((label, count, stored, seconds, cpu))
        if args.uvicorn:
            label, _, stored, seconds, cpu = http_uvicorn(
                sqlite_database(folder, "uvicorn"), requests, folder
            )
            results.append((label, count, stored, seconds, cpu))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| path | events | stored | seconds | events/s | CPU s | events/CPU-s |")
    print("|---|---|---|---|---|---|---|")
    for label, offered, stored, seconds, cpu in results:
        rate, per_cpu = offered / seconds, offered / max(cpu, 1e-9)
        print(
            f"| {label} | {offered:,} | {stored:,} | {seconds:.2f} | {rate:,.0f} "
            f"| {cpu:.2f} | {per_cpu:,.0f} |"
        )


if __name__ == "__main__":
    main()
