"""Compile the feature definitions into one SQL query, for DuckDB and for Spark SQL.

Both batch engines run the query this module writes from `FEATURES`; only a handful of
functions differ between the two dialects (`Dialect`). The query keeps the rules of
`features.domain`:

- `events` cuts at the as-of day first (`day < D`): nothing later can reach any feature;
- a transfer is mirrored into a `transfer_in` row of its receiver;
- the window of `w` days is `D − w ≤ day < D`; `days_late = max(0, day − due day)`;
- every windowed count, sum, maximum and latest value is a conditional aggregate
  (`CASE WHEN … END` inside it); the leaves are grouped by the event types they read, and
  each group is one aggregate over only its types' rows (`WHERE event_type IN …`), so a
  payment is tested against the payment windows only, not against every leaf (one pass
  per event type instead of one pass testing ~40 conditions on every event);
- keyed leaves (distinct counts, first sightings, active periods) share one CTE per
  (source, key) of per-(customer, key) first and last days, instead of `COUNT(DISTINCT)`,
  which costs both engines far more; the graph leaves are CTEs of their own; all are
  joined on `customer_id`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from creditline.features.domain.definitions import (
    FEATURES,
    LOGINS,
    TRANSFER_TYPES,
    ActivePeriods,
    Count,
    DaysSinceFirst,
    DaysSinceLast,
    DaysSinceNewKey,
    Distinct,
    FeatureDefinition,
    Latest,
    Leaf,
    Max,
    NeighbourShare,
    NewKeys,
    Op,
    Quotient,
    SharedDeviceCustomers,
    Source,
    Sum,
    leaves,
)
from creditline.features.domain.events import (
    CHINA_OFFSET_SECONDS,
    EVENT_COLUMNS,
    MICROS_PER_SECOND,
    SECONDS_PER_DAY,
    EventType,
)

_DAY_MICROS = SECONDS_PER_DAY * MICROS_PER_SECOND
_OFFSET_MICROS = CHINA_OFFSET_SECONDS * MICROS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few expressions that DuckDB and Spark SQL spell differently."""

    name: str
    epoch_micros: Callable[[str], str]
    integer_divide: Callable[[str, str], str]
    days_since_epoch: Callable[[str], str]
    max_by: Callable[[str, str], str]
    ordering: Callable[[str, str], str]
    count_distinct: Callable[[str], str]


DUCKDB = Dialect(
    name="duckdb",
    epoch_micros=lambda column: f"epoch_us({column})",
    integer_divide=lambda a, b: f"(({a}) // ({b}))",
    days_since_epoch=lambda column: f"(({column}) - DATE '1970-01-01')",
    max_by=lambda value, order: f"arg_max({value}, {order})",
    ordering=lambda first, second: f"struct_pack(t := {first}, e := {second})",
    count_distinct=lambda value: f"count(DISTINCT {value})",
)

SPARK = Dialect(
    name="spark",
    epoch_micros=lambda column: f"unix_micros({column})",
    integer_divide=lambda a, b: f"(({a}) div ({b}))",
    days_since_epoch=lambda column: f"datediff({column}, DATE '1970-01-01')",
    max_by=lambda value, order: f"max_by({value}, {order})",
    ordering=lambda first, second: f"named_struct('t', {first}, 'e', {second})",
    # Several DISTINCT aggregates make Spark expand every row once per aggregate; a set
    # per group gives the same count (NULLs are skipped by both) in one pass.
    count_distinct=lambda value: f"size(collect_set({value}))",
)


