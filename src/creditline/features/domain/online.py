"""Online feature state: per-customer aggregates kept up to date as events arrive.

A customer's state is a handful of day-indexed series, one per (source, column) that some
feature reads; `OnlinePlan` derives the set from the definitions, so the online engine
computes exactly what the batch engines compute. Reading the full feature vector as of a
day never walks the customer's history:

- `SumSeries` keeps per-day counts and totals, so a window's count or sum is two binary
  searches and the sum of a slice of at most 365 days;
- `MaxSeries` looks only at the days inside the window (a window holds at most 365 days);
- `KeyedDays` keeps, per key (category, device, product, counterparty), the sorted days it
  occurred on: a binary search per key answers "seen in the window";
- `LatestSeries` keeps events ordered by (occurred_at, event_id) and binary-searches D.

The graph features also need other customers' facts (who else used a device, who has
defaulted); the store hands them in through `GraphView`. State is plain data and
round-trips through `to_data`/`from_data`, which the Redis adapter stores (pickled).

**State is bounded in time.** No window is longer than `MAX_WINDOW_DAYS` (365), so a
customer's state drops what lies more than `RETAIN_DAYS` (730) before the newest event
folded in (every `PRUNE_EVERY_DAYS`, 30, as that day advances): below that horizon it
keeps only what the all-time features read, i.e. the first and the last day of each
count series, the first sighting of each key whose first sighting a feature reads
(devices, credit products) and the last latest-value. Reads as of D are exact as long as
D − 365 is not before the horizon, i.e. for every D ≥ newest event day − 365: decisions
(as of today) and any look back within a year. Reading further in the past from a
pruned state is not supported (the batch engines answer that from the archive). What is
left grows with the number of distinct keys (devices, products, categories), not with
time.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from creditline.features.domain.columns import EventColumns
from creditline.features.domain.definitions import (
    FEATURES,
    LOGINS,
    MAX_WINDOW_DAYS,
    TRANSFERS_EITHER_WAY,
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
    Spec,
    Sum,
    leaves,
)
from creditline.features.domain.events import (
    CHINA_OFFSET_SECONDS,
    MICROS_PER_SECOND,
    SECONDS_PER_DAY,
    EventType,
    FeatureEvent,
    day_number,
)

#: A customer's state keeps every day within this many days before its newest event,
#: so reads as of any day up to a year before that event stay exact.
RETAIN_DAYS = 2 * MAX_WINDOW_DAYS
#: How far the newest day must advance before the state is pruned again.
PRUNE_EVERY_DAYS = 30

_DAY_MICROS = SECONDS_PER_DAY * MICROS_PER_SECOND
_OFFSET_MICROS = CHINA_OFFSET_SECONDS * MICROS_PER_SECOND

FeatureValue = int | float | None
FeatureVector = dict[str, FeatureValue]


def matches(source: Source, event: FeatureEvent) -> bool:
    """Whether `event` is one of the events `source` selects."""
    if source.event_types and event.event_type not in source.event_types:
        return False
    return _meets(source, event, event.days_late)


def _meets(source: Source, event: FeatureEvent, days_late: int | None) -> bool:
    """Whether `event` (whose days late are given) meets every `where` of `source`."""
    for condition in source.where:
        column = condition.column
        value = days_late if column == "days_late" else getattr(event, column)
        if value is None:
            return False
        if condition.op is Op.EQ and value != condition.value:
            return False
        if condition.op is Op.AT_LEAST and not (
            isinstance(value, int) and isinstance(condition.value, int) and value >= condition.value
        ):
            return False
    return True


def select_rows(
    source: Source, columns: EventColumns, by_type: Mapping[EventType, list[int]]
) -> list[int]:
    """The rows (of those grouped in `by_type`) that `source` selects: `matches` over a
    column, with the same rules (a missing value never meets a condition)."""
    if source.event_types:
        groups = [by_type[t] for t in source.event_types if t in by_type]
    else:
        groups = list(by_type.values())
    if not groups:
        return []
    rows = groups[0] if len(groups) == 1 else [row for group in groups for row in group]
    for condition in source.where:
        values = columns.column(condition.column)
        wanted = condition.value
        if condition.op is Op.EQ:
            rows = [r for r in rows if (v := values[r]) is not None and v == wanted]
        elif isinstance(wanted, int):
            rows = [
                r
                for r in rows
                if (v := values[r]) is not None and isinstance(v, int) and v >= wanted
            ]
        else:
            rows = []
    return rows


def _rows_by_type(types: list[EventType], rows: Iterable[int]) -> dict[EventType, list[int]]:
    """`rows` grouped by event type (each group in the order given)."""
    by_type: dict[EventType, list[int]] = {}
    for row in rows:
        group = by_type.get(types[row])
        if group is None:
            by_type[types[row]] = [row]
        else:
            group.append(row)
    return by_type


class SumSeries:
    """Per-day event counts and column totals, in day order.

    A window's count or total is two binary searches and the sum of a slice (a window
    spans at most 365 days, summed in C). Keeping the per-day figures rather than prefix
    sums makes every add O(log n) whatever its day: an event that arrives late (or a
    batch that is not in time order) only inserts or bumps one day."""

    __slots__ = ("counts", "days", "totals")

    def __init__(self) -> None:
        self.days: list[int] = []
        self.counts: list[int] = []
        self.totals: list[int] = []

    def add(self, day: int, value: int) -> None:
        days = self.days
        if not days or day > days[-1]:
            # The common case: events arrive in time order, so only the tail changes.
            days.append(day)
            self.counts.append(1)
            self.totals.append(value)
            return
        index = len(days) - 1 if day == days[-1] else bisect_left(days, day)
        if days[index] == day:
            self.counts[index] += 1
            self.totals[index] += value
        else:
            days.insert(index, day)
            self.counts.insert(index, 1)
            self.totals.insert(index, value)

    def count(self, start: int, end: int) -> int:
        days = self.days
        return sum(self.counts[bisect_left(days, start) : bisect_left(days, end)])

    def total(self, start: int, end: int) -> int:
        days = self.days
        return sum(self.totals[bisect_left(days, start) : bisect_left(days, end)])

    def first_before(self, end: int) -> int | None:
        return self.days[0] if self.days and self.days[0] < end else None

    def last_before(self, end: int) -> int | None:
        high = bisect_left(self.days, end)
        return self.days[high - 1] if high else None

    def prune(self, horizon: int) -> None:
        """Forget the days before `horizon` except the first and the last of them."""
        k = bisect_left(self.days, horizon)
        if k <= 2:
            return
        del self.days[1 : k - 1], self.counts[1 : k - 1], self.totals[1 : k - 1]

    def to_data(self) -> list[list[int]]:
        return [self.days, self.counts, self.totals]

    @classmethod
    def from_data(cls, data: list[list[int]]) -> SumSeries:
        series = cls()
        series.days, series.counts, series.totals = data
        return series


class MaxSeries:
    """Per-day maxima of a column; a window's maximum looks only at days inside it."""

    __slots__ = ("days", "maxima")

    def __init__(self) -> None:
        self.days: list[int] = []
        self.maxima: list[int] = []

    def add(self, day: int, value: int) -> None:
        days = self.days
        if not days or day > days[-1]:
            days.append(day)
            self.maxima.append(value)
            return
        index = bisect_left(days, day)
        if days[index] == day:
            self.maxima[index] = max(self.maxima[index], value)
            return
        self.days.insert(index, day)
        self.maxima.insert(index, value)

    def maximum(self, start: int, end: int) -> int | None:
        low, high = bisect_left(self.days, start), bisect_left(self.days, end)
        return max(self.maxima[low:high]) if high > low else None

    def prune(self, horizon: int) -> None:
        """Forget the days before `horizon` (maxima are only read over windows)."""
        k = bisect_left(self.days, horizon)
        if k:
            del self.days[:k], self.maxima[:k]

    def to_data(self) -> list[list[int]]:
        return [self.days, self.maxima]

    @classmethod
    def from_data(cls, data: list[list[int]]) -> MaxSeries:
        series = cls()
        series.days, series.maxima = data
        return series


