"""One month of behaviour events for one chunk of customers, as an Arrow table.

Every source is driven by the customer's latent creditworthiness `z` and income (see
docs/simulator.md): late repayments, high utilisation, gaming spend, SIM changes and thin
savings are more likely as `z` falls. Seasonality follows the Chinese calendar: spending
rises in the two weeks before the Spring Festival, and orders peak on 1-11 November (the
Double 11 shopping festival) and around 18 June. Each table has exactly the columns of
the ingestion schema (`EVENT_FIELDS`), so the feature store and `creditline events load`
read simulated and real events alike.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditline.data.adapters.arrow_schema import EVENT_SCHEMA
from creditline.data.simulator.population import (
    EDUCATIONS,
    F64,
    I64,
    OCCUPATIONS,
    PROVINCES,
    Population,
    SimulationConfig,
    add_months,
)

DAY_MICROS = 86_400_000_000
CHINA_OFFSET_MICROS = 8 * 3_600_000_000
EPOCH = date(1970, 1, 1)
SOURCE = "simulator"
SPRING_FESTIVAL = {
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}
SPENDING = np.array(
    [
        "groceries",
        "dining",
        "transport",
        "apparel",
        "electronics",
        "health",
        "education",
        "travel",
        "entertainment",
        "gaming",
    ]
)
_SPENDING_MIX = np.array([0.28, 0.22, 0.1, 0.1, 0.05, 0.06, 0.04, 0.05, 0.06, 0.04])
CHANNELS = np.array(["online", "in_app", "qr_code", "in_store"])
ORDER_CATEGORIES = np.array(["apparel", "electronics", "home", "beauty", "food", "books"])


def _sigmoid(x: F64) -> F64:
    result: F64 = 1.0 / (1.0 + np.exp(-x))
    return result


class MonthFrame:
    """Helpers for one calendar month: day weights, instants and event ids."""

    def __init__(self, config: SimulationConfig, population: Population, month: int) -> None:
        self.config = config
        self.population = population
        self.month = month
        self.starts_on = add_months(config.start_on, month)
        self.days = calendar.monthrange(self.starts_on.year, self.starts_on.month)[1]
        self.rng = np.random.default_rng([config.seed, population.first, month, 7])
        self.ids = customer_id_array(population)
        self._serial = 0

    @property
    def start_day(self) -> int:
        return (self.starts_on - EPOCH).days

    def spending_weights(self) -> F64:
        """Relative spending on each day of the month (Spring Festival run-up, weekends)."""
        days = self.start_day + np.arange(self.days)
        weights = np.where((days + 3) % 7 >= 5, 1.25, 1.0)
        festival = SPRING_FESTIVAL.get(self.starts_on.year)
        if festival is not None:
            to_festival = (festival - EPOCH).days - days
            weights = weights * np.where((to_festival > 0) & (to_festival <= 14), 2.2, 1.0)
            weights = weights * np.where((to_festival <= 0) & (to_festival > -7), 0.6, 1.0)
        result: F64 = weights / weights.sum()
        return result

    def order_weights(self) -> F64:
        weights = np.ones(self.days)
        if self.starts_on.month == 11:
            weights[:11] = 3.0
            weights[10] = 12.0
        if self.starts_on.month == 6:
            weights[15:18] = 4.0
        result: F64 = weights / weights.sum()
        return result

    def season(self, kind: str) -> float:
        """The month's volume relative to an ordinary month."""
        weights = self.spending_weights() if kind == "spending" else self.order_weights()
        if kind == "orders":
            return {11: 2.2, 6: 1.3, 12: 1.1}.get(self.starts_on.month, 1.0)
        festival = SPRING_FESTIVAL.get(self.starts_on.year)
        in_month = festival is not None and abs((festival - self.starts_on).days - 14) < 28
        return 1.3 if in_month and weights.max() > 1.5 / self.days else 1.0

    def instants(self, day_of_month: I64, size: int) -> I64:
        """Microseconds since the epoch: a daytime instant (China time) on each day."""
        hours = np.clip(self.rng.normal(14.5, 4.0, size), 0, 23.99)
        local = (self.start_day + day_of_month) * DAY_MICROS + (hours * 3.6e9).astype(np.int64)
        result: I64 = local - CHINA_OFFSET_MICROS
        return result

    def event_ids(self, code: str, size: int) -> pa.Array:
        prefix = f"s{self.config.seed}-{self.population.first}-{self.month}-{code}-"
        serial = pa.array(np.arange(size, dtype=np.int64)).cast(pa.string())
        return pc.binary_join_element_wise(prefix, serial, "")

    def table(self, kind: str, code: str, who: I64, when: I64, **columns: pa.Array) -> pa.Table:
        size = len(who)
        data: dict[str, pa.Array] = {
            "event_id": self.event_ids(code, size),
            "customer_id": self.ids.take(pa.array(who)),
            "event_type": _constant(kind, size),
            "occurred_at": pa.array(when, type=pa.timestamp("us", tz="UTC")),
            "source": _constant(SOURCE, size),
            "schema_version": pa.array(np.ones(size, dtype=np.int64)),
            "currency": _constant("CNY", size),
        }
        data.update(columns)
        arrays = [
            data[f.name].cast(f.type) if f.name in data else pa.nulls(size, f.type)
            for f in EVENT_SCHEMA
        ]
        return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)

    def repeat(self, rate: F64) -> I64:
        """Customer indices repeated by a Poisson count with the given mean each."""
        counts = self.rng.poisson(np.maximum(rate, 0.0))
        result: I64 = np.repeat(np.arange(self.population.size, dtype=np.int64), counts)
        return result

    def days_by(self, weights: F64, size: int) -> I64:
        result: I64 = self.rng.choice(self.days, size=size, p=weights).astype(np.int64)
        return result


