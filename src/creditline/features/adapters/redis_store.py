"""The Redis online feature store, for production: the same state as in process, shared.

Keys (all under `prefix`):

- `{prefix}:state:{customer_id}`: the customer's folded `CustomerState`, pickled (plain
  lists, dicts, ints and strings only; pickle loads these about three times faster than
  JSON, and the keys live inside our own Redis, never fed from outside);
- `{prefix}:pending:{customer_id}`: a list of the customer's events not yet folded in;
- `{prefix}:device:{device_id}`: hash customer id → day of that customer's first login;
- `{prefix}:flag`: hash customer id → day of the customer's first flag event.

Writing is an append: `apply` pushes each event onto its customer's pending list (one
pipelined round trip per batch), so updates keep up with bulk ingestion. When a pending
list reaches `COMPACT_AT` events, the writer folds it into the state: it reads the state
and the first n pending events under `WATCH` on the state, folds them, and in one
`MULTI` writes the state and trims exactly those n events (appends go to the tail, so
none is lost; a concurrent compaction makes the `WATCH` fail and the fold is retried).

A read is the state plus fewer than `COMPACT_AT` pending events folded in memory (one
round trip), then the devices' hashes and the neighbours' flags (two more): it never
reads the customer's history. The device and flag indexes keep a minimum, which
commutes, so a small Lua script updates them without a transaction.
"""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis

from creditline.features.domain.definitions import LOGINS, TRANSFERS_EITHER_WAY
from creditline.features.domain.events import EventType, FeatureEvent, date_of_day, day_number
from creditline.features.domain.online import (
    CustomerState,
    FeatureVector,
    KeyedDays,
    OnlinePlan,
    events_for_state,
    login_device,
    matches,
)

#: Pending events that trigger a fold into the state; also bounds the fold on a read.
COMPACT_AT = 32
MAX_RETRIES = 20

_KEEP_MINIMUM = """
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if (not old) or tonumber(ARGV[i + 1]) < tonumber(old) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RedisFeatureStore:
    def __init__(
        self, client: redis.Redis, *, prefix: str = "features", plan: OnlinePlan | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.plan = plan or OnlinePlan.of()
        self._keep_minimum = client.register_script(_KEEP_MINIMUM)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "features") -> RedisFeatureStore:
        return cls(redis.Redis.from_url(url), prefix=prefix)

    def _state_key(self, customer_id: str) -> str:
        return f"{self.prefix}:state:{customer_id}"

    def _device_key(self, device_id: str) -> str:
        return f"{self.prefix}:device:{device_id}"

    @property
    def _flag_key(self) -> str:
        return f"{self.prefix}:flag"

    def _pending_key(self, customer_id: str) -> str:
        return f"{self.prefix}:pending:{customer_id}"

    def apply(self, events: Iterable[FeatureEvent]) -> int:
        devices: dict[str, dict[str, int]] = defaultdict(dict)
        flags: dict[str, int] = {}
        pushed: list[str] = []
        with self.client.pipeline(transaction=False) as pipe:
            for event in events_for_state(events):
                pipe.rpush(self._pending_key(event.customer_id), _encode(event))
                pushed.append(event.customer_id)
                self._collect_indexes(event, devices, flags)
            lengths = pipe.execute()
        self._update_indexes(devices, flags)
        due = {c for c, length in zip(pushed, lengths, strict=True) if length >= COMPACT_AT}
        for customer in sorted(due):
            self.compact(customer)
        return len(pushed)

    def _collect_indexes(
        self, event: FeatureEvent, devices: dict[str, dict[str, int]], flags: dict[str, int]
    ) -> None:
        day = event.day
        device = login_device(event)
        if device is not None:
            seen = devices[device]
            seen[event.customer_id] = min(day, seen.get(event.customer_id, day))
        flag = self.plan.flag_source
        if flag is not None and matches(flag, event):
            flags[event.customer_id] = min(day, flags.get(event.customer_id, day))

    def compact(self, customer_id: str) -> int:
        """Fold the customer's pending events into its stored state; returns how many."""
        state_key, pending_key = self._state_key(customer_id), self._pending_key(customer_id)
        for _ in range(MAX_RETRIES):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(state_key)  # type: ignore[no-untyped-call]
                    raw_state = pipe.get(state_key)
                    pending = pipe.lrange(pending_key, 0, -1)
                    state = self._fold(raw_state, pending)
                    pipe.multi()
                    pipe.set(state_key, _dump(state))
                    pipe.ltrim(pending_key, len(pending), -1)
                    pipe.execute()
                    return len(pending)
                except redis.WatchError:
                    continue
        raise RuntimeError(f"gave up after {MAX_RETRIES} conflicting compactions of {customer_id}")

    def _fold(self, raw_state: bytes | str | None, pending: list[bytes | str]) -> CustomerState:
        state = self._load(raw_state)
        for raw in pending:
            self.plan.apply(state, _decode(raw))
        return state

    def _update_indexes(self, devices: dict[str, dict[str, int]], flags: dict[str, int]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for device, seen in devices.items():
                self._keep_minimum(keys=[self._device_key(device)], args=_pairs(seen), client=pipe)
            if flags:
                self._keep_minimum(keys=[self._flag_key], args=_pairs(flags), client=pipe)
            pipe.execute()

    def _load(self, raw: bytes | str | None) -> CustomerState:
        if raw is None:
            return self.plan.new_state()
        data = pickle.loads(raw if isinstance(raw, bytes) else raw.encode())
        return CustomerState.from_data(self.plan, data)

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self._state_key(customer_id))
            pipe.lrange(self._pending_key(customer_id), 0, -1)
            raw_state, pending = pipe.execute()
        state = self._fold(raw_state, pending)
        graph = self._graph_for(state)
        return self.plan.read(customer_id, state, day_number(as_of), graph)

    def _graph_for(self, state: CustomerState) -> _PrefetchedGraph:
        """Fetch, in two round trips, every device hash and flag the read may look at."""
        devices = _keyed(state, self.plan, ("keyed", LOGINS, "device_id"))
        partners = _keyed(state, self.plan, ("keyed", TRANSFERS_EITHER_WAY, "counterparty_id"))
        device_list = list(devices.days_by_key) if devices else []
        by_device: dict[str, dict[str, int]] = {}
        if device_list:
            with self.client.pipeline(transaction=False) as pipe:
                for device in device_list:
                    pipe.hgetall(self._device_key(device))
                for device, raw in zip(device_list, pipe.execute(), strict=True):
                    by_device[device] = {k.decode(): int(v) for k, v in raw.items()}
        candidates = {c for seen in by_device.values() for c in seen}
        candidates |= set(partners.days_by_key) if partners else set()
        flags: dict[str, int] = {}
        if candidates and self.plan.flag_source is not None:
            names = sorted(candidates)
            values = self.client.hmget(self._flag_key, names)
            flags = {n: int(v) for n, v in zip(names, values, strict=True) if v is not None}
        return _PrefetchedGraph(by_device, flags)

    def customers(self) -> list[str]:
        found: set[str] = set()
        for kind in ("state", "pending"):
            marker = f"{self.prefix}:{kind}:"
            for key in self.client.scan_iter(match=f"{marker}*", count=1000):
                found.add(key.decode().removeprefix(marker))
        return sorted(found)

    def clear(self) -> None:
        """Delete every key under this store's prefix (tests and benchmarks)."""
        batch: list[Any] = []
        for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.client.delete(*batch)
                batch = []
        if batch:
            self.client.delete(*batch)