class KeyedDays:
    """For each key, the sorted distinct days on which it occurred."""

    __slots__ = ("days_by_key",)

    def __init__(self) -> None:
        self.days_by_key: dict[str, list[int]] = {}

    def add(self, day: int, key: str) -> None:
        days = self.days_by_key.get(key)
        if not days:
            self.days_by_key[key] = [day]
        elif day > days[-1]:
            days.append(day)
        elif day < days[-1]:
            index = bisect_left(days, day)
            if days[index] != day:
                days.insert(index, day)

    def keys_in(self, start: int, end: int) -> list[str]:
        found = []
        for key, days in self.days_by_key.items():
            index = bisect_left(days, start)
            if index < len(days) and days[index] < end:
                found.append(key)
        return found

    def first_days_before(self, end: int) -> dict[str, int]:
        return {key: days[0] for key, days in self.days_by_key.items() if days[0] < end}

    def prune(self, horizon: int, *, keep_first: bool) -> None:
        """Forget the days before `horizon`; with `keep_first`, keep each key's first day."""
        for key in list(self.days_by_key):
            days = self.days_by_key[key]
            k = bisect_left(days, horizon)
            if keep_first and k > 1:
                del days[1:k]
            elif not keep_first and k:
                del days[:k]
                if not days:
                    del self.days_by_key[key]

    def to_data(self) -> dict[str, list[int]]:
        return self.days_by_key

    @classmethod
    def from_data(cls, data: dict[str, list[int]]) -> KeyedDays:
        series = cls()
        series.days_by_key = data
        return series


