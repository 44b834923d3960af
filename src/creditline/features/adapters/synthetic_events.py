"""A small, fast generator of feature-input events, for tests and benchmarks.

It is not the behaviour-data simulator (`creditline simulate`, with its generative model
of creditworthiness); it only has to exercise every feature with realistic shapes and
edge cases: thin-file customers with almost no events, late and very late repayments,
several credit products opened at different times, SIM changes, transfers between
customers, and rings of customers who share devices. Vectorised with numpy, deterministic
for a seed, written as month-partitioned Parquet in the feature input schema
(`EVENT_COLUMNS`), one month per chunk so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from creditline.features.domain.events import EVENT_COLUMNS, EventType

_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
}
SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in EVENT_COLUMNS])
CATEGORIES = np.array(
    ["groceries", "dining", "travel", "electronics", "apparel", "health", "education", "games"]
)
ALTERNATIVE_KINDS = np.array(["utility", "phone", "transit"])
DAY_SECONDS = 86_400
MONTH_DAYS = 30


@dataclass(frozen=True, slots=True)
class SyntheticPopulation:
    customers: int
    months: int
    seed: int
    end_on: date  # events occur on days before this date (China time)

    @property
    def start_on(self) -> date:
        return self.end_on - timedelta(days=MONTH_DAYS * self.months)


def customer_ids(count: int) -> np.ndarray:
    return np.char.add("C", np.char.zfill(np.arange(count).astype(str), 7))


class _Month:
    """Builds one month's events as column arrays."""

    def __init__(self, rng: np.random.Generator, ids: np.ndarray, start: datetime) -> None:
        self.rng = rng
        self.ids = ids
        self.start = start
        self.columns: dict[str, list[np.ndarray]] = {name: [] for name, _ in EVENT_COLUMNS}

    def add(self, event_type: EventType, owners: np.ndarray, **values: np.ndarray) -> None:
        count = len(owners)
        if count == 0:
            return
        seconds = self.rng.integers(0, MONTH_DAYS * DAY_SECONDS, count)
        base = np.datetime64(self.start.replace(tzinfo=None), "us")
        occurred = base + seconds.astype("timedelta64[s]").astype("timedelta64[us]")
        self.columns["customer_id"].append(self.ids[owners])
        self.columns["event_type"].append(np.full(count, event_type.value, dtype=object))
        self.columns["occurred_at"].append(occurred)
        for name, _ in EVENT_COLUMNS:
            if name in ("event_id", "customer_id", "event_type", "occurred_at"):
                continue
            self.columns[name].append(values.get(name, np.full(count, None, dtype=object)))

    def table(self, first_id: int) -> pa.Table:
        arrays = []
        total = sum(len(part) for part in self.columns["customer_id"])
        for name, _ in EVENT_COLUMNS:
            if name == "event_id":
                numbers = np.arange(first_id, first_id + total).astype(str)
                arrays.append(pa.array(np.char.add("E", np.char.zfill(numbers, 10))))
                continue
            joined = np.concatenate([np.asarray(p, dtype=object) for p in self.columns[name]])
            if name == "occurred_at":
                stamps = np.concatenate(self.columns[name])
                arrays.append(
                    pa.array(stamps, type=pa.timestamp("us")).cast(SCHEMA.field(name).type)
                )
                continue
            arrays.append(pa.array(joined, type=SCHEMA.field(name).type, from_pandas=True))
        return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _poisson(rng: np.random.Generator, rates: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(rates)), rng.poisson(rates))


def _month(
    rng: np.random.Generator, ids: np.ndarray, traits: dict[str, np.ndarray], start: datetime
) -> _Month:
    month = _Month(rng, ids, start)
    n = len(ids)
    activity = traits["activity"]
    owners = _poisson(rng, 6.0 * activity)
    month.add(
        EventType.PAYMENT,
        owners,
        amount_minor=rng.lognormal(8.5, 1.0, len(owners)).astype(np.int64),
        category=rng.choice(CATEGORIES, len(owners)).astype(object),
    )
    owners = _poisson(rng, 2.5 * activity)
    month.add(
        EventType.ORDER,
        owners,
        amount_minor=rng.lognormal(9.0, 1.1, len(owners)).astype(np.int64),
        category=rng.choice(CATEGORIES, len(owners)).astype(object),
    )
    owners = _poisson(rng, 0.25 * activity)
    month.add(
        EventType.REFUND, owners, amount_minor=rng.lognormal(8.0, 1.0, len(owners)).astype(np.int64)
    )
    _bills(month, rng, traits, start)
    owners = _poisson(rng, np.where(traits["thin"], 1.5, 0.8))
    due = np.datetime64(start.date()) + rng.integers(5, 35, len(owners)).astype("timedelta64[D]")
    has_due = rng.random(len(owners)) < 0.9
    month.add(
        EventType.ALTERNATIVE_PAYMENT,
        owners,
        category=rng.choice(ALTERNATIVE_KINDS, len(owners)).astype(object),
        due_on=np.where(has_due, due.astype(object), np.full(len(owners), None, dtype=object)),
        amount_minor=rng.integers(2_000, 40_000, len(owners)),
    )
    owners = _poisson(rng, 1.2 * activity)
    month.add(
        EventType.TRANSFER,
        owners,
        counterparty_id=ids[rng.integers(0, n, len(owners))].astype(object),
        amount_minor=rng.lognormal(9.5, 1.0, len(owners)).astype(np.int64),
    )
    owners = _poisson(rng, 3.0 * activity)
    second = rng.random(len(owners)) < 0.1
    device = np.where(second, traits["device_b"][owners], traits["device_a"][owners])
    month.add(
        EventType.DEVICE_LOGIN,
        owners,
        device_id=device.astype(object),
        is_sim_change=(rng.random(len(owners)) < 0.02).astype(object),
    )
    owners = _poisson(rng, np.full(n, 0.15))
    month.add(EventType.PROFILE_UPDATE, owners, amount_minor=traits["income"][owners])
    owners = _poisson(rng, np.where(traits["thin"], 0.0, 0.5))
    month.add(
        EventType.BALANCE,
        owners,
        category=rng.choice(np.array(["savings", "wealth"]), len(owners)).astype(object),
        amount_minor=rng.integers(0, 5_000_000, len(owners)),
    )
    return month


