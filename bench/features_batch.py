"""Benchmark: batch features as of a date for N simulated customers × M months.

    .venv/bin/python bench/features_batch.py --customers 10000 100000 --months 12
    .venv/bin/python bench/features_batch.py --customers 10000 --spark
    .venv/bin/python bench/features_batch.py --events /tmp/feat_bench/sim-100000/events \
        --as-of 2026-01-01


Populations come from the behaviour-data simulator (`--population simulator`, the
default) or the feature store's own generator (`--population synthetic`); each is
generated once under `--work` and reused; or `--events DIR --as-of D` times an existing
event folder (e.g. one written by `creditline simulate`). Prints one row per (population,
engine): events, seconds to build, customers per second, CPU seconds of this process
(DuckDB runs in process; Spark's JVM is not counted) and the load average at the start:
on a shared machine the wall time mostly measures the wait for a core. Generation time is
not part of the figure.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date
from pathlib import Path

import pyarrow.dataset as ds

from creditline.features.adapters.duckdb_engine import DuckDbEngine
from creditline.features.adapters.synthetic_events import SyntheticPopulation, generate
from creditline.features.ports import BatchEngine


def population(kind: str, customers: int, months: int, work: Path) -> tuple[Path, date]:
    """Generate (once) and return the events folder and the as-of date (the day after)."""
    folder = work / f"{kind}-{customers}-{months}"
    if kind == "simulator":
        from creditline.data.simulator.population import SimulationConfig
        from creditline.data.simulator.run import simulate

        config = SimulationConfig(customers=customers, months=months, seed=1)
        if not (folder / "events").exists():
            simulate(config, folder)
        return folder / "events", config.observation_on
    end_on = date(2026, 1, 1)
    if not folder.exists():
        generate(SyntheticPopulation(customers, months, 1, end_on), folder)
    return folder, end_on


def count_events(events: Path) -> int:
    return int(ds.dataset(str(events), format="parquet", exclude_invalid_files=True).count_rows())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--population", choices=["simulator", "synthetic"], default="simulator")
    parser.add_argument("--work", type=Path, default=Path("/tmp/creditline-bench-features"))
    parser.add_argument("--spark", action="store_true", help="Also time the Spark engine.")
    parser.add_argument("--repeat", type=int, default=1, help="Best of N runs per engine.")
    parser.add_argument("--events", type=Path, nargs="*", default=[], help="Existing folders.")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    args = parser.parse_args()
    if args.events and args.as_of is None:
        parser.error("--events needs --as-of")

    engines: list[tuple[str, BatchEngine]] = [("duckdb", DuckDbEngine())]
    if args.spark:
        from creditline.features.adapters.spark_engine import SparkEngine, local_session

        started = time.perf_counter()
        engines.append(("spark", SparkEngine(local_session(memory="6g"))))
        print(f"(Spark session start: {time.perf_counter() - started:.1f} s, not counted)")
    print(
        f"{'customers':>10} {'events':>12} {'engine':>7} {'seconds':>8} {'cust/s':>9}"
        f" {'cpu s':>7} {'load':>5}"
    )
    runs = [(folder, args.as_of) for folder in args.events] or [
        population(args.population, customers, args.months, args.work)
        for customers in args.customers
    ]
    for index, (events, as_of) in enumerate(runs):
        total = count_events(events)
        for name, engine in engines:
            best, cpu, built, load = float("inf"), 0.0, 0, os.getloadavg()[0]
            for _ in range(args.repeat):
                out = args.work / f"out-{name}-{index}.parquet"
                started, cpu_started = time.perf_counter(), time.process_time()
                result = engine.build(events, as_of, out)
                elapsed = time.perf_counter() - started
                if elapsed < best:
                    best, cpu = elapsed, time.process_time() - cpu_started
                built = result.customers
            print(
                f"{built:>10,} {total:>12,} {name:>7} {best:>8.1f} {built / best:>9,.0f}"
                f" {cpu:>7.1f} {load:>5.1f}"
            )


if __name__ == "__main__":
    main()