class LatestSeries:
    """Values ordered by (occurred_at in microseconds, event_id)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[int, str, int]] = []

    def add(self, occurred_at_micros: int, event_id: str, value: int) -> None:
        entries, entry = self.entries, (occurred_at_micros, event_id, value)
        if not entries or entry > entries[-1]:
            entries.append(entry)
        else:
            insort(entries, entry)

    def latest_before_day(self, end: int) -> int | None:
        # Day `end` starts at midnight China time: end · 86 400 s − 8 h in UTC.
        cutoff = (end * SECONDS_PER_DAY - CHINA_OFFSET_SECONDS) * MICROS_PER_SECOND
        index = bisect_left(self.entries, (cutoff,))
        return self.entries[index - 1][2] if index else None

    def prune(self, horizon: int) -> None:
        """Forget the values before day `horizon` except the last of them."""
        cutoff = (horizon * SECONDS_PER_DAY - CHINA_OFFSET_SECONDS) * MICROS_PER_SECOND
        k = bisect_left(self.entries, (cutoff,))
        if k > 1:
            del self.entries[: k - 1]

    def to_data(self) -> list[tuple[int, str, int]]:
        return self.entries

    @classmethod
    def from_data(cls, data: list[Any]) -> LatestSeries:
        series = cls()
        # JSON gives lists, pickle gives the tuples back; both become tuples again.
        series.entries = [(int(m), str(e), int(v)) for m, e, v in data]
        return series


Series = SumSeries | MaxSeries | KeyedDays | LatestSeries
SeriesKey = tuple[str, Source, str | None]  # (kind, source, column)
SeriesKind = type[SumSeries] | type[MaxSeries] | type[KeyedDays] | type[LatestSeries]
_KINDS: dict[str, SeriesKind] = {
    "sum": SumSeries,
    "max": MaxSeries,
    "keyed": KeyedDays,
    "latest": LatestSeries,
}


def _series_keys(leaf: Leaf) -> tuple[SeriesKey, ...]:
    match leaf:
        case Count() | DaysSinceFirst() | DaysSinceLast() | ActivePeriods():
            return (("sum", leaf.source, None),)
        case Sum():
            return (("sum", leaf.source, leaf.column),)
        case Max():
            return (("max", leaf.source, leaf.column),)
        case Distinct() | NewKeys() | DaysSinceNewKey():
            return (("keyed", leaf.source, leaf.column),)
        case Latest():
            return (("latest", leaf.source, leaf.column),)
        case SharedDeviceCustomers():
            return (("keyed", LOGINS, "device_id"),)
        case NeighbourShare():
            return (
                ("keyed", LOGINS, "device_id"),
                ("keyed", TRANSFERS_EITHER_WAY, "counterparty_id"),
            )
    raise TypeError(f"unknown leaf {leaf!r}")  # pragma: no cover


def _name(key: SeriesKey) -> str:
    kind, source, column = key
    return f"{kind}:{source.key}:{column or ''}"


class GraphView(Protocol):
    """Facts about other customers that the graph features need."""

    def device_customers(self, device_id: str) -> Mapping[str, int]:
        """customer id → day of that customer's first login on the device."""
        ...

    def flag_day(self, customer_id: str) -> int | None:
        """Day of the customer's first event of the plan's flag source, or None."""
        ...


