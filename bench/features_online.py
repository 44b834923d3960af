"""Benchmark: the online engine: update throughput and p50/p99 to read a full vector.

    .venv/bin/python bench/features_online.py --customers 2000 --reads 5000
    .venv/bin/python bench/features_online.py --customers 2000 --redis redis://127.0.0.1:6379/15

Events come from the behaviour-data simulator (12 months); they are folded into the
in-process store (and into Redis with `--redis`) in batches of 1,000, as ingestion would
hand them over, then random customers' full feature vectors are read as of the day after
the simulated window. Prints events/s for updates and read latency percentiles.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from itertools import islice
from pathlib import Path

try:
    from bench.features_batch import population
except ModuleNotFoundError:  # run as a script (python bench/features_online.py)
    from features_batch import population  # type: ignore[import-not-found,no-redef]

from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.adapters.parquet_events import read_events
from creditline.features.domain.events import FeatureEvent
from creditline.features.ports import OnlineFeatureStore

BATCH = 1_000


def feed(store: OnlineFeatureStore, events: list[FeatureEvent]) -> float:
    """Events per second folded into `store`, in batches of `BATCH`."""
    started = time.perf_counter()
    iterator = iter(events)
    while batch := list(islice(iterator, BATCH)):
        store.apply(batch)
    return len(events) / (time.perf_counter() - started)


def read_latencies(
    store: OnlineFeatureStore, customers: list[str], reads: int, as_of: object
) -> list[float]:
    rng = random.Random(7)
    timings = []
    for _ in range(reads):
        customer = rng.choice(customers)
        started = time.perf_counter()
        store.read(customer, as_of)  # type: ignore[arg-type]
        timings.append((time.perf_counter() - started) * 1_000)
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--reads", type=int, default=5_000)
    parser.add_argument("--redis", default=None, help="Also benchmark Redis at this URL.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/creditline-bench-features"))
    args = parser.parse_args()

    folder, as_of = population("simulator", args.customers, args.months, args.work)
    events = list(read_events(folder))
    stores: list[tuple[str, OnlineFeatureStore]] = [("in-process", InMemoryFeatureStore())]
    cleanup = None
    if args.redis:
        import redis

        from creditline.features.adapters.redis_store import RedisFeatureStore

        redis_store = RedisFeatureStore(
            redis.Redis.from_url(args.redis), prefix=f"bench-{uuid.uuid4().hex[:8]}"
        )
        stores.append(("redis", redis_store))
        cleanup = redis_store.clear
    print(f"{len(events):,} events for {args.customers:,} customers × {args.months} months")
    print(f"{'store':>10} {'update ev/s':>12} {'read p50 ms':>12} {'p99 ms':>8} {'max ms':>8}")
    try:
        for name, store in stores:
            rate = feed(store, events)
            customers = store.customers()
            read_latencies(store, customers, 200, as_of)  # warm up
            timings = read_latencies(store, customers, args.reads, as_of)
            print(
                f"{name:>10} {rate:>12,.0f} {statistics.median(timings):>12.3f}"
                f" {percentile(timings, 0.99):>8.3f} {max(timings):>8.3f}"
            )
    finally:
        if cleanup is not None:
            cleanup()


if __name__ == "__main__":
    main()
