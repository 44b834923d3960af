"""The Redis online feature store, for production: the same state as in process, shared.

Keys (all under `prefix`, by default `KEY_PREFIX`, which names the layout's version: a
store with another layout never reads these keys, it starts empty and is fed again):

- `{prefix}:state:{customer_id}`: the customer's folded `CustomerState`, pickled (plain
  lists, dicts, ints and strings only; pickle loads these about three times faster than
  JSON, and the keys live inside our own Redis, never fed from outside);
- `{prefix}:version:{customer_id}`: how many times the state was rewritten (a counter
  that makes the rewrite a compare-and-set);
- `{prefix}:pending:{customer_id}`: a list of the customer's events not yet folded in;
- `{prefix}:devices:{customer_id}`, `{prefix}:partners:{customer_id}`: sets of the devices
  the customer logged in on and of its transfer counterparties (so a read can fetch the
  graph facts it needs inside Redis, without first decoding the state);
- `{prefix}:device:{device_id}`: hash customer id → day of that customer's first login;
- `{prefix}:flag`: hash customer id → day of the customer's first flag event.

Writing is an append, one pipelined round trip per batch: `apply` groups the batch by
customer and sends one `RPUSH` of all its events per customer, one `SADD` per set and one
script call for all the index minima (which commute, so they need no transaction). When
pending lists reach `COMPACT_AT` events, the writer folds them into the states, all due
customers together: one round trip reads their states, versions and pending lists (in
`MULTI`, a consistent snapshot), the events are folded in Python, and one round trip of a
compare-and-set script writes each state, bumps its version and trims exactly the n
folded events (appends go to the tail, so none is lost). A customer whose version moved
meanwhile (another writer compacted it) is retried.

A read is one round trip: a script returns, atomically, the state, the fewer than
`COMPACT_AT` pending events (folded in memory), every device hash of the customer's
devices and the flags of all its device neighbours and transfer partners. It never reads
the customer's history. (The script reads device hashes it did not declare as keys, so
the store wants a single Redis, not a cluster; a cluster would need hash tags.)
"""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis

from creditline.features.domain.definitions import TRANSFER_TYPES
from creditline.features.domain.events import EventType, FeatureEvent, date_of_day, day_number
from creditline.features.domain.online import (
    CustomerState,
    FeatureVector,
    OnlinePlan,
    events_for_state,
    login_device,
    matches,
)

#: Pending events that trigger a fold into the state; also bounds the fold on a read,
#: which costs ~30 µs of client CPU per pending event (16 rather than 32 halves that for
#: ~15% more write CPU).
COMPACT_AT = 16
MAX_RETRIES = 20

# KEYS: hashes to update; ARGV: for each key, the number of pairs, then field, day pairs.
_KEEP_MINIMUM = """
local a = 1
for k = 1, #KEYS do
  local pairs = tonumber(ARGV[a])
  a = a + 1
  for i = 1, pairs do
    local old = redis.call('HGET', KEYS[k], ARGV[a])
    if (not old) or tonumber(ARGV[a + 1]) < tonumber(old) then
      redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
    end
    a = a + 2
  end
end
return 0
"""

# KEYS: state, version, pending; ARGV: the version read, the new state, events folded.
_COMPARE_AND_SET = """
local version = redis.call('GET', KEYS[2]) or ''
if version ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('LTRIM', KEYS[3], tonumber(ARGV[3]), -1)
return 1
"""