LeafReader = Callable[["_Reader"], FeatureValue]
_Target = tuple[str, Source, str | None, str]  # (series name, source, column, kind)


@dataclass(slots=True)
class _Cuts:
    """Where a batch's fold is cut by prunes: `prunes[s]` run after segment s, whose rows
    are those held in no earlier list; `held[s]` are the rows of segment s + 1; the final
    horizon of each walked state is set last."""

    prunes: list[list[tuple[CustomerState, int]]] = field(default_factory=list)
    held: list[list[int]] = field(default_factory=list)
    horizons: list[tuple[CustomerState, int | None]] = field(default_factory=list)


@dataclass(frozen=True)
class OnlinePlan:
    """What state the definitions need and how to read it, derived once from them."""

    features: tuple[FeatureDefinition, ...]
    series: tuple[SeriesKey, ...]
    flag_source: Source | None
    names: dict[SeriesKey, str]
    targets_by_type: dict[EventType, tuple[_Target, ...]]
    readers: tuple[tuple[str, Callable[[_Reader], FeatureValue]], ...]
    #: Keyed series whose first sighting of each key some feature reads (kept when pruning).
    keeps_first: frozenset[str] = frozenset()
    #: Days kept before the newest event (None: never prune).
    retain_days: int | None = RETAIN_DAYS

    @classmethod
    def of(
        cls,
        features: tuple[FeatureDefinition, ...] = FEATURES,
        *,
        retain_days: int | None = RETAIN_DAYS,
    ) -> OnlinePlan:
        if retain_days is not None and retain_days < MAX_WINDOW_DAYS:
            raise ValueError(f"retain_days must cover the longest window, {MAX_WINDOW_DAYS}")
        keys: dict[SeriesKey, None] = {}
        flags = set()
        first_sightings: list[SeriesKey] = []
        for feature in features:
            for leaf in leaves(feature.spec):
                keys.update(dict.fromkeys(_series_keys(leaf)))
                if isinstance(leaf, NeighbourShare):
                    flags.add(leaf.flag_source)
                if isinstance(leaf, NewKeys | DaysSinceNewKey | SharedDeviceCustomers):
                    first_sightings.append(_series_keys(leaf)[0])
                if isinstance(leaf, NeighbourShare):
                    first_sightings.append(_series_keys(leaf)[0])
        if len(flags) > 1:
            raise ValueError("the online engine supports one neighbour flag source")
        # A sum series counts every row of its source whatever its column holds, so a
        # count of that source reads the sum's counts instead of a series of its own.
        totals = {key[1]: key for key in keys if key[0] == "sum" and key[2] is not None}
        counted = {
            key: totals[key[1]]
            for key in keys
            if key[0] == "sum" and key[2] is None and key[1] in totals
        }
        series = tuple(key for key in keys if key not in counted)
        names = {k: _name(k) for k in series}
        names.update({key: names[sum_key] for key, sum_key in counted.items()})
        # Index the series by event type, so folding an event in looks only at the series
        # that can select it.
        targets = {
            event_type: tuple(
                (names[key], key[1], key[2], key[0])
                for key in series
                if not key[1].event_types or event_type in key[1].event_types
            )
            for event_type in EventType
        }
        readers = tuple((f.name, _compile_spec(f.spec, names)) for f in features)
        keeps_first = frozenset(names[k] for k in first_sightings)
        flag = next(iter(flags), None)
        return cls(features, series, flag, names, targets, readers, keeps_first, retain_days)

    def new_state(self) -> CustomerState:
        return CustomerState(SeriesMap(self.kinds))

    @cached_property
    def kinds(self) -> dict[str, SeriesKind]:
        """The kind of each series, by name."""
        return {self.names[key]: _KINDS[key[0]] for key in self.series}

    @cached_property
    def empty_series(self) -> dict[str, Series]:
        """An empty series of each name, read where a state has none (never added to)."""
        return {name: kind() for name, kind in self.kinds.items()}

    def apply(self, state: CustomerState, event: FeatureEvent) -> None:
        """Fold one event of this customer into its state."""
        # The instant, day and days late once per event (as `FeatureEvent` defines them).
        micros = event.occurred_at_micros
        day = (micros + _OFFSET_MICROS) // _DAY_MICROS
        days_late = None if event.due_on is None else max(0, day - day_number(event.due_on))
        for name, source, column, kind in self.targets_by_type[event.event_type]:
            if source.where and not _meets(source, event, days_late):
                continue
            if column is None:
                value = None
            else:
                value = days_late if column == "days_late" else getattr(event, column)
            series: Any
            if kind == "sum":
                series = state.series[name]  # made on its first add
                series.add(day, int(value or 0))
                continue
            if value is None:
                continue  # a missing value is not a maximum, a key or a latest value
            series = state.series[name]
            if kind == "max":
                series.add(day, int(value))
            elif kind == "keyed":
                series.add(day, str(value))
            else:
                series.add(micros, event.event_id, int(value))
        state.first_day = day if state.first_day is None else min(state.first_day, day)
        if state.newest_day is None or day > state.newest_day:
            state.newest_day = day
            if self.retain_days is not None:
                horizon = day - self.retain_days
                if state.horizon is None or horizon >= state.horizon + PRUNE_EVERY_DAYS:
                    self.prune(state, horizon)

    def apply_columns(
        self, columns: EventColumns, state_of: Callable[[str], CustomerState]
    ) -> dict[str, CustomerState]:
        """Fold a batch of rows (mirrors included) into the states `state_of` gives; returns
        the states it touched, by customer.

        The result is exactly that of `apply` on each row in `columns.order`: adding to a
        series commutes (sums, maxima, sets, sorted values), except across a prune. So the
        rows are grouped by customer (in order) and only a customer whose newest day
        advances far enough for `apply` to prune is walked row by row, to find where; a
        prune that would drop nothing (nothing folded yet lies before its horizon) only
        moves the horizon, while a real one cuts that customer's rows into segments there.
        The rows of every segment are then added series by series, with each source's
        filter run over the column, and each state is pruned between its segments.
        """
        if not len(columns):
            return {}
        customers, days = columns.customer_id, columns.day
        rows_of: dict[str, list[int]] = {}
        for row in columns.order:
            customer = customers[row]
            own = rows_of.get(customer)
            if own is None:
                rows_of[customer] = [row]
            else:
                own.append(row)
        states: dict[str, CustomerState] = {}
        cuts = _Cuts()
        retain = self.retain_days
        for customer, rows in rows_of.items():
            state = states[customer] = state_of(customer)
            if len(rows) == 1:
                low = high = days[rows[0]]
            else:
                own = [days[row] for row in rows]
                low, high = min(own), max(own)
            first, newest, horizon = state.first_day, state.newest_day, state.horizon
            if first is None or low < first:
                state.first_day = low
            if newest is not None and high <= newest:
                continue
            state.newest_day = high
            if retain is None or (
                horizon is not None and high - retain < horizon + PRUNE_EVERY_DAYS
            ):
                continue  # no prune is due within these rows
            self._walk(state, rows, days, (first, newest), cuts)
        # Each row's series, looked up once rather than once per series it feeds.
        series_of = [states[customer].series for customer in customers]
        if not cuts.prunes:
            self._add_rows(columns, range(len(columns)), series_of)
            return states
        held = {row for rows in cuts.held for row in rows}
        self._add_rows(columns, [r for r in range(len(columns)) if r not in held], series_of)
        for pruned, rows in zip(cuts.prunes, cuts.held, strict=True):
            for state, horizon in pruned:
                self.prune(state, horizon)
            self._add_rows(columns, rows, series_of)
        for state, horizon in cuts.horizons:
            state.horizon = horizon
        return states

    def _walk(
        self,
        state: CustomerState,
        rows: list[int],
        days: list[int],
        before: tuple[int | None, int | None],
        cuts: _Cuts,
    ) -> None:
        """Walk the state's `rows` in order (`days`: each row's day), from its first and
        newest day `before` them, as `apply` would: record in `cuts` where it prunes; a
        prune that would drop nothing (nothing folded lies before its horizon) only moves
        the horizon."""
        retain = self.retain_days
        assert retain is not None  # only a plan that prunes walks
        (first, newest), horizon = before, state.horizon
        segment = 0
        for row in rows:
            day = days[row]
            if segment:
                cuts.held[segment - 1].append(row)
            if first is None or day < first:
                first = day
            if newest is None or day > newest:
                newest = day
                cut = day - retain
                if horizon is None or cut >= horizon + PRUNE_EVERY_DAYS:
                    horizon = cut
                    if cut > first:
                        if segment == len(cuts.prunes):
                            cuts.prunes.append([])
                            cuts.held.append([])
                        cuts.prunes[segment].append((state, cut))
                        segment += 1
        if segment:
            # Set once its prunes have run (each sets the horizon it pruned at).
            cuts.horizons.append((state, horizon))
        else:
            state.horizon = horizon

    def _add_rows(
        self, columns: EventColumns, rows: Iterable[int], series_of: Sequence[dict[str, Any]]
    ) -> None:
        """Add `rows` to their customers' series (no pruning: the caller cuts at prunes).

        `series_of[row]` is the series of the row's customer (typed `Any`: each series kind
        has its own `add`)."""
        by_type = _rows_by_type(columns.event_type, rows)
        days = columns.day
        for name, source, column, kind in self._targets_of(frozenset(by_type)):
            selected = select_rows(source, columns, by_type)
            if not selected:
                continue
            if kind == "sum":
                # In day order, most adds extend the series' tail (its cheap case).
                selected = sorted(selected, key=days.__getitem__)
                if column is None:
                    for row in selected:
                        series_of[row][name].add(days[row], 0)
                    continue
                values = columns.column(column)
                for row in selected:
                    series_of[row][name].add(days[row], int(values[row] or 0))
                continue
            assert column is not None  # only sums count rows without a column
            values = columns.column(column)
            if kind == "max":
                for row in selected:
                    value = values[row]
                    if value is not None:
                        series_of[row][name].add(days[row], int(value))
            elif kind == "keyed":
                for row in selected:
                    value = values[row]
                    if value is not None:
                        series_of[row][name].add(days[row], str(value))
            else:
                micros, ids = columns.micros, columns.event_id
                for row in selected:
                    value = values[row]
                    if value is not None:
                        series_of[row][name].add(micros[row], ids[row], int(value))

    def index_columns(
        self, columns: EventColumns
    ) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        """The graph facts of a batch: device → customer → day of its first login there,
        and customer → day of its first event of the flag source (minima commute)."""
        types, customers, days = columns.event_type, columns.customer_id, columns.day
        devices: dict[str, dict[str, int]] = {}
        device_ids = columns.values["device_id"]
        by_type = _rows_by_type(types, range(len(columns)))
        for row in by_type.get(EventType.DEVICE_LOGIN, ()):
            device = device_ids[row]
            if device:
                customer, day = customers[row], days[row]
                seen = devices.get(device)
                if seen is None:
                    devices[device] = {customer: day}
                    continue
                old = seen.get(customer)
                if old is None or day < old:
                    seen[customer] = day
        flags: dict[str, int] = {}
        if self.flag_source is not None:
            for row in select_rows(self.flag_source, columns, by_type):
                customer, day = customers[row], days[row]
                old = flags.get(customer)
                if old is None or day < old:
                    flags[customer] = day
        return devices, flags

    def _targets_of(self, types: frozenset[EventType]) -> tuple[_Target, ...]:
        """The `series_targets` that can select a row of one of these types (memoised:
        a batch of a few types skips the others' series altogether)."""
        found = self._targets_by_types.get(types)
        if found is None:
            found = self._targets_by_types[types] = tuple(
                target
                for target in self.series_targets
                if not target[1].event_types or not types.isdisjoint(target[1].event_types)
            )
        return found

    @cached_property
    def _targets_by_types(self) -> dict[frozenset[EventType], tuple[_Target, ...]]:
        return {}

    @cached_property
    def series_targets(self) -> tuple[tuple[str, Source, str | None, str], ...]:
        """(name, source, column, kind) of every series, for folding columns."""
        return tuple((self.names[key], key[1], key[2], key[0]) for key in self.series)

    def prune(self, state: CustomerState, horizon: int) -> None:
        """Drop what no read as of a day ≥ horizon + 365 needs (see the module docstring)."""
        for name, series in state.series.items():
            if isinstance(series, KeyedDays):
                series.prune(horizon, keep_first=name in self.keeps_first)
            else:
                series.prune(horizon)
        state.horizon = horizon

    def read(
        self, customer_id: str, state: CustomerState, as_of_day: int, graph: GraphView
    ) -> FeatureVector:
        """The full feature vector as of `as_of_day` (events before that day only)."""
        reader = _Reader(self, customer_id, state, as_of_day, graph)
        return {name: read(reader) for name, read in self.readers}