def customer_id_array(population: Population) -> pa.Array:
    """`Population.customer_ids()` as an Arrow array, built by Arrow (c + 9 digits)."""
    numbers = np.arange(population.first, population.first + population.size, dtype=np.int64)
    digits = pc.utf8_lpad(_as_text(numbers), width=9, padding="0")
    return pc.binary_join_element_wise("c", digits, "")


def _as_text(numbers: I64) -> pa.Array:
    """Integers as decimal text (what `str(int)` gives), converted by Arrow, not numpy."""
    return pa.array(numbers, type=pa.int64()).cast(pa.string())


def _constant(text: str, size: int) -> pa.Array:
    """`size` copies of `text`, written straight into an Arrow string array's buffers."""
    data = text.encode()
    offsets = np.arange(0, (size + 1) * len(data), len(data) or 1, dtype=np.int32)[: size + 1]
    if not data:
        offsets = np.zeros(size + 1, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), size, [None, pa.py_buffer(offsets), pa.py_buffer(data * size)]
    )


def _date_array(days_since_epoch: I64) -> pa.Array:
    return pa.array(days_since_epoch.astype(np.int32), type=pa.int32()).cast(pa.date32())


def _amounts(values: F64) -> pa.Array:
    return pa.array(np.maximum(np.rint(values), 1).astype(np.int64))


def _pick(options: np.ndarray, index: I64) -> pa.Array:
    indices = pa.array(index.astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array(options)).cast(pa.string())


def profile_updates(f: MonthFrame) -> pa.Table:
    p, rng = f.population, f.rng
    if f.month == 0:
        who = np.arange(p.size, dtype=np.int64)
    else:
        who = np.flatnonzero(rng.random(p.size) < 0.01).astype(np.int64)
    day = rng.integers(0, f.days, len(who)) if f.month else np.zeros(len(who), np.int64)
    inflation = np.where(p.in_ring[who], 2.0, 1.0) * rng.lognormal(0.05, 0.15, len(who))
    verified = rng.random(len(who)) < np.where(
        p.in_ring[who], 0.6, np.where(p.is_thin_file[who], 0.85, 0.97)
    )
    return f.table(
        "profile_update",
        "pu",
        who,
        f.instants(day, len(who)),
        occupation=_pick(OCCUPATIONS, p.occupation[who]),
        education=_pick(EDUCATIONS, p.education[who]),
        amount_minor=_amounts(p.monthly_income_minor[who] * inflation),
        is_real_name_verified=pa.array(verified),
    )