class _PrefetchedGraph:
    def __init__(self, devices: dict[str, dict[str, int]], flags: dict[str, int]) -> None:
        self._devices = devices
        self._flags = flags

    def device_customers(self, device_id: str) -> Mapping[str, int]:
        return self._devices.get(device_id, {})

    def flag_day(self, customer_id: str) -> int | None:
        return self._flags.get(customer_id)


def _keyed(state: CustomerState, plan: OnlinePlan, key: Any) -> KeyedDays | None:
    name = plan.names.get(key)
    series = state.series.get(name) if name else None
    return series if isinstance(series, KeyedDays) else None


def _pairs(values: Mapping[str, int]) -> list[str | int]:
    flat: list[str | int] = []
    for name, day in values.items():
        flat += [name, day]
    return flat


def _dump(state: CustomerState) -> bytes:
    return pickle.dumps(state.to_data(), protocol=5)


def _encode(event: FeatureEvent) -> str:
    """An event as a compact JSON array (the order of `_decode`)."""
    return json.dumps(
        [
            event.event_id,
            event.customer_id,
            event.event_type.value,
            event.occurred_at_micros,
            event.amount_minor,
            event.category,
            event.counterparty_id,
            event.device_id,
            event.is_sim_change,
            event.product_id,
            None if event.due_on is None else day_number(event.due_on),
            event.amount_due_minor,
            event.credit_limit_minor,
        ],
        separators=(",", ":"),
    )


def _decode(raw: bytes | str) -> FeatureEvent:
    (
        event_id,
        customer_id,
        event_type,
        micros,
        amount,
        category,
        counterparty,
        device,
        sim,
        product,
        due_day,
        amount_due,
        limit,
    ) = json.loads(raw)
    return FeatureEvent(
        event_id=event_id,
        customer_id=customer_id,
        event_type=EventType(event_type),
        occurred_at=_EPOCH + timedelta(microseconds=micros),
        amount_minor=amount,
        category=category,
        counterparty_id=counterparty,
        device_id=device,
        is_sim_change=sim,
        product_id=product,
        due_on=None if due_day is None else date_of_day(due_day),
        amount_due_minor=amount_due,
        credit_limit_minor=limit,
    )