# KEYS: state, pending, devices, partners, flag; ARGV: the device-hash key prefix.
# Returns {state or false, pending events, {device, {customer, day, ...}}..., flags}.
_READ = """
local state = redis.call('GET', KEYS[1])
local pending = redis.call('LRANGE', KEYS[2], 0, -1)
local devices = {}
local candidates = {}
local seen = {}
for _, device in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local flat = redis.call('HGETALL', ARGV[1] .. device)
  devices[#devices + 1] = {device, flat}
  for i = 1, #flat, 2 do
    if not seen[flat[i]] then seen[flat[i]] = true; candidates[#candidates + 1] = flat[i] end
  end
end
for _, partner in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if not seen[partner] then seen[partner] = true; candidates[#candidates + 1] = partner end
end
local flags = {}
for first = 1, #candidates, 1000 do
  local last = math.min(first + 999, #candidates)
  local values = redis.call('HMGET', KEYS[5], unpack(candidates, first, last))
  for i = first, last do
    local value = values[i - first + 1]
    if value then flags[#flags + 1] = candidates[i]; flags[#flags + 1] = value end
  end
end
return {state, pending, devices, flags}
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# The version of the key layout below; bump it whenever the layout changes.
KEY_PREFIX = "features:v2"


class RedisFeatureStore:
    def __init__(
        self, client: redis.Redis, *, prefix: str = KEY_PREFIX, plan: OnlinePlan | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.plan = plan or OnlinePlan.of()
        self._keep_minimum = client.register_script(_KEEP_MINIMUM)
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)
        self._read = client.register_script(_READ)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = KEY_PREFIX) -> RedisFeatureStore:
        return cls(redis.Redis.from_url(url), prefix=prefix)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    @property
    def _flag_key(self) -> str:
        return f"{self.prefix}:flag"

    def apply(self, events: Iterable[FeatureEvent]) -> int:
        pushed: dict[str, list[str]] = defaultdict(list)
        devices: dict[str, dict[str, int]] = defaultdict(dict)
        partners: dict[str, set[str]] = defaultdict(set)
        flags: dict[str, int] = {}
        for event in events_for_state(events):
            pushed[event.customer_id].append(_encode(event))
            self._collect_indexes(event, devices, partners, flags)
        if not pushed:
            return 0
        with self.client.pipeline(transaction=False) as pipe:
            for customer, encoded in pushed.items():
                pipe.rpush(self._key("pending", customer), *encoded)
            for customer, seen in partners.items():
                pipe.sadd(self._key("partners", customer), *seen)
            by_customer: dict[str, set[str]] = defaultdict(set)
            for device, customers in devices.items():
                for customer in customers:
                    by_customer[customer].add(device)
            for customer, used in by_customer.items():
                pipe.sadd(self._key("devices", customer), *used)
            self._queue_minima(pipe, devices, flags)
            lengths = pipe.execute()[: len(pushed)]
        due = [c for c, length in zip(pushed, lengths, strict=True) if length >= COMPACT_AT]
        if due:
            self.compact_many(sorted(due))
        return sum(len(encoded) for encoded in pushed.values())

    def _collect_indexes(
        self,
        event: FeatureEvent,
        devices: dict[str, dict[str, int]],
        partners: dict[str, set[str]],
        flags: dict[str, int],
    ) -> None:
        device = login_device(event)
        if device is not None:
            day = event.day
            seen = devices[device]
            seen[event.customer_id] = min(day, seen.get(event.customer_id, day))
        if event.event_type in TRANSFER_TYPES and event.counterparty_id:
            partners[event.customer_id].add(event.counterparty_id)
        flag = self.plan.flag_source
        if flag is not None and matches(flag, event):
            day = event.day
            flags[event.customer_id] = min(day, flags.get(event.customer_id, day))

    def _queue_minima(
        self, pipe: Any, devices: dict[str, dict[str, int]], flags: dict[str, int]
    ) -> None:
        keys: list[str] = []
        args: list[str | int] = []
        for device, seen in devices.items():
            keys.append(self._key("device", device))
            args += [len(seen), *_pairs(seen)]
        if flags:
            keys.append(self._flag_key)
            args += [len(flags), *_pairs(flags)]
        if keys:
            self._keep_minimum(keys=keys, args=args, client=pipe)

    def compact(self, customer_id: str) -> int:
        """Fold the customer's pending events into its stored state; returns how many."""
        return self.compact_many([customer_id])[customer_id]

    def compact_many(self, customers: Sequence[str]) -> dict[str, int]:
        """Fold each customer's pending events into its state, in two round trips per try."""
        folded: dict[str, int] = {}
        remaining = list(customers)
        for _ in range(MAX_RETRIES):
            with self.client.pipeline(transaction=True) as pipe:
                for customer in remaining:
                    pipe.get(self._key("state", customer))
                    pipe.get(self._key("version", customer))
                    pipe.lrange(self._key("pending", customer), 0, -1)
                read = pipe.execute()
            writes = []
            for index, customer in enumerate(remaining):
                raw_state, version, pending = read[3 * index : 3 * index + 3]
                folded[customer] = len(pending)
                if pending:
                    state = _dump(self._fold(raw_state, pending))
                    writes.append((customer, b"" if version is None else version, state))
            if not writes:
                return folded
            with self.client.pipeline(transaction=False) as pipe:
                for customer, version, state in writes:
                    keys = [self._key(kind, customer) for kind in ("state", "version", "pending")]
                    args = [version, state, folded[customer]]
                    self._compare_and_set(keys=keys, args=args, client=pipe)
                done = pipe.execute()
            remaining = [c for (c, _, _), ok in zip(writes, done, strict=True) if not ok]
            if not remaining:
                return folded
        raise RuntimeError(f"gave up after {MAX_RETRIES} conflicting compactions of {remaining}")

    def _fold(self, raw_state: bytes | str | None, pending: list[bytes | str]) -> CustomerState:
        state = self._load(raw_state)
        for raw in pending:
            self.plan.apply(state, _decode(raw))
        return state

    def _load(self, raw: bytes | str | None) -> CustomerState:
        if raw is None:
            return self.plan.new_state()
        data = pickle.loads(raw if isinstance(raw, bytes) else raw.encode())
        return CustomerState.from_data(self.plan, data)

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        keys = [
            self._key("state", customer_id),
            self._key("pending", customer_id),
            self._key("devices", customer_id),
            self._key("partners", customer_id),
            self._flag_key,
        ]
        raw_state, pending, devices, flat_flags = self._read(
            keys=keys, args=[f"{self.prefix}:device:"]
        )
        state = self._fold(raw_state or None, pending)
        by_device = {
            _text(device): {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
            for device, flat in devices
        }
        flags = {_text(flat_flags[i]): int(flat_flags[i + 1]) for i in range(0, len(flat_flags), 2)}
        graph = _PrefetchedGraph(by_device, flags)
        return self.plan.read(customer_id, state, day_number(as_of), graph)

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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