def payments(f: MonthFrame) -> pa.Table:
    p, rng = f.population, f.rng
    income_factor = np.sqrt(p.monthly_income_minor / 540_000.0)
    who = f.repeat(6.0 * p.activity * income_factor * f.season("spending"))
    size = len(who)
    day = f.days_by(f.spending_weights(), size)
    gaming_share = 0.04 * np.exp(-0.8 * p.z[who])
    category = rng.choice(len(SPENDING), size=size, p=_SPENDING_MIX)
    category = np.where(rng.random(size) < gaming_share, len(SPENDING) - 1, category)
    amount = p.monthly_income_minor[who] * 0.012 * rng.lognormal(0.0, 0.9, size)
    return f.table(
        "payment",
        "pa",
        who,
        f.instants(day, size),
        amount_minor=_amounts(amount),
        category=_pick(SPENDING, category),
        channel=_pick(CHANNELS, rng.integers(0, len(CHANNELS), size)),
    )


def orders_and_refunds(f: MonthFrame) -> list[pa.Table]:
    p, rng = f.population, f.rng
    who = f.repeat(2.0 * p.activity * f.season("orders"))
    size = len(who)
    day = f.days_by(f.order_weights(), size)
    when = f.instants(day, size)
    amount = _amounts(p.monthly_income_minor[who] * 0.03 * rng.lognormal(0.0, 0.8, size))
    order_ids = f.event_ids("or", size)
    orders = f.table(
        "order",
        "or",
        who,
        when,
        amount_minor=amount,
        category=_pick(ORDER_CATEGORIES, rng.integers(0, len(ORDER_CATEGORIES), size)),
        reference_id=order_ids,
        channel=_pick(CHANNELS[:2], rng.integers(0, 2, size)),
    )
    refunded = np.flatnonzero(rng.random(size) < np.where(p.in_ring[who], 0.2, 0.06))
    lag = rng.integers(1, 11, len(refunded)) * DAY_MICROS
    refunds = f.table(
        "refund",
        "rf",
        who[refunded],
        when[refunded] + lag,
        amount_minor=amount.take(pa.array(refunded)),
        reference_id=order_ids.take(pa.array(refunded)),
    )
    return [orders, refunds]


