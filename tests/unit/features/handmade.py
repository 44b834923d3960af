"""A hand-made history around customer A, with every expected feature worked out by hand.

As of D = 2026-03-01 (China time). Day offsets below are relative to D; "D-1 23:30" is
China time. Each expected value is derived in the comment beside it, independently of
the engines, so the same table checks DuckDB, Spark and the online stores.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from creditline.features.domain.events import EVENT_COLUMNS, EventType, FeatureEvent

AS_OF = date(2026, 3, 1)
CHINA = timezone(timedelta(hours=8))
_ids = iter(range(1, 1_000))


def at(days: int, hour: int = 12, minute: int = 0) -> datetime:
    """An instant `days` days from D (negative: before) at hour:minute China time."""
    start = datetime(AS_OF.year, AS_OF.month, AS_OF.day, hour, minute, tzinfo=CHINA)
    return start + timedelta(days=days)


def on(days: int) -> date:
    return AS_OF + timedelta(days=days)


def event(
    customer: str, kind: EventType, when: datetime, *, event_id: str | None = None, **fields: object
) -> FeatureEvent:
    return FeatureEvent(
        event_id=event_id or f"e-{next(_ids):04d}",
        customer_id=customer,
        event_type=kind,
        occurred_at=when,
        **fields,  # type: ignore[arg-type]
    )


def history() -> list[FeatureEvent]:
    pay, order, refund = EventType.PAYMENT, EventType.ORDER, EventType.REFUND
    bill, repay = EventType.BILL, EventType.BILL_REPAYMENT
    alt, login, transfer = EventType.ALTERNATIVE_PAYMENT, EventType.DEVICE_LOGIN, EventType.TRANSFER
    profile, balance = EventType.PROFILE_UPDATE, EventType.BALANCE
    return [
        # Payments: D-1 23:30 is inside every window; D 00:10 China time (still D-1 in UTC)
        # and D+5 are not before D.
        event("A", pay, at(-1, 23, 30), amount_minor=100, category="dining"),
        event("A", pay, at(-30), amount_minor=200, category="dining"),
        event("A", pay, at(-31), amount_minor=400, category="travel"),
        event("A", pay, at(0, 0, 10), amount_minor=800, category="games"),
        event("A", pay, at(5), amount_minor=1_600, category="games"),
        # Orders and a refund in the last 90 days.
        event("A", order, at(-10), amount_minor=5_000, category="groceries"),
        event("A", order, at(-80), amount_minor=7_000, category="apparel"),
        event("A", refund, at(-9), amount_minor=5_000),
        # Other credit products: P1 opened long ago, P2 40 days ago.
        event(
            "A",
            bill,
            at(-200),
            product_id="P1",
            due_on=on(-190),
            amount_due_minor=9_000,
            credit_limit_minor=10_000,
        ),
        event(
            "A",
            bill,
            at(-20),
            product_id="P1",
            due_on=on(-10),
            amount_due_minor=3_000,
            credit_limit_minor=10_000,
        ),
        event(
            "A",
            bill,
            at(-40),
            product_id="P2",
            due_on=on(-30),
            amount_due_minor=1_000,
            credit_limit_minor=10_000,
        ),
        event("A", repay, at(-150), product_id="P1", due_on=on(-190), amount_minor=9_000),
        event("A", repay, at(-10), product_id="P1", due_on=on(-10), amount_minor=3_000),
        event("A", repay, at(-25), product_id="P2", due_on=on(-30), amount_minor=1_000),
        # Alternative data: utility once on time, once late, once without a due date.
        event("A", alt, at(-52), category="utility", due_on=on(-50), amount_minor=300),
        event("A", alt, at(-15), category="utility", due_on=on(-20), amount_minor=300),
        event("A", alt, at(-14), category="utility", amount_minor=300),
        event("A", alt, at(-3), category="phone", due_on=on(-3), amount_minor=500),
        # Profile: the declaration after D does not count.
        event("A", profile, at(-100), amount_minor=10_000),
        event("A", profile, at(-10), amount_minor=20_000),
        event("A", profile, at(1), amount_minor=99_999),
        # Two savings balances at the same instant: the larger event id wins.
        event("A", balance, at(-5), event_id="e-bal-1", category="savings", amount_minor=500),
        event("A", balance, at(-5), event_id="e-bal-2", category="savings", amount_minor=700),
        # Devices: dev-1 since D-300 (shared with B; C only arrives after D); dev-2 with a
        # new SIM at D-60.
        event("A", login, at(-300), device_id="dev-1", is_sim_change=False),
        event("A", login, at(-60), device_id="dev-2", is_sim_change=True),
        event("B", login, at(-100), device_id="dev-1", is_sim_change=False),
        event("C", login, at(3), device_id="dev-1", is_sim_change=False),
        # Transfers: A→X, Z→A inside 365 days; Y→A 400 days ago.
        event("A", transfer, at(-10), counterparty_id="X", amount_minor=1_000),
        event("Y", transfer, at(-400), counterparty_id="A", amount_minor=2_000),
        event("Z", transfer, at(-35), counterparty_id="A", amount_minor=3_000),
        # Neighbours' repayments: X was 40 days late before D; B is 60 days late after D.
        event("X", repay, at(-50), product_id="PX", due_on=on(-90), amount_minor=100),
        event("B", repay, at(2), product_id="PB", due_on=on(-58), amount_minor=100),
    ]


#: Customer A as of D, worked out by hand.
EXPECTED_A: dict[str, int | float | None] = {
    "payment_count_30d": 2,  # D-1 23:30 and D-30
    "payment_amount_30d": 300,
    "payment_average_30d": 150.0,
    "payment_count_90d": 3,  # and D-31
    "payment_amount_90d": 700,
    "payment_average_90d": 700 / 3,
    "payment_count_365d": 3,
    "order_count_30d": 1,
    "order_amount_90d": 12_000,
    "order_average_90d": 6_000.0,
    "category_diversity_90d": 4,  # dining, travel, groceries, apparel
    "refund_rate_90d": 0.5,  # one refund, two orders
    "refund_rate_365d": 0.5,
    "bill_on_time_rate_180d": 1 / 3,  # repayments at D-150 (40 late), D-10 (on time), D-25 (5 late)
    "bill_on_time_rate_365d": 1 / 3,
    "worst_days_late_90d": 5,
    "worst_days_late_365d": 40,
    "utilisation_90d": 0.2,  # (3 000 + 1 000) / (10 000 + 10 000)
    "utility_on_time_rate_365d": 0.5,  # the undated utility payment is neither
    "phone_on_time_rate_365d": 1.0,
    "transit_on_time_rate_365d": None,
    "income_stability_180d": 1 / 6,  # one transfer in (D-35), in period 1 of 0…5
    "account_tenure_days": 400,  # the transfer from Y
    "declared_monthly_income": 20_000,
    "savings_balance": 700,
    "wealth_balance": None,
    "days_since_sim_change": 60,
    "days_since_new_device": 60,
    "device_count_365d": 2,
    "transfer_degree_365d": 2,  # X and Z; Y is older than 365 days
    "shared_device_customers": 1,  # B; C logs in on dev-1 only after D
    "neighbour_delinquent_share": 1 / 3,  # B, X, Z: only X was 30+ days late before D
    "late_products_365d": 2,  # P1 (40 days late) and P2 (5 days)
    "products_opened_90d": 1,  # P2
    "debt_to_income_30d": 0.15,  # 3 000 due in 30 days over 20 000 declared
}


def write_parquet(events: list[FeatureEvent], path: Path) -> Path:
    """Write events in the feature input schema (as the simulator and the archive do)."""
    columns = {name: [getattr(e, name) for e in events] for name, _ in EVENT_COLUMNS}
    columns["event_type"] = [e.event_type.value for e in events]
    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp[us, UTC]": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in EVENT_COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)
    return path


def assert_matches_expected(
    actual: dict[str, object], expected: dict[str, int | float | None]
) -> None:
    """Counts, fen and days exactly; ratios within 1e-12; missing must stay missing."""
    wrong = {}
    for name, value in expected.items():
        got = actual[name]
        if value is None or got is None:
            ok = value is None and got is None
        elif isinstance(value, int):
            ok = isinstance(got, int) and got == value
        else:
            ok = isinstance(got, float) and abs(got - value) <= 1e-12
        if not ok:
            wrong[name] = (got, value)
    assert not wrong, f"feature: (actual, expected) {wrong}"
