"""Benchmark ingestion: bulk load into SQLite and PostgreSQL (COPY), and HTTP batches.

    .venv/bin/python bench/ingest_bulk.py --events 100000

Events come from the simulator (the same schema as real input). Each path validates every
event and stores it exactly once, as in production: the bulk paths go through
`ingest_batch` in transactions of 5,000 rows (what `creditline events load` does, minus
file reading), the HTTP path posts batches of 1,000 to `POST /v1/events` in process
(FastAPI TestClient, no network) over SQLite. PostgreSQL is skipped when unreachable.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditline.data.adapters.sql import SqlEventStore
from creditline.data.service import ingest_batch
from creditline.data.simulator.population import SimulationConfig
from creditline.data.simulator.run import simulate
from creditline.shared.clock import SystemClock
from creditline.storage import migrate
from creditline.storage.engine import create_db_engine

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def sample_events(count: int, folder: Path) -> list[dict[str, Any]]:
    customers = max(100, count // 25 + 1)
    simulate(SimulationConfig(customers=customers, months=1, seed=5), folder / "sim")
    rows: list[dict[str, Any]] = []
    for path in sorted((folder / "sim" / "events").rglob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows[:count]


def timed(load: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    stored = load()
    return stored, time.perf_counter() - started


def bulk(url: str, events: list[dict[str, Any]], batch: int = 5_000) -> int:
    engine = create_db_engine(url)
    store = SqlEventStore(engine, SystemClock())
    accepted = 0
    for start in range(0, len(events), batch):
        accepted += ingest_batch(store, events[start : start + batch]).accepted
    engine.dispose()
    return accepted


def http(url: str, events: list[dict[str, Any]], folder: Path, batch: int = 1_000) -> int:
    from fastapi.testclient import TestClient

    from creditline.api.app import create_app
    from creditline.bootstrap import build_container
    from creditline.config import Settings

    payload = [{k: _json(v) for k, v in e.items() if v is not None} for e in events]
    settings = Settings(data_dir=folder / "http", database_url=url)
    container = build_container(settings)
    accepted = 0
    with TestClient(create_app(container)) as client:
        for start in range(0, len(payload), batch):
            response = client.post("/v1/events", json={"events": payload[start : start + batch]})
            accepted += int(response.json()["accepted"])
    container.close()
    return accepted


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    results: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="creditline-ingest-") as name:
        folder = Path(name)
        events = sample_events(args.events, folder)
        sqlite_url = f"sqlite:///{folder}/bulk.db"
        migrate.upgrade(sqlite_url)
        results.append(("SQLite, bulk (5,000/txn)", *timed(lambda: bulk(sqlite_url, events))))
        results.append(
            ("SQLite, reload (all duplicates)", *timed(lambda: bulk(sqlite_url, events)))
        )
        pg_url = postgres_database()
        if pg_url is not None:
            try:
                migrate.upgrade(pg_url)
                results.append(
                    ("PostgreSQL, COPY (5,000/txn)", *timed(lambda: bulk(pg_url, events)))
                )
            finally:
                drop(pg_url)
        http_url = f"sqlite:///{folder}/http.db"
        migrate.upgrade(http_url)
        results.append(
            (
                "HTTP POST /v1/events (1,000/request), SQLite",
                *timed(lambda: http(http_url, events, folder)),
            )
        )
    print("| path | events | stored | seconds | events/s |")
    print("|---|---|---|---|---|")
    for label, stored, seconds in results:
        rate = len(events) / seconds
        print(f"| {label} | {len(events):,} | {stored:,} | {seconds:.1f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