class SeriesMap(dict[str, Series]):
    """A customer's series by name. A series is made the first time a row is added to it
    (looking up a missing name makes it), so a state holds only the series its events
    fed: fewer objects to keep, to collect and to store. Reads look missing series up in
    `OnlinePlan.empty_series` instead, and never make one."""

    __slots__ = ("kinds",)

    def __init__(self, kinds: Mapping[str, SeriesKind], *args: Any) -> None:
        super().__init__(*args)
        self.kinds = kinds

    def __missing__(self, name: str) -> Series:
        series = self[name] = self.kinds[name]()
        return series


@dataclass(slots=True)
class CustomerState:
    series: SeriesMap
    first_day: int | None = None
    #: The newest event day folded in, and the day before which the state was pruned.
    newest_day: int | None = None
    horizon: int | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day,
            "newest_day": self.newest_day,
            "horizon": self.horizon,
            "series": {name: s.to_data() for name, s in self.series.items()},
        }

    @classmethod
    def from_data(cls, plan: OnlinePlan, data: Mapping[str, Any]) -> CustomerState:
        kinds = plan.kinds
        series = SeriesMap(kinds)
        for name, stored in data["series"].items():
            kind = kinds.get(name)
            if kind is not None:  # a series the plan no longer reads is dropped
                series[name] = kind.from_data(stored)
        return cls(series, data.get("first_day"), data.get("newest_day"), data.get("horizon"))


