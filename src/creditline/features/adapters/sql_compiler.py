"""Compile the feature definitions into one SQL query, for DuckDB and for Spark SQL.

Both batch engines run the query this module writes from `FEATURES`; only a handful of
functions differ between the two dialects (`Dialect`). The query keeps the rules of
`features.domain`:

- `events` cuts at the as-of day first (`day < D`): nothing later can reach any feature;
- a transfer is mirrored into a `transfer_in` row of its receiver;
- the window of `w` days is `D − w ≤ day < D`; `days_late = max(0, day − due day)`;
- every windowed count, sum, maximum and latest value is a conditional aggregate
  (`CASE WHEN … END` inside it), so they all come from one pass over the events;
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


def condition(source: Source) -> str:
    """The SQL predicate that selects `source`'s events (TRUE for every event)."""
    parts = []
    if source.event_types:
        parts.append(f"event_type IN ({', '.join(literal(t.value) for t in source.event_types)})")
    for where in source.where:
        operator = "=" if where.op is Op.EQ else ">="
        parts.append(f"{where.column} {operator} {literal(where.value)}")
    return " AND ".join(parts) or "TRUE"


def _within(source: Source, as_of_day: int, window_days: int) -> str:
    return f"({condition(source)}) AND day >= {as_of_day - window_days}"


class _Query:
    """Accumulates leaf columns of the main aggregate and the joined CTEs."""

    def __init__(self, dialect: Dialect, as_of_day: int) -> None:
        self.dialect = dialect
        self.day = as_of_day
        self.aggregates: dict[Leaf, str] = {}
        # Separate CTEs: (sql, [(column, default when the customer has no row)]).
        self.joined: list[tuple[str, list[tuple[str, str]]]] = []
        # Keyed leaves, grouped by (condition, key): one CTE over per-(customer, key) first
        # and last days answers distinct counts, first sightings and active periods alike.
        self.keyed: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
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
                self.aggregates[leaf] = f"count(CASE WHEN {when} THEN 1 END)"
            case Sum():
                when = _within(leaf.source, day, leaf.window_days)
                self.aggregates[leaf] = (
                    f"CAST(coalesce(sum(CASE WHEN {when} THEN {leaf.column} END), 0) AS BIGINT)"
                )
            case Max():
                when = _within(leaf.source, day, leaf.window_days)
                self.aggregates[leaf] = f"max(CASE WHEN {when} THEN {leaf.column} END)"
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
                when = condition(leaf.source)
                self.aggregates[leaf] = f"{day} - min(CASE WHEN {when} THEN day END)"
            case DaysSinceLast():
                when = condition(leaf.source)
                self.aggregates[leaf] = f"{day} - max(CASE WHEN {when} THEN day END)"
            case Latest():
                when = f"({condition(leaf.source)}) AND {leaf.column} IS NOT NULL"
                order = d.ordering(d.epoch_micros("occurred_at"), "event_id")
                self.aggregates[leaf] = d.max_by(
                    f"CASE WHEN {when} THEN {leaf.column} END", f"CASE WHEN {when} THEN {order} END"
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

    def _key(self, source: Source, key: str, name: str, aggregate: str, default: str) -> None:
        self.keyed.setdefault((condition(source), key), []).append((name, aggregate, default))

    def keyed_ctes(self) -> list[tuple[str, list[tuple[str, str]]]]:
        found = []
        for (when, key), columns in self.keyed.items():
            per_key = (
                f"SELECT customer_id, {key} AS k, min(day) AS first_day, max(day) AS last_day"
                f" FROM events WHERE ({when}) AND ({key}) IS NOT NULL GROUP BY 1, 2"
            )
            aggregates = ", ".join(f"{sql} AS {name}" for name, sql, _ in columns)
            sql = f"SELECT customer_id, {aggregates} FROM ({per_key}) f GROUP BY 1"
            found.append((sql, [(name, default) for name, _, default in columns]))
        return found

    def _neighbour_share(self, leaf: NeighbourShare, name: str) -> str:
        types = ", ".join(literal(t.value) for t in TRANSFER_TYPES)
        start = self.day - leaf.transfer_window_days
        return f"""
            SELECT n.customer_id,
                   CAST(count(f.customer_id) AS DOUBLE) / CAST(count(*) AS DOUBLE) AS {name}
            FROM (
                SELECT customer_id, neighbour_id FROM device_neighbours
                UNION
                SELECT DISTINCT customer_id, counterparty_id AS neighbour_id FROM events
                WHERE event_type IN ({types}) AND day >= {start}
                  AND counterparty_id IS NOT NULL AND counterparty_id <> customer_id
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
    return f"""
        WITH dated AS (
            SELECT {", ".join(names)}, {day} AS day FROM {source_table}
        ),
        cut AS (
            SELECT * FROM dated WHERE day < {as_of_day}
        )
        SELECT *, CASE WHEN due_on IS NULL THEN NULL
                       ELSE greatest(0, day - {due_day}) END AS days_late
        FROM (
            SELECT {", ".join(names)}, day FROM cut
            UNION ALL
            SELECT {", ".join(mirrored)}, day FROM cut
            WHERE event_type = {literal(EventType.TRANSFER.value)}
              AND counterparty_id IS NOT NULL
        ) both_ends"""


def _events_cte(events: str) -> str:
    return f"""
        events AS ({events}),
        logins AS (
            SELECT customer_id, device_id, min(day) AS first_day FROM events
            WHERE ({condition(LOGINS)}) AND device_id IS NOT NULL GROUP BY 1, 2
        ),
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
    aggregates = (
        ", ".join(f"{sql} AS {query.columns[leaf]}" for leaf, sql in query.aggregates.items())
        or "count(*) AS events"
    )
    events = (
        f"SELECT * FROM {prepared_events}"
        if prepared_events is not None
        else events_query(dialect, source_table, as_of_day)
    )
    ctes = [_events_cte(events)]
    ctes.append(f"main AS (SELECT customer_id, {aggregates} FROM events GROUP BY customer_id)")
    joins, coalesced = [], {}
    for index, (sql, columns) in enumerate(query.joined + query.keyed_ctes()):
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