def bills_and_repayments(f: MonthFrame) -> list[pa.Table]:
    """A statement per other credit product, and its repayment (late, partial or missing)."""
    p, rng = f.population, f.rng
    who = np.repeat(np.arange(p.size, dtype=np.int64), p.products)
    product = _product_index(p.products)
    size = len(who)
    product_rng = np.random.default_rng([f.config.seed, p.first, 11])
    limits_all = product_rng.uniform(1.0, 4.0, int(p.products.sum()))
    statement_day_all = product_rng.integers(0, 20, int(p.products.sum()))
    limit = np.rint(p.monthly_income_minor[who] * limits_all / 100).astype(np.int64) * 100
    statement_day = statement_day_all.astype(np.int64)
    z = p.z[who]
    utilisation = _sigmoid(-1.0 - 0.9 * z + 0.8 * rng.standard_normal(size))
    due_minor = np.rint(limit * utilisation).astype(np.int64)
    stated = f.instants(statement_day, size)
    due_day = f.start_day + statement_day + 20
    product_ids = pc.binary_join_element_wise(f.ids.take(pa.array(who)), _as_text(product), "-p")
    bills = f.table(
        "bill",
        "bi",
        who,
        stated,
        product_id=product_ids,
        due_on=_date_array(due_day),
        amount_due_minor=pa.array(due_minor),
        credit_limit_minor=pa.array(limit),
    )
    missed = rng.random(size) < _sigmoid(-5.0 - 1.4 * z + 3.0 * p.in_ring[who])
    paying = np.flatnonzero((due_minor >= 100) & ~missed)
    late_p = _sigmoid(-2.8 - 1.2 * z[paying])
    is_late = rng.random(len(paying)) < late_p
    very_late = rng.random(len(paying)) < _sigmoid(-5.5 - 1.5 * z[paying])
    late_days = np.where(is_late, rng.geometric(0.3, len(paying)), 0)
    late_days = np.where(very_late, rng.integers(30, 90, len(paying)), late_days)
    early_days = np.where(late_days > 0, 0, rng.integers(0, 8, len(paying)))
    paid_day = due_day[paying] + late_days - early_days
    in_full = rng.random(len(paying)) < 0.45 + 0.4 * _sigmoid(z[paying])
    share = np.where(in_full, 1.0, rng.uniform(0.1, 0.9, len(paying)))
    paid_at = (paid_day * DAY_MICROS - CHINA_OFFSET_MICROS) + (
        rng.uniform(9, 22, len(paying)) * 3.6e9
    ).astype(np.int64)
    repayments = f.table(
        "bill_repayment",
        "br",
        who[paying],
        paid_at,
        product_id=product_ids.take(pa.array(paying)),
        due_on=_date_array(due_day[paying]),
        amount_minor=_amounts(due_minor[paying] * share),
        amount_due_minor=pa.array(due_minor[paying]),
    )
    return [bills, repayments]


def _product_index(products: I64) -> I64:
    total = int(products.sum())
    starts = np.repeat(np.cumsum(products) - products, products)
    result: I64 = np.arange(total, dtype=np.int64) - starts
    return result


def alternative_payments(f: MonthFrame) -> pa.Table:
    """Utility and phone bills (monthly, due on the 20th) and transit rides."""
    p, rng = f.population, f.rng
    utility = np.flatnonzero(rng.random(p.size) < 0.7).astype(np.int64)
    phone = np.flatnonzero(rng.random(p.size) < 0.9).astype(np.int64)
    transit = f.repeat(np.full(p.size, 3.0))
    who = np.concatenate([utility, phone, transit])
    kind = np.concatenate(
        [np.zeros(len(utility)), np.ones(len(phone)), np.full(len(transit), 2)]
    ).astype(np.int64)
    size = len(who)
    billed = kind < 2
    late = rng.random(size) < _sigmoid(-2.4 - 0.9 * p.z[who])
    late_days = np.where(billed & late, rng.geometric(0.25, size), 0)
    due_day = np.full(size, 19, dtype=np.int64)
    day = np.where(billed, np.minimum(due_day - rng.integers(0, 10, size) + late_days, 60), 0)
    day = np.where(billed, day, rng.integers(0, f.days, size))
    base = np.array([9_000.0, 6_000.0, 400.0])[kind]
    due_on = pa.array(
        np.where(billed, f.start_day + due_day, 0).astype(np.int32), mask=~billed
    ).cast(pa.date32())
    return f.table(
        "alternative_payment",
        "ap",
        who,
        f.instants(day, size),
        category=_pick(np.array(["utility", "phone", "transit"]), kind),
        amount_minor=_amounts(base * rng.lognormal(0.0, 0.4, size)),
        due_on=due_on,
    )


def transfers(f: MonthFrame) -> pa.Table:
    p, rng = f.population, f.rng
    who = f.repeat(1.0 * np.maximum(p.activity, 0.3))
    size = len(who)
    other = rng.integers(0, p.size, size)
    ring_of = p.ring_id[who]
    ring_members = np.flatnonzero(p.ring_id >= 0)
    if len(ring_members) > 0:
        to_ring = (ring_of >= 0) & (rng.random(size) < 0.7)
        mate = _ring_mate(p.ring_id, ring_members, who, rng)
        other = np.where(to_ring, mate, other)
    other = np.where(other == who, (other + 1) % p.size, other)
    keep = np.flatnonzero(other != who)
    amount = p.monthly_income_minor[who] * 0.05 * rng.lognormal(0.0, 1.0, size)
    return f.table(
        "transfer",
        "tr",
        who[keep],
        f.instants(rng.integers(0, f.days, len(keep)), len(keep)),
        counterparty_id=f.ids.take(pa.array(other[keep])),
        amount_minor=_amounts(amount[keep]),
        channel=_pick(CHANNELS[:2], rng.integers(0, 2, len(keep))),
    )