def literal(value: int | str | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def condition(source: Source, *, with_types: bool = True) -> str:
    """The SQL predicate that selects `source`'s events (TRUE for every event).

    `with_types=False` leaves out the event-type test, for a query that already selected
    exactly `source.event_types`.
    """
    parts = []
    if source.event_types and with_types:
        parts.append(f"event_type IN ({', '.join(literal(t.value) for t in source.event_types)})")
    for where in source.where:
        operator = "=" if where.op is Op.EQ else ">="
        parts.append(f"{where.column} {operator} {literal(where.value)}")
    return " AND ".join(parts) or "TRUE"


def _within(source: Source, as_of_day: int, window_days: int) -> str:
    return f"({condition(source, with_types=False)}) AND day >= {as_of_day - window_days}"


TypeGroup = tuple[str, ...]  # sorted event type values; () is every event


def type_group(source: Source) -> TypeGroup:
    """The event types a leaf's aggregate runs over (its group in the split aggregate)."""
    return tuple(sorted({t.value for t in source.event_types}))


class _Query:
    """Accumulates leaf columns of the main aggregate and the joined CTEs."""

    def __init__(self, dialect: Dialect, as_of_day: int) -> None:
        self.dialect = dialect
        self.day = as_of_day
        # Plain aggregates, by the event types they read: (sql, default when the customer
        # has no row of those types).
        self.aggregates: dict[TypeGroup, dict[Leaf, tuple[str, str]]] = {}
        # Separate CTEs: (sql, [(column, default when the customer has no row)]).
        self.joined: list[tuple[str, list[tuple[str, str]]]] = []
        # Keyed leaves, grouped by (condition, key): one CTE over per-(customer, key) first
        # and last days answers distinct counts, first sightings and active periods alike.
        self.keyed: dict[str, list[tuple[str, str, str]]] = {}
        # (condition, key) -> name of the CTE of per-(customer, key) first and last days;
        # the graph leaves read the login and transfer ones too, instead of a pass of their own.
        self.key_names: dict[tuple[str, str], str] = {}
        self.columns: dict[Leaf, str] = {}

    def add(self, leaf: Leaf) -> str:
        if leaf not in self.columns:
            name = f"leaf_{len(self.columns)}"
            self.columns[leaf] = name
            self._compile(leaf, name)
        return self.columns[leaf]

    def _compile(self, leaf: Leaf, name: str) -> None:
        d, day = self.dialect, self.day
        match leaf:
            case Count():
                when = _within(leaf.source, day, leaf.window_days)
                self._aggregate(leaf, leaf.source, f"count(CASE WHEN {when} THEN 1 END)", "0")
            case Sum():
                when = _within(leaf.source, day, leaf.window_days)
                self._aggregate(
                    leaf,
                    leaf.source,
                    f"CAST(coalesce(sum(CASE WHEN {when} THEN {leaf.column} END), 0) AS BIGINT)",
                    "0",
                )
            case Max():
                when = _within(leaf.source, day, leaf.window_days)
                self._aggregate(
                    leaf, leaf.source, f"max(CASE WHEN {when} THEN {leaf.column} END)", "NULL"
                )
            case Distinct():
                # Every event is before D, so a key occurs in the window iff its last day does.
                since = day - leaf.window_days
                self._key(
                    leaf.source,
                    leaf.column,
                    name,
                    f"count(CASE WHEN last_day >= {since} THEN 1 END)",
                    "0",
                )
            case DaysSinceFirst():
                when = condition(leaf.source, with_types=False)
                self._aggregate(
                    leaf, leaf.source, f"{day} - min(CASE WHEN {when} THEN day END)", "NULL"
                )
            case DaysSinceLast():
                when = condition(leaf.source, with_types=False)
                self._aggregate(
                    leaf, leaf.source, f"{day} - max(CASE WHEN {when} THEN day END)", "NULL"
                )
            case Latest():
                when = f"({condition(leaf.source, with_types=False)}) AND {leaf.column} IS NOT NULL"
                order = d.ordering(d.epoch_micros("occurred_at"), "event_id")
                self._aggregate(
                    leaf,
                    leaf.source,
                    d.max_by(
                        f"CASE WHEN {when} THEN {leaf.column} END",
                        f"CASE WHEN {when} THEN {order} END",
                    ),
                    "NULL",
                )
            case ActivePeriods():
                # The key is the period index (D − 1 − day) div p; periods 0 … n − 1 are the
                # ones whose days are all within the last n·p days.
                period = d.integer_divide(f"{day - 1} - day", str(leaf.period_days))
                since = day - leaf.period_days * leaf.periods
                active = f"count(CASE WHEN last_day >= {since} THEN 1 END)"
                share = f"CAST({active} AS DOUBLE) / CAST({leaf.periods} AS DOUBLE)"
                self._key(leaf.source, period, name, share, "CAST(0 AS DOUBLE)")
            case NewKeys():
                since = day - leaf.window_days
                self._key(
                    leaf.source,
                    leaf.column,
                    name,
                    f"count(CASE WHEN first_day >= {since} THEN 1 END)",
                    "0",
                )
            case DaysSinceNewKey():
                self._key(leaf.source, leaf.column, name, f"{day} - max(first_day)", "NULL")
            case SharedDeviceCustomers():
                cte = f"SELECT customer_id, count(*) AS {name} FROM device_neighbours GROUP BY 1"
                self.joined.append((cte, [(name, "0")]))
            case NeighbourShare():
                self.joined.append((self._neighbour_share(leaf, name), [(name, "NULL")]))
            case _:  # pragma: no cover
                raise TypeError(f"unknown leaf {leaf!r}")

    def _aggregate(self, leaf: Leaf, source: Source, sql: str, default: str) -> None:
        self.aggregates.setdefault(type_group(source), {})[leaf] = (sql, default)

    def grouped_ctes(self) -> tuple[str, list[tuple[str, list[tuple[str, str]]]]]:
        """The base aggregate over every event (one row per customer) and one aggregate
        per event-type group, each over only its types' rows."""
        base_columns = self.aggregates.get((), {})
        base = ", ".join(
            [
                "customer_id",
                *(f"{sql} AS {self.columns[leaf]}" for leaf, (sql, _) in base_columns.items()),
            ]
        )
        found = []
        for group, columns in self.aggregates.items():
            if not group:
                continue
            selected = ", ".join(
                f"{sql} AS {self.columns[leaf]}" for leaf, (sql, _) in columns.items()
            )
            types = ", ".join(literal(t) for t in group)
            sql = (
                f"SELECT customer_id, {selected} FROM events"
                f" WHERE event_type IN ({types}) GROUP BY customer_id"
            )
            found.append(
                (sql, [(self.columns[leaf], default) for leaf, (_, default) in columns.items()])
            )
        return f"SELECT {base} FROM events GROUP BY customer_id", found

    def key_cte(self, source: Source, key: str) -> str:
        """The name of the CTE of `source`'s (customer_id, k, first_day, last_day) rows."""
        return self.key_names.setdefault((condition(source), key), f"keys_{len(self.key_names)}")

    def per_key_ctes(self) -> list[str]:
        return [
            f"{name} AS (SELECT customer_id, {key} AS k, min(day) AS first_day,"
            f" max(day) AS last_day FROM events WHERE ({when}) AND ({key}) IS NOT NULL"
            " GROUP BY 1, 2)"
            for (when, key), name in self.key_names.items()
        ]

    def _key(self, source: Source, key: str, name: str, aggregate: str, default: str) -> None:
        self.keyed.setdefault(self.key_cte(source, key), []).append((name, aggregate, default))

    def keyed_ctes(self) -> list[tuple[str, list[tuple[str, str]]]]:
        found = []
        for per_key, columns in self.keyed.items():
            aggregates = ", ".join(f"{sql} AS {name}" for name, sql, _ in columns)
            sql = f"SELECT customer_id, {aggregates} FROM {per_key} GROUP BY 1"
            found.append((sql, [(name, default) for name, _, default in columns]))
        return found

    def _neighbour_share(self, leaf: NeighbourShare, name: str) -> str:
        # A counterparty is a neighbour if a transfer either way falls in the window, i.e.
        # the last one does (every event is before D).
        partners = self.key_cte(Source(TRANSFER_TYPES), "counterparty_id")
        start = self.day - leaf.transfer_window_days
        return f"""
            SELECT n.customer_id,
                   CAST(count(f.customer_id) AS DOUBLE) / CAST(count(*) AS DOUBLE) AS {name}
            FROM (
                SELECT customer_id, neighbour_id FROM device_neighbours
                UNION
                SELECT customer_id, k AS neighbour_id FROM {partners}
                WHERE last_day >= {start} AND k <> customer_id
            ) n
            LEFT JOIN (
                SELECT DISTINCT customer_id FROM events WHERE {condition(leaf.flag_source)}
            ) f ON f.customer_id = n.neighbour_id
            GROUP BY n.customer_id"""


def events_query(dialect: Dialect, source_table: str, as_of_day: int) -> str:
    """The events every feature reads: cut before the as-of day, transfers mirrored,
    with `day` and `days_late` derived. Engines may materialise it once (`prepared_events`).
    """
    names = [name for name, _ in EVENT_COLUMNS]
    day = dialect.integer_divide(
        f"{dialect.epoch_micros('occurred_at')} + {_OFFSET_MICROS}", str(_DAY_MICROS)
    )
    mirrored = [
        {
            "customer_id": "counterparty_id AS customer_id",
            "counterparty_id": "customer_id AS counterparty_id",
            "event_type": f"{literal(EventType.TRANSFER_IN.value)} AS event_type",
        }.get(name, name)
        for name in names
    ]
    due_day = dialect.days_since_epoch("due_on")
    # The two branches scan the source separately (the second only its transfers) rather
    # than share a CTE: a CTE read twice is materialised, a copy of every event.
    transfer = literal(EventType.TRANSFER.value)
    return f"""
        SELECT *, CASE WHEN due_on IS NULL THEN NULL
                       ELSE greatest(0, day - {due_day}) END AS days_late
        FROM (
            SELECT {", ".join(names)}, day FROM (
                SELECT {", ".join(names)}, {day} AS day FROM {source_table}
            ) own WHERE day < {as_of_day}
            UNION ALL
            SELECT {", ".join(mirrored)}, day FROM (
                SELECT {", ".join(names)}, {day} AS day FROM {source_table}
                WHERE event_type = {transfer} AND counterparty_id IS NOT NULL
            ) sent WHERE day < {as_of_day}
        ) both_ends"""


def _graph_ctes(logins: str) -> str:
    return f"""
        logins AS (SELECT customer_id, k AS device_id, first_day FROM {logins}),
        device_neighbours AS (
            SELECT DISTINCT a.customer_id, b.customer_id AS neighbour_id
            FROM logins a JOIN logins b ON a.device_id = b.device_id
            WHERE a.customer_id <> b.customer_id
        )"""


def _feature_expression(feature: FeatureDefinition, query: _Query) -> str:
    spec = feature.spec
    if isinstance(spec, Quotient):
        numerator, denominator = query.add(spec.numerator), query.add(spec.denominator)
        return (
            f"CASE WHEN {denominator} IS NULL OR {denominator} = 0 THEN NULL"
            f" ELSE CAST({numerator} AS DOUBLE) / CAST({denominator} AS DOUBLE) END"
        )
    column = query.add(spec)
    if feature.is_integral:
        return f"CAST({column} AS BIGINT)"
    return f"CAST({column} AS DOUBLE)"


def feature_query(
    dialect: Dialect,
    source_table: str,
    as_of_day: int,
    features: tuple[FeatureDefinition, ...] = FEATURES,
    *,
    prepared_events: str | None = None,
) -> str:
    """One query: a row per customer with an event before the as-of day, a column per feature.

    `source_table` is a table, view or table function whose columns are `EVENT_COLUMNS`;
    or pass `prepared_events`, a table already holding `events_query`'s rows for this day.
    """
    query = _Query(dialect, as_of_day)
    selected = [f"{_feature_expression(f, query)} AS {f.name}" for f in features]
    for feature in features:
        for leaf in leaves(feature.spec):
            query.add(leaf)
    logins = query.key_cte(LOGINS, "device_id")
    base, grouped = query.grouped_ctes()
    events = (
        f"SELECT * FROM {prepared_events}"
        if prepared_events is not None
        else events_query(dialect, source_table, as_of_day)
    )
    ctes = [f"events AS ({events})", *query.per_key_ctes(), _graph_ctes(logins)]
    ctes.append(f"main AS ({base})")
    joins, coalesced = [], {}
    for index, (sql, columns) in enumerate(grouped + query.joined + query.keyed_ctes()):
        alias = f"joined_{index}"
        ctes.append(f"{alias} AS ({sql})")
        joins.append(f"LEFT JOIN {alias} USING (customer_id)")
        for name, default in columns:
            coalesced[name] = f"coalesce({alias}.{name}, {default})" if default != "NULL" else name
    projection = []
    for expression in selected:
        for name, replacement in coalesced.items():
            expression = _replace_column(expression, name, replacement)
        projection.append(expression)
    return (
        "WITH "
        + ",\n".join(ctes)
        + "\nSELECT customer_id, "
        + ",\n       ".join(projection)
        + "\nFROM main "
        + " ".join(joins)
        + "\nORDER BY customer_id"
    )


def _replace_column(expression: str, name: str, replacement: str) -> str:
    """Replace whole-word occurrences of a generated leaf column name."""
    return re.sub(rf"\b{re.escape(name)}\b", replacement, expression)
