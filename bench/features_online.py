"""Benchmark: the online engine: update throughput and p50/p99 to read a full vector.

    .venv/bin/python bench/features_online.py --customers 2000 --reads 5000
    .venv/bin/python bench/features_online.py --customers 2000 --redis redis://127.0.0.1:6379/15
    .venv/bin/python bench/features_online.py --customers 2000 --redis URL --background

Events come from the behaviour-data simulator (12 months); they are folded into the
in-process store (and into Redis with `--redis`) in batches of 1,000, as ingestion would
hand them over, then random customers' full feature vectors are read as of the day after
the simulated window. Prints events/s for updates and read latency percentiles.

With `--tables`, the updates are fed as Arrow tables of 1,000 rows (`apply_table`, what
`POST /v1/events` hands over after storing a batch) instead of `FeatureEvent` objects;
`--skip-memory` benchmarks only Redis. `--redis-cache N` sets how many decoded states the
Redis writer keeps (`RedisFeatureStore(cached_states=N)`; 0 turns the cache off) and
`--compact-at N` how many pending events make it fold them (`compact_at=N`).
`--gc-threshold N` sets the interpreter's first garbage-collection threshold to N
(`gc.set_threshold(N, 10, 10)`; Python's default is 700) before the updates, as a
long-running ingestion process could: the states a writer holds are ~150 objects each,
and with the default, the full collections they bring about took 15-30% of the writer's
CPU on this bench (2,000 to 6,000 customers).

CPU is reported per event and per read, the client's and the Redis server's together,
and the server's share on its own ("srv").

With `--background`, the Redis reads are measured a second time while another process
keeps writing: it folds the same events, in batches of 1,000, as fast as it can or at
`--background-rate` events/s, into a second store on the same Redis (its own prefix, so
the vectors being read do not change under the measurement). Its rate is printed beside
the latencies. With `--tables`, it too is fed Arrow tables.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import statistics
import time
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

try:
    from bench.features_batch import population
except ModuleNotFoundError:  # run as a script (python bench/features_online.py)
    from features_batch import population  # type: ignore[import-not-found,no-redef]

import pyarrow as pa
import pyarrow.dataset as ds

from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.adapters.parquet_events import read_events
from creditline.features.domain.events import EVENT_COLUMNS, FeatureEvent
from creditline.features.ports import OnlineFeatureStore

BATCH = 1_000


def server_seconds(store: OnlineFeatureStore) -> float:
    """CPU used so far by the Redis server behind `store` (0 for the in-process store)."""
    client = getattr(store, "client", None)
    if client is None:
        return 0.0
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_seconds(store: OnlineFeatureStore) -> float:
    """CPU used so far by this process plus, for Redis, by the Redis server.

    On a shared, loaded machine wall-clock figures mostly measure the wait for a core;
    CPU per event or per read is the steadier measure of the work done (the server's
    figure includes whatever else uses the same Redis meanwhile).
    """
    return time.process_time() + server_seconds(store)


def feed(store: OnlineFeatureStore, events: list[FeatureEvent]) -> tuple[float, float, float]:
    """Events per second folded into `store` in batches of `BATCH`, and CPU µs per event
    (client and server, and the server's alone)."""
    started, cpu, server = time.perf_counter(), cpu_seconds(store), server_seconds(store)
    iterator = iter(events)
    while batch := list(islice(iterator, BATCH)):
        store.apply(batch)
    elapsed, used = time.perf_counter() - started, cpu_seconds(store) - cpu
    served = server_seconds(store) - server
    return len(events) / elapsed, used / len(events) * 1e6, served / len(events) * 1e6


def feed_tables(store: OnlineFeatureStore, tables: list[pa.Table]) -> tuple[float, float, float]:
    """`feed` for batches given as Arrow tables (the store's `apply_table`)."""
    rows = sum(t.num_rows for t in tables)
    started, cpu, server = time.perf_counter(), cpu_seconds(store), server_seconds(store)
    for table in tables:
        store.apply_table(table)  # type: ignore[attr-defined]
    elapsed, used = time.perf_counter() - started, cpu_seconds(store) - cpu
    served = server_seconds(store) - server
    return rows / elapsed, used / rows * 1e6, served / rows * 1e6


def event_tables(folder: Path) -> list[pa.Table]:
    """The population's events as Arrow tables of `BATCH` rows, in file order."""
    dataset = ds.dataset(sorted(str(p) for p in folder.rglob("*.parquet")), format="parquet")
    names = [name for name, _ in EVENT_COLUMNS if name in dataset.schema.names]
    table = dataset.to_table(columns=names)
    return [table.slice(start, BATCH) for start in range(0, table.num_rows, BATCH)]


def read_latencies(
    store: OnlineFeatureStore, customers: list[str], reads: int, as_of: object
) -> tuple[list[float], float]:
    """Milliseconds per read, and CPU µs per read (client and server)."""
    rng = random.Random(7)
    timings = []
    cpu = cpu_seconds(store)
    for _ in range(reads):
        customer = rng.choice(customers)
        started = time.perf_counter()
        store.read(customer, as_of)  # type: ignore[arg-type]
        timings.append((time.perf_counter() - started) * 1_000)
    return timings, (cpu_seconds(store) - cpu) / reads * 1e6


def background_writer(
    url: str, folder: Path, stop: Any, rate: Any, target: float, tables: bool
) -> None:
    """Write the population into a store of its own, again and again, until `stop` is set,
    at `target` events per second (0: as fast as it can), as events or as Arrow tables."""
    import redis

    from creditline.features.adapters.redis_store import RedisFeatureStore

    batches: list[Any]
    if tables:
        batches = event_tables(folder)
    else:
        events = list(read_events(folder))
        batches = [events[start : start + BATCH] for start in range(0, len(events), BATCH)]
    store = RedisFeatureStore(redis.Redis.from_url(url), prefix=f"bench-bg-{uuid.uuid4().hex[:8]}")
    written, started = 0, time.perf_counter()
    try:
        while not stop.is_set():
            store.clear()
            iterator = iter(batches)
            while not stop.is_set() and (batch := next(iterator, None)) is not None:
                written += store.apply_table(batch) if tables else store.apply(batch)
                if target > 0:
                    ahead = written / target - (time.perf_counter() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                rate.value = written / (time.perf_counter() - started)
    finally:
        store.clear()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--reads", type=int, default=5_000)
    parser.add_argument("--redis", default=None, help="Also benchmark Redis at this URL.")
    parser.add_argument(
        "--background", action="store_true", help="Also read Redis under a concurrent writer."
    )
    parser.add_argument(
        "--background-rate",
        type=float,
        default=0.0,
        help="Events/s the background writer aims at (default 0: as fast as it can).",
    )
    parser.add_argument(
        "--tables", action="store_true", help="Feed updates as Arrow tables (apply_table)."
    )
    parser.add_argument("--skip-memory", action="store_true", help="Benchmark Redis only.")
    parser.add_argument(
        "--redis-cache",
        type=int,
        default=None,
        help="Decoded states the Redis writer keeps (default: the store's; 0: none).",
    )
    parser.add_argument(
        "--compact-at",
        type=int,
        default=None,
        help="Pending events that make the Redis store fold them (default: the store's).",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=None,
        help="gc.set_threshold(N, 10, 10) before the updates (default: Python's, 700).",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/creditline-bench-features"))
    args = parser.parse_args()

    folder, as_of = population("simulator", args.customers, args.months, args.work)
    # Fed as tables, the events are not also held as objects (a heap of ~600k objects
    # that an ingestion process would not have makes every garbage collection slower).
    tables = event_tables(folder) if args.tables else []
    events = [] if args.tables else list(read_events(folder))
    count = sum(t.num_rows for t in tables) if args.tables else len(events)
    stores: list[tuple[str, OnlineFeatureStore]] = []
    if not args.skip_memory:
        stores.append(("in-process", InMemoryFeatureStore()))
    cleanup = None
    if args.redis:
        import redis

        from creditline.features.adapters.redis_store import RedisFeatureStore

        options = {} if args.redis_cache is None else {"cached_states": args.redis_cache}
        if args.compact_at is not None:
            options["compact_at"] = args.compact_at
        redis_store = RedisFeatureStore(
            redis.Redis.from_url(args.redis), prefix=f"bench-{uuid.uuid4().hex[:8]}", **options
        )
        stores.append(("redis", redis_store))
        cleanup = redis_store.clear
    print(f"{count:,} events for {args.customers:,} customers × {args.months} months")
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, 10, 10)
    print(f"gc thresholds: {gc.get_threshold()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(
        f"{'store':>10} {'update ev/s':>12} {'cpu us/ev':>10} {'srv us/ev':>10}"
        f" {'read p50 ms':>12} {'p99 ms':>8} {'max ms':>8} {'cpu us/read':>12}"
    )
    try:
        for name, store in stores:
            rate, cpu_per_event, server_per_event = (
                feed_tables(store, tables) if tables else feed(store, events)
            )
            customers = store.customers()
            read_latencies(store, customers, 200, as_of)  # warm up
            timings, cpu_per_read = read_latencies(store, customers, args.reads, as_of)
            print(
                f"{name:>10} {rate:>12,.0f} {cpu_per_event:>10.1f} {server_per_event:>10.1f}"
                f" {statistics.median(timings):>12.3f} {percentile(timings, 0.99):>8.3f}"
                f" {max(timings):>8.3f} {cpu_per_read:>12.1f}"
            )
            if name == "redis" and args.background:
                context = multiprocessing.get_context("spawn")
                stop, written = context.Event(), context.Value("d", 0.0)
                writer = context.Process(
                    target=background_writer,
                    args=(
                        args.redis,
                        folder,
                        stop,
                        written,
                        args.background_rate,
                        args.tables,
                    ),
                )
                writer.start()
                try:
                    while written.value == 0.0 and writer.is_alive():
                        time.sleep(0.1)  # let the writer load its events and start
                    timings, _ = read_latencies(store, customers, args.reads, as_of)
                finally:
                    stop.set()
                    writer.join()
                print(
                    f"{'redis+bg':>10} {written.value:>12,.0f} {'':>10} {'':>10}"
                    f" {statistics.median(timings):>12.3f} {percentile(timings, 0.99):>8.3f}"
                    f" {max(timings):>8.3f}   (update ev/s: the background writer's)"
                )
            print(f"  (load average now {os.getloadavg()[0]:.2f})")
    finally:
        if cleanup is not None:
            cleanup()


if __name__ == "__main__":
    main()
