"""Run a simulation and stream it to disk, one chunk of customers and one month at a time.

Layout of the output folder:

- `events/event_month=YYYY-MM/part-<chunk>-<month>.parquet`: behaviour events in the
  ingestion schema, partitioned by the month (China time) in which they occurred;
- `customers.parquet`: one row per customer, with the ground truth the events came from;
- `outcomes.parquet`: per customer, the observation date and `bad` (90+ DPD within 12
  months of it), with the true probability `pd` for calibration studies;
- `demand.parquet`: the expected number of borrowing requests per day.

Memory stays bounded by one chunk-month (50,000 customers by default), so a million
customers need no more memory than fifty thousand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from creditline.data.adapters.arrow_schema import write_partitions
from creditline.data.simulator.behaviour import (
    SPRING_FESTIVAL,
    customer_id_array,
    month_of_events,
)
from creditline.data.simulator.population import (
    EDUCATIONS,
    OCCUPATIONS,
    PROVINCES,
    Population,
    SimulationConfig,
    default_intercept,
    draw_population,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    customers: int
    events: int
    bad: int
    files: int
    seconds: float

    @property
    def base_rate(self) -> float:
        return self.bad / self.customers


def simulate(
    config: SimulationConfig, out: Path, *, progress: Progress | None = None
) -> SimulationSummary:
    """Write the whole simulation under `out` (which must be empty or absent)."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    intercept = default_intercept(config)
    chunks = -(-config.customers // config.chunk_customers)
    customers_writer = outcomes_writer = None
    events = bad = files = 0
    writer = ThreadPoolExecutor(max_workers=1)
    pending: Future[int] | None = None
    try:
        for chunk in range(chunks):
            population = draw_population(config, chunk, intercept)
            customers = customers_table(population)
            outcomes = outcomes_table(population, config.observation_on)
            if customers_writer is None:
                customers_writer = pq.ParquetWriter(out / "customers.parquet", customers.schema)
                outcomes_writer = pq.ParquetWriter(out / "outcomes.parquet", outcomes.schema)
            customers_writer.write_table(customers)
            assert outcomes_writer is not None
            outcomes_writer.write_table(outcomes)
            bad += int(population.bad.sum())
            for month in range(config.months):
                table = month_of_events(config, population, month)
                name = f"part-{chunk:05d}-{month:03d}"
                # Writing (Arrow, without the GIL) overlaps with generating the next month;
                # at most one table waits, so memory stays at about two chunk-months.
                if pending is not None:
                    files += pending.result()
                pending = writer.submit(write_partitions, table, out / "events", name)
                events += table.num_rows
                if progress is not None:
                    progress(chunk * config.months + month + 1, chunks * config.months)
        if pending is not None:
            files += pending.result()
    finally:
        writer.shutdown(wait=True)
        for parquet_writer in (customers_writer, outcomes_writer):
            if parquet_writer is not None:
                parquet_writer.close()
    pq.write_table(demand_table(config), out / "demand.parquet")
    return SimulationSummary(config.customers, events, bad, files, time.perf_counter() - started)


def customers_table(population: Population) -> pa.Table:
    def pick(options: np.ndarray, index: np.ndarray) -> pa.Array:
        return pa.array(options).take(pa.array(index))

    ring = population.ring_id
    return pa.table(
        {
            "customer_id": customer_id_array(population),
            "age": pa.array(population.age),
            "occupation": pick(OCCUPATIONS, population.occupation),
            "education": pick(EDUCATIONS, population.education),
            "monthly_income_minor": pa.array(population.monthly_income_minor),
            "province": pick(PROVINCES, population.province),
            "is_thin_file": pa.array(population.is_thin_file),
            "fraud_ring_id": pa.array(ring, mask=ring < 0),
            "other_credit_products": pa.array(population.products),
            "latent_creditworthiness": pa.array(population.z),
        }
    )


def outcomes_table(population: Population, observation_on: date) -> pa.Table:
    return pa.table(
        {
            "customer_id": customer_id_array(population),
            "observation_on": pa.array([observation_on] * population.size, type=pa.date32()),
            "bad": pa.array(population.bad.astype(np.int8)),
            "pd": pa.array(population.pd),
        }
    )


def demand_table(config: SimulationConfig) -> pa.Table:
    """Borrowing requests per day: weekday rhythm, paydays, festivals, Poisson noise."""
    rng = np.random.default_rng([config.seed, 424_242])
    days = (config.observation_on - config.start_on).days
    dates = [config.start_on + timedelta(days=i) for i in range(days)]
    weekday = np.array([1.1, 1.05, 1.0, 1.0, 1.15, 0.85, 0.8])[[d.weekday() for d in dates]]
    payday = np.array([0.85 if d.day in (10, 11, 15) else 1.0 for d in dates])
    month_end = np.array([1.2 if d.day >= 25 else 1.0 for d in dates])
    festival = np.array([_festival_factor(d) for d in dates])
    expected = config.customers * 0.002 * weekday * payday * month_end * festival
    return pa.table(
        {
            "on": pa.array(dates, type=pa.date32()),
            "expected_requests": pa.array(expected),
            "requests": pa.array(rng.poisson(expected).astype(np.int64)),
        }
    )


def _festival_factor(on: date) -> float:
    festival = SPRING_FESTIVAL.get(on.year)
    if festival is not None and 0 < (festival - on).days <= 14:
        return 1.6
    if on.month == 11 and on.day <= 11:
        return 1.4
    return 1.0