def _ring_mate(ring_id: I64, members: I64, who: I64, rng: np.random.Generator) -> I64:
    """For each sender, a random member of its own ring (or itself if not in a ring)."""
    order = members[np.argsort(ring_id[members], kind="stable")]
    rings, starts, sizes = np.unique(ring_id[order], return_index=True, return_counts=True)
    position = np.searchsorted(rings, ring_id[who])
    position = np.clip(position, 0, len(rings) - 1)
    found = rings[position] == ring_id[who]
    offset = (rng.random(len(who)) * sizes[position]).astype(np.int64)
    result: I64 = np.where(found, order[starts[position] + offset], who)
    return result


def device_logins(f: MonthFrame) -> pa.Table:
    p, rng = f.population, f.rng
    who = f.repeat(5.0 * p.activity + 1.0)
    size = len(who)
    device = rng.integers(0, p.devices[who])
    device_ids = pc.binary_join_element_wise(f.ids.take(pa.array(who)), _as_text(device), "-d")
    shared = (p.ring_id[who] >= 0) & (rng.random(size) < 0.6)
    ring_device = pc.binary_join_element_wise("ring-", _as_text(p.ring_id[who]), "")
    device_ids = pc.if_else(pa.array(shared), ring_device, device_ids)
    sim = rng.random(size) < _sigmoid(-5.0 - 0.6 * p.z[who] + 1.5 * p.in_ring[who])
    moved = rng.random(size) < 0.03
    province = np.where(moved, rng.integers(0, len(PROVINCES), size), p.province[who])
    return f.table(
        "device_login",
        "dl",
        who,
        f.instants(rng.integers(0, f.days, size), size),
        device_id=device_ids,
        is_sim_change=pa.array(sim),
        location=_pick(PROVINCES, province),
    )


def balances(f: MonthFrame) -> pa.Table:
    """Month-end savings balance for everyone, wealth-product balance for some."""
    p, rng = f.population, f.rng
    everyone = np.arange(p.size, dtype=np.int64)
    wealthy = np.flatnonzero(rng.random(p.size) < _sigmoid(p.z + 0.3 * p.education - 1.5))
    who = np.concatenate([everyone, wealthy.astype(np.int64)])
    kind = np.concatenate([np.zeros(p.size, np.int64), np.ones(len(wealthy), np.int64)])
    buffer = np.exp(0.3 + 0.6 * p.z[who] + 0.7 * rng.standard_normal(len(who)))
    amount = np.maximum(np.rint(p.monthly_income_minor[who] * buffer * np.where(kind, 2, 1)), 0)
    last = np.full(len(who), f.days - 1, dtype=np.int64)
    return f.table(
        "balance",
        "ba",
        who,
        f.instants(last, len(who)),
        category=_pick(np.array(["savings", "wealth"]), kind),
        amount_minor=pa.array(amount.astype(np.int64)),
    )


SOURCES: tuple[Callable[[MonthFrame], pa.Table | list[pa.Table]], ...] = (
    profile_updates,
    payments,
    orders_and_refunds,
    bills_and_repayments,
    alternative_payments,
    transfers,
    device_logins,
    balances,
)


def month_of_events(config: SimulationConfig, population: Population, month: int) -> pa.Table:
    """Every event of every source for one chunk and one month."""
    frame = MonthFrame(config, population, month)
    tables: list[pa.Table] = []
    for source in SOURCES:
        made = source(frame)
        tables.extend(made if isinstance(made, list) else [made])
    return pa.concat_tables(tables)