class _Reader:
    """One read: the customer's state, the as-of day and the graph, shared by all leaves."""

    __slots__ = ("_device_neighbours", "customer_id", "end", "graph", "plan", "series")

    def __init__(
        self,
        plan: OnlinePlan,
        customer_id: str,
        state: CustomerState,
        as_of_day: int,
        graph: GraphView,
    ) -> None:
        self.plan = plan
        self.customer_id = customer_id
        # Every series of the plan: the state's, else an empty one (never added to).
        self.series: dict[str, Any] = {**plan.empty_series, **state.series}
        self.end = as_of_day
        self.graph = graph
        self._device_neighbours: set[str] | None = None

    def device_neighbours(self, logins: str) -> set[str]:
        if self._device_neighbours is None:
            found: set[str] = set()
            for device in self.series[logins].first_days_before(self.end):
                for customer, day in self.graph.device_customers(device).items():
                    if day < self.end and customer != self.customer_id:
                        found.add(customer)
            self._device_neighbours = found
        return self._device_neighbours


def _compile_spec(spec: Spec, names: Mapping[SeriesKey, str]) -> LeafReader:
    if not isinstance(spec, Quotient):
        return _compile_leaf(spec, names)
    numerator = _compile_leaf(spec.numerator, names)
    denominator = _compile_leaf(spec.denominator, names)

    def quotient(reader: _Reader) -> FeatureValue:
        top, bottom = numerator(reader), denominator(reader)
        if top is None or bottom is None or bottom == 0:
            return None
        return float(top) / float(bottom)

    return quotient