def _bills(
    month: _Month, rng: np.random.Generator, traits: dict[str, np.ndarray], start: datetime
) -> None:
    """One bill per open product, and its repayment: on time, late, or very late."""
    opened = traits["product_opened_month"]
    owners, products = np.nonzero(opened <= traits["month_index"][0])
    if len(owners) == 0:
        return
    product_ids = np.char.add(np.char.add(month.ids[owners], "-P"), products.astype(str))
    due = np.datetime64(start.date()) + rng.integers(10, 28, len(owners)).astype("timedelta64[D]")
    limits = traits["credit_limit"][owners, products]
    amount_due = (limits * rng.uniform(0.05, 0.95, len(owners))).astype(np.int64)
    month.add(
        EventType.BILL,
        owners,
        product_id=product_ids.astype(object),
        due_on=due.astype(object),
        amount_due_minor=amount_due,
        credit_limit_minor=limits,
    )
    risk = traits["risk"][owners]
    late = rng.random(len(owners)) < risk
    very_late = late & (rng.random(len(owners)) < 0.08)
    days_late = np.where(very_late, rng.integers(90, 120, len(owners)), 0)
    days_late = np.where(late & ~very_late, rng.integers(1, 30, len(owners)), days_late)
    days_early = rng.integers(0, 5, len(owners))
    paid_on = due + np.where(late, days_late, -days_early).astype("timedelta64[D]")
    # A repayment happens at a random instant of its day in China time (UTC+8).
    seconds = rng.integers(0, DAY_SECONDS, len(owners)) - 8 * 3600
    paid_at = paid_on.astype("datetime64[us]") + seconds.astype("timedelta64[s]")
    start_cols = {name: len(parts) for name, parts in month.columns.items()}
    month.add(
        EventType.BILL_REPAYMENT,
        owners,
        product_id=product_ids.astype(object),
        due_on=due.astype(object),
        amount_minor=amount_due,
    )
    month.columns["occurred_at"][start_cols["occurred_at"]] = paid_at


def _traits(rng: np.random.Generator, n: int, months: int) -> dict[str, np.ndarray]:
    thin = rng.random(n) < 0.15
    activity = np.where(thin, 0.08, rng.lognormal(0.0, 0.5, n))
    ids = customer_ids(n)
    device_a = np.char.add("D", ids).astype(object)
    device_b = np.char.add("DB", ids).astype(object)
    ring_members = rng.random(n) < 0.02
    rings = rng.integers(0, max(1, n // 200), n)
    device_a = np.where(
        ring_members, np.char.add("RING", rings.astype(str)).astype(object), device_a
    )
    products = 3
    opened = rng.integers(-24, months + 6, (n, products))
    opened[thin] = months + 100
    return {
        "thin": thin,
        "activity": activity,
        "device_a": device_a,
        "device_b": device_b,
        "income": rng.lognormal(np.log(800_000), 0.6, n).astype(np.int64),
        "risk": np.clip(rng.beta(1.0, 12.0, n) + 0.25 * ring_members, 0.0, 1.0),
        "credit_limit": rng.integers(100_000, 5_000_000, (n, products)),
        "product_opened_month": opened,
        "month_index": np.zeros(1, dtype=np.int64),
    }


def generate(population: SyntheticPopulation, out: Path) -> int:
    """Write the population's events under `out/month=YYYY-MM-DD/`; returns how many."""
    rng = np.random.default_rng(population.seed)
    ids = customer_ids(population.customers)
    traits = _traits(rng, population.customers, population.months)
    start = datetime.combine(population.start_on, datetime.min.time(), UTC)
    start -= timedelta(hours=8)  # months start at midnight China time
    written = 0
    for index in range(population.months):
        traits["month_index"][0] = index
        month_start = start + timedelta(days=MONTH_DAYS * index)
        table = _month(rng, ids, traits, month_start).table(written)
        folder = out / f"month={(population.start_on + timedelta(days=MONTH_DAYS * index))}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet", compression="zstd")
        written += table.num_rows
    return written
