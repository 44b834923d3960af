"""Feature definitions, written once: each feature is a name, a description, a window, a
unit and one declarative spec that every engine compiles (DuckDB SQL, Spark, online).

A spec is a small expression tree. Its leaves are aggregates over the events of one
`Source` in a window that ends the day before the as-of date D: the window of `w` days is
the event days `D − w … D − 1`. Its one inner node is `Quotient`.

What each leaf means when there is nothing to aggregate (every engine keeps these):

- `Count`, `Sum`, `Distinct`, `NewKeys`: 0.
- `Max`, `DaysSinceFirst`, `DaysSinceLast`, `DaysSinceNewKey`, `Latest`: None (missing).
- `ActivePeriods`: 0.0; `Quotient`: None when the denominator is missing or zero.
- `SharedDeviceCustomers`: 0; `NeighbourShare`: None when the customer has no neighbours.

Sums are exact integers (fen); ratios are IEEE doubles from one division of two exact
integers, so engines agree to the last bit unless a sum passes 2**53 fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from creditline.features.domain.events import EventType

#: Columns a `Where` or an aggregate may name: the input columns plus derived `days_late`.
NUMERIC_COLUMNS = frozenset({"amount_minor", "amount_due_minor", "credit_limit_minor", "days_late"})
KEY_COLUMNS = frozenset({"category", "counterparty_id", "device_id", "product_id"})
FLAG_COLUMNS = frozenset({"is_sim_change"})
MAX_WINDOW_DAYS = 365


class Op(StrEnum):
    EQ = "eq"
    AT_LEAST = "at_least"


@dataclass(frozen=True, slots=True)
class Where:
    """A condition on one column of an event: `column = value` or `column ≥ value`."""

    column: str
    op: Op
    value: int | str | bool

    def __post_init__(self) -> None:
        if self.column not in NUMERIC_COLUMNS | KEY_COLUMNS | FLAG_COLUMNS:
            raise ValueError(f"unknown column {self.column!r}")
        if self.op is Op.AT_LEAST and self.column not in NUMERIC_COLUMNS:
            raise ValueError(f"{self.column} is not numeric; at_least needs a number")

    @property
    def key(self) -> str:
        return f"{self.column}.{self.op}.{self.value}"


@dataclass(frozen=True, slots=True)
class Source:
    """The events a leaf aggregates: of these types (any type if empty), meeting `where`."""

    event_types: tuple[EventType, ...] = ()
    where: tuple[Where, ...] = ()

    @property
    def key(self) -> str:
        types = "+".join(self.event_types) or "any"
        return "|".join((types, *(w.key for w in self.where)))


def _window(window_days: int) -> None:
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window_days must be within 1..{MAX_WINDOW_DAYS}, got {window_days}")


def _numeric(column: str) -> None:
    if column not in NUMERIC_COLUMNS:
        raise ValueError(f"{column!r} is not a numeric column")


def _keyed(column: str) -> None:
    if column not in KEY_COLUMNS:
        raise ValueError(f"{column!r} is not a key column")


@dataclass(frozen=True, slots=True)
class Count:
    """How many events in the window."""

    source: Source
    window_days: int

    def __post_init__(self) -> None:
        _window(self.window_days)


@dataclass(frozen=True, slots=True)
class Sum:
    """The sum of a numeric column over the window (missing values count as 0)."""

    source: Source
    column: str
    window_days: int

    def __post_init__(self) -> None:
        _window(self.window_days)
        _numeric(self.column)


@dataclass(frozen=True, slots=True)
class Max:
    """The largest value of a numeric column over the window."""

    source: Source
    column: str
    window_days: int

    def __post_init__(self) -> None:
        _window(self.window_days)
        _numeric(self.column)


@dataclass(frozen=True, slots=True)
class Distinct:
    """How many different values of a key column occur in the window."""

    source: Source
    column: str
    window_days: int

    def __post_init__(self) -> None:
        _window(self.window_days)
        _keyed(self.column)


@dataclass(frozen=True, slots=True)
class NewKeys:
    """How many values of a key column were first seen (ever, before D) within the window."""

    source: Source
    column: str
    window_days: int

    def __post_init__(self) -> None:
        _window(self.window_days)
        _keyed(self.column)


@dataclass(frozen=True, slots=True)
class DaysSinceNewKey:
    """Days from the most recent first sighting of any value of a key column to D."""

    source: Source
    column: str

    def __post_init__(self) -> None:
        _keyed(self.column)


@dataclass(frozen=True, slots=True)
class DaysSinceFirst:
    """Days from the first event (ever, before D) to D."""

    source: Source


@dataclass(frozen=True, slots=True)
class DaysSinceLast:
    """Days from the last event before D to D (1 when it happened the day before)."""

    source: Source


@dataclass(frozen=True, slots=True)
class Latest:
    """The value of a numeric column on the latest event before D.

    Latest means the largest `occurred_at`, ties broken by the largest `event_id`.
    """

    source: Source
    column: str

    def __post_init__(self) -> None:
        _numeric(self.column)


@dataclass(frozen=True, slots=True)
class ActivePeriods:
    """The share of the last `periods` periods of `period_days` days that had an event.

    Period k (k = 0 … periods − 1) is the days D − (k + 1)·period_days … D − k·period_days − 1.
    """

    source: Source
    period_days: int
    periods: int

    def __post_init__(self) -> None:
        if self.period_days < 1 or self.periods < 1:
            raise ValueError("period_days and periods must be positive")
        _window(self.period_days * self.periods)


@dataclass(frozen=True, slots=True)
class SharedDeviceCustomers:
    """How many other customers logged in, before D, on a device this customer used."""


@dataclass(frozen=True, slots=True)
class NeighbourShare:
    """The share of a customer's neighbours that have an event of `flag_source` before D.

    Neighbours are the customers who share a device with the customer (as in
    `SharedDeviceCustomers`) together with the counterparties of transfers either way in
    the last `transfer_window_days` days.
    """

    flag_source: Source
    transfer_window_days: int

    def __post_init__(self) -> None:
        _window(self.transfer_window_days)


Leaf = (
    Count
    | Sum
    | Max
    | Distinct
    | NewKeys
    | DaysSinceNewKey
    | DaysSinceFirst
    | DaysSinceLast
    | Latest
    | ActivePeriods
    | SharedDeviceCustomers
    | NeighbourShare
)


@dataclass(frozen=True, slots=True)
class Quotient:
    """numerator / denominator as a double; None when the denominator is missing or 0."""

    numerator: Leaf
    denominator: Leaf


Spec = Leaf | Quotient

#: The event types whose `transfer` mirrors feed the graph features.
TRANSFER_TYPES = (EventType.TRANSFER, EventType.TRANSFER_IN)


class Unit(StrEnum):
    COUNT = "count"
    FEN = "fen"
    DAYS = "days"
    RATIO = "ratio"


class Group(StrEnum):
    SPENDING = "spending"
    REPAYMENT = "repayment"
    ALTERNATIVE = "alternative data"
    PROFILE = "profile"
    DEVICE = "device"
    GRAPH = "graph"
    OVER_BORROWING = "over-borrowing"


@dataclass(frozen=True, slots=True)
class FeatureDefinition:
    name: str
    description: str
    window_days: int | None
    unit: Unit
    group: Group
    spec: Spec

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"a feature name is a lower-case identifier, got {self.name!r}")

    @property
    def is_integral(self) -> bool:
        """True when every engine must give exactly the same integer (counts, fen, days)."""
        return not isinstance(self.spec, Quotient | ActivePeriods | NeighbourShare)


def leaves(spec: Spec) -> tuple[Leaf, ...]:
    if isinstance(spec, Quotient):
        return (spec.numerator, spec.denominator)
    return (spec,)


def _of(*event_types: EventType, where: tuple[Where, ...] = ()) -> Source:
    return Source(tuple(event_types), where)


PAYMENTS = _of(EventType.PAYMENT)
ORDERS = _of(EventType.ORDER)
REFUNDS = _of(EventType.REFUND)
SPENDING = _of(EventType.PAYMENT, EventType.ORDER)
BILLS = _of(EventType.BILL)
REPAYMENTS = _of(EventType.BILL_REPAYMENT)
ON_TIME_REPAYMENTS = _of(EventType.BILL_REPAYMENT, where=(Where("days_late", Op.EQ, 0),))
LATE_REPAYMENTS = _of(EventType.BILL_REPAYMENT, where=(Where("days_late", Op.AT_LEAST, 1),))
SERIOUSLY_LATE_REPAYMENTS = _of(
    EventType.BILL_REPAYMENT, where=(Where("days_late", Op.AT_LEAST, 30),)
)
TRANSFERS_EITHER_WAY = _of(*TRANSFER_TYPES)
TRANSFERS_IN = _of(EventType.TRANSFER_IN)
LOGINS = _of(EventType.DEVICE_LOGIN)
SIM_CHANGES = _of(EventType.DEVICE_LOGIN, where=(Where("is_sim_change", Op.EQ, True),))
PROFILE = _of(EventType.PROFILE_UPDATE)
SAVINGS = _of(EventType.BALANCE, where=(Where("category", Op.EQ, "savings"),))
WEALTH = _of(EventType.BALANCE, where=(Where("category", Op.EQ, "wealth"),))
ANY_EVENT = Source()
WINDOWS = (30, 90, 180, 365)


def _alternative(kind: str, on_time: bool) -> Source:
    # Only payments with a due date can be on time or late; `days_late ≥ 0` selects them.
    on = Where("days_late", Op.EQ, 0) if on_time else Where("days_late", Op.AT_LEAST, 0)
    return _of(EventType.ALTERNATIVE_PAYMENT, where=(Where("category", Op.EQ, kind), on))


def _spending_features() -> list[FeatureDefinition]:
    found = []
    for label, source in (("payment", PAYMENTS), ("order", ORDERS)):
        for days in WINDOWS:
            count, total = Count(source, days), Sum(source, "amount_minor", days)
            found += [
                FeatureDefinition(
                    f"{label}_count_{days}d",
                    f"Number of {label}s in the last {days} days.",
                    days,
                    Unit.COUNT,
                    Group.SPENDING,
                    count,
                ),
                FeatureDefinition(
                    f"{label}_amount_{days}d",
                    f"Total amount of {label}s in the last {days} days.",
                    days,
                    Unit.FEN,
                    Group.SPENDING,
                    total,
                ),
                FeatureDefinition(
                    f"{label}_average_{days}d",
                    f"Average {label} amount in the last {days} days (missing if none).",
                    days,
                    Unit.FEN,
                    Group.SPENDING,
                    Quotient(total, count),
                ),
            ]
    for days in (90, 365):
        found.append(
            FeatureDefinition(
                f"category_diversity_{days}d",
                f"Number of different merchant and product categories in {days} days.",
                days,
                Unit.COUNT,
                Group.SPENDING,
                Distinct(SPENDING, "category", days),
            )
        )
        found.append(
            FeatureDefinition(
                f"refund_rate_{days}d",
                f"Refunds per order in the last {days} days (missing without orders).",
                days,
                Unit.RATIO,
                Group.SPENDING,
                Quotient(Count(REFUNDS, days), Count(ORDERS, days)),
            )
        )
    return found


def _repayment_features() -> list[FeatureDefinition]:
    found = [
        FeatureDefinition(
            f"bill_on_time_rate_{days}d",
            f"Share of repayments of other credit products made by the due date, {days} days.",
            days,
            Unit.RATIO,
            Group.REPAYMENT,
            Quotient(Count(ON_TIME_REPAYMENTS, days), Count(REPAYMENTS, days)),
        )
        for days in (180, 365)
    ]
    found += [
        FeatureDefinition(
            f"worst_days_late_{days}d",
            f"Most days late of any repayment of another credit product in {days} days.",
            days,
            Unit.DAYS,
            Group.REPAYMENT,
            Max(REPAYMENTS, "days_late", days),
        )
        for days in (90, 365)
    ]
    found.append(
        FeatureDefinition(
            "utilisation_90d",
            "Amount due over credit limit on other credit products' bills in 90 days.",
            90,
            Unit.RATIO,
            Group.REPAYMENT,
            Quotient(Sum(BILLS, "amount_due_minor", 90), Sum(BILLS, "credit_limit_minor", 90)),
        )
    )
    return found


def _alternative_features() -> list[FeatureDefinition]:
    return [
        FeatureDefinition(
            f"{kind}_on_time_rate_365d",
            f"Share of {kind} payments with a due date paid by it, 365 days (thin-file signal).",
            365,
            Unit.RATIO,
            Group.ALTERNATIVE,
            Quotient(Count(_alternative(kind, True), 365), Count(_alternative(kind, False), 365)),
        )
        for kind in ("utility", "phone", "transit")
    ]


def _profile_and_device_features() -> list[FeatureDefinition]:
    return [
        FeatureDefinition(
            "income_stability_180d",
            "Share of the last six 30-day periods in which the customer received a transfer.",
            180,
            Unit.RATIO,
            Group.PROFILE,
            ActivePeriods(TRANSFERS_IN, 30, 6),
        ),
        FeatureDefinition(
            "account_tenure_days",
            "Days since the customer's first event of any kind.",
            None,
            Unit.DAYS,
            Group.PROFILE,
            DaysSinceFirst(ANY_EVENT),
        ),
        FeatureDefinition(
            "declared_monthly_income",
            "Monthly income declared in the latest profile update.",
            None,
            Unit.FEN,
            Group.PROFILE,
            Latest(PROFILE, "amount_minor"),
        ),
        FeatureDefinition(
            "savings_balance",
            "Savings balance reported by the latest savings balance event.",
            None,
            Unit.FEN,
            Group.PROFILE,
            Latest(SAVINGS, "amount_minor"),
        ),
        FeatureDefinition(
            "wealth_balance",
            "Wealth-product balance reported by the latest wealth balance event.",
            None,
            Unit.FEN,
            Group.PROFILE,
            Latest(WEALTH, "amount_minor"),
        ),
        FeatureDefinition(
            "days_since_sim_change",
            "Days since the last login that reported a SIM change (missing if never).",
            None,
            Unit.DAYS,
            Group.DEVICE,
            DaysSinceLast(SIM_CHANGES),
        ),
        FeatureDefinition(
            "days_since_new_device",
            "Days since the customer first logged in on their newest device.",
            None,
            Unit.DAYS,
            Group.DEVICE,
            DaysSinceNewKey(LOGINS, "device_id"),
        ),
        FeatureDefinition(
            "device_count_365d",
            "Number of different devices used to log in within 365 days.",
            365,
            Unit.COUNT,
            Group.DEVICE,
            Distinct(LOGINS, "device_id", 365),
        ),
    ]


def _graph_features() -> list[FeatureDefinition]:
    return [
        FeatureDefinition(
            "transfer_degree_365d",
            "Number of different customers the customer sent money to or received it from.",
            365,
            Unit.COUNT,
            Group.GRAPH,
            Distinct(TRANSFERS_EITHER_WAY, "counterparty_id", 365),
        ),
        FeatureDefinition(
            "shared_device_customers",
            "Number of other customers who logged in on any of the customer's devices.",
            None,
            Unit.COUNT,
            Group.GRAPH,
            SharedDeviceCustomers(),
        ),
        FeatureDefinition(
            "neighbour_delinquent_share",
            "Share of device-sharing and transfer neighbours ever 30+ days late on a repayment.",
            365,
            Unit.RATIO,
            Group.GRAPH,
            NeighbourShare(SERIOUSLY_LATE_REPAYMENTS, 365),
        ),
    ]


def _over_borrowing_features() -> list[FeatureDefinition]:
    return [
        FeatureDefinition(
            "late_products_365d",
            "Number of other credit products repaid late at least once in 365 days.",
            365,
            Unit.COUNT,
            Group.OVER_BORROWING,
            Distinct(LATE_REPAYMENTS, "product_id", 365),
        ),
        FeatureDefinition(
            "products_opened_90d",
            "Number of other credit products whose first bill came in the last 90 days.",
            90,
            Unit.COUNT,
            Group.OVER_BORROWING,
            NewKeys(BILLS, "product_id", 90),
        ),
        FeatureDefinition(
            "debt_to_income_30d",
            "Amount due on other credit products in 30 days over declared monthly income.",
            30,
            Unit.RATIO,
            Group.OVER_BORROWING,
            Quotient(Sum(BILLS, "amount_due_minor", 30), Latest(PROFILE, "amount_minor")),
        ),
    ]


def _catalogue() -> tuple[FeatureDefinition, ...]:
    found = (
        _spending_features()
        + _repayment_features()
        + _alternative_features()
        + _profile_and_device_features()
        + _graph_features()
        + _over_borrowing_features()
    )
    names = [feature.name for feature in found]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ValueError(f"feature names must be unique: {sorted(duplicates)}")
    return tuple(found)


#: Every feature of the credit profile, in output column order.
FEATURES: tuple[FeatureDefinition, ...] = _catalogue()


def feature_names() -> tuple[str, ...]:
    return tuple(feature.name for feature in FEATURES)