def _compile_leaf(leaf: Leaf, names: Mapping[SeriesKey, str]) -> LeafReader:
    """A function of a read that computes `leaf`, with its series names resolved now."""
    name = names[_series_keys(leaf)[0]]
    match leaf:
        case Count(window_days=w):
            return lambda r: int(r.series[name].count(r.end - w, r.end))
        case Sum(window_days=w):
            return lambda r: int(r.series[name].total(r.end - w, r.end))
        case Max(window_days=w):
            return lambda r: _optional_int(r.series[name].maximum(r.end - w, r.end))
        case Distinct(window_days=w):
            return lambda r: len(r.series[name].keys_in(r.end - w, r.end))
        case NewKeys(window_days=w):
            return lambda r: sum(
                1 for day in r.series[name].first_days_before(r.end).values() if day >= r.end - w
            )
        case DaysSinceNewKey():
            return lambda r: _days_since(r.end, r.series[name].first_days_before(r.end).values())
        case DaysSinceFirst():
            return lambda r: _days_since(r.end, [r.series[name].first_before(r.end)])
        case DaysSinceLast():
            return lambda r: _days_since(r.end, [r.series[name].last_before(r.end)])
        case Latest():
            return lambda r: _optional_int(r.series[name].latest_before_day(r.end))
        case ActivePeriods(period_days=days, periods=periods):
            return lambda r: _active_periods(r.series[name], r.end, days, periods)
        case SharedDeviceCustomers():
            return lambda r: len(r.device_neighbours(name))
        case NeighbourShare(transfer_window_days=w):
            partners = names[_series_keys(leaf)[1]]
            return lambda r: _neighbour_share(r, name, partners, w)
    raise TypeError(f"unknown leaf {leaf!r}")  # pragma: no cover


def _days_since(end: int, days: Iterable[int | None]) -> int | None:
    known = [day for day in days if day is not None]
    return end - max(known) if known else None


def _active_periods(series: SumSeries, end: int, period_days: int, periods: int) -> float:
    active = 0
    for period in range(periods):
        high = end - period * period_days
        active += series.count(high - period_days, high) > 0
    return float(active) / float(periods)


def _neighbour_share(reader: _Reader, logins: str, partners: str, window: int) -> float | None:
    end = reader.end
    transfer_partners = reader.series[partners].keys_in(end - window, end)
    neighbours = reader.device_neighbours(logins) | {
        p for p in transfer_partners if p != reader.customer_id
    }
    if not neighbours:
        return None
    flagged = 0
    for neighbour in neighbours:
        day = reader.graph.flag_day(neighbour)
        flagged += day is not None and day < end
    return float(flagged) / float(len(neighbours))


def _optional_int(value: int | None) -> int | None:
    return None if value is None else int(value)


def events_for_state(events: Iterable[FeatureEvent]) -> Iterable[FeatureEvent]:
    """Each event, followed by the mirror of a transfer (which belongs to the receiver)."""
    for event in events:
        yield event
        mirror = event.mirrored()
        if mirror is not None:
            yield mirror


def login_device(event: FeatureEvent) -> str | None:
    """The device of a login event (for the store's device index), else None."""
    if event.event_type is EventType.DEVICE_LOGIN and event.device_id:
        return event.device_id
    return None
