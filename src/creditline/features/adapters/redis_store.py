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
customer and sends one script call that does one `RPUSH` of all its events per customer
and one `SADD` per set, and one script call for all the index minima (which commute, so
they need no transaction). When pending lists reach `COMPACT_AT` events, the writer folds
them into the states, all due customers together: one round trip reads their states,
versions and pending lists (one script call: a consistent snapshot), the events are
folded in Python, and one compare-and-set script call writes each state, bumps its
version and trims exactly the n folded events (appends go to the tail, so none is lost).
A batch comes as events (`apply`) or as the Arrow table ingestion stored (`apply_table`);
either way it is handled as columns (`EventColumns`), and a compaction decodes all due
customers' pending events with one `json.loads` and folds them as one batch
(`OnlinePlan.apply_columns`, the same state as folding them one by one). A customer whose
version moved meanwhile (another writer compacted it) is retried.

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

import pyarrow as pa
import redis

from creditline.features.adapters.parquet_events import columns_from_table
from creditline.features.domain.columns import VALUE_COLUMNS, EventColumns
from creditline.features.domain.definitions import TRANSFER_TYPES
from creditline.features.domain.events import EventType, FeatureEvent, date_of_day, day_number
from creditline.features.domain.online import (
    CustomerState,
    FeatureVector,
    OnlinePlan,
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

# KEYS: the pending lists of a batch, then sets; ARGV: how many pending lists, then for
# each key the number of values and the values (RPUSH to a list, SADD to a set, in chunks
# that stay within Lua's unpack limit). Returns the length of each pending list.
_APPEND = """
local lists = tonumber(ARGV[1])
local a = 2
local lengths = {}
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  local command = k <= lists and 'RPUSH' or 'SADD'
  local last = a + n - 1
  local length = 0
  for first = a, last, 1000 do
    length = redis.call(command, KEYS[k], unpack(ARGV, first, math.min(first + 999, last)))
  end
  if k <= lists then lengths[k] = length end
  a = last + 1
end
return lengths
"""

# KEYS: state, version, pending; ARGV: the version read, the new state, events folded.
# (One customer's compare-and-set; the writer uses `_COMPARE_AND_SET_MANY`.)
_COMPARE_AND_SET = """
local version = redis.call('GET', KEYS[2]) or ''
if version ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('LTRIM', KEYS[3], tonumber(ARGV[3]), -1)
return 1
"""

# KEYS: state, version, pending of each customer; returns state, version, pending events
# of each (a script runs atomically: a consistent snapshot of them all).
_READ_MANY = """
local out = {}
for k = 1, #KEYS, 3 do
  out[#out + 1] = redis.call('GET', KEYS[k])
  out[#out + 1] = redis.call('GET', KEYS[k + 1])
  out[#out + 1] = redis.call('LRANGE', KEYS[k + 2], 0, -1)
end
return out
"""

# Compare-and-set of many states: KEYS state, version, pending of each customer; ARGV the
# version read, the new state and the number of events folded of each. Each state whose
# version is unchanged is written, its version bumped and exactly the folded events
# trimmed; returns 1 (written) or 0 (version moved) per customer.
_COMPARE_AND_SET_MANY = """
local done = {}
for k = 1, #KEYS, 3 do
  local version = redis.call('GET', KEYS[k + 1]) or ''
  if version == ARGV[k] then
    redis.call('SET', KEYS[k], ARGV[k + 1])
    redis.call('INCR', KEYS[k + 1])
    redis.call('LTRIM', KEYS[k + 2], tonumber(ARGV[k + 2]), -1)
    done[#done + 1] = 1
  else
    done[#done + 1] = 0
  end
end
return done
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
        self._append = client.register_script(_APPEND)
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)
        self._read_many = client.register_script(_READ_MANY)
        self._compare_and_set_many = client.register_script(_COMPARE_AND_SET_MANY)
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
        return self.apply_columns(EventColumns.of_events(events))

    def apply_table(self, table: pa.Table) -> int:
        """Append the rows of an Arrow table of stored events (`EVENT_COLUMNS`, any extra
        columns ignored); returns how many events, transfers' mirrors included."""
        return self.apply_columns(columns_from_table(table))

    def apply_columns(self, columns: EventColumns) -> int:
        """Append a batch given as columns (mirrors included): one pipelined round trip,
        then the compaction of the customers whose pending lists reached `COMPACT_AT`."""
        if not len(columns):
            return 0
        pushed: dict[str, list[str]] = defaultdict(list)
        customers = columns.customer_id
        for row, text in zip(columns.order, _encode_rows(columns), strict=True):
            pushed[customers[row]].append(text)
        devices, flags = self.plan.index_columns(columns)
        partners: dict[str, set[str]] = defaultdict(set)
        counterparties = columns.values["counterparty_id"]
        for row, kind in enumerate(columns.event_type):
            if kind in TRANSFER_TYPES and counterparties[row]:
                partners[customers[row]].add(counterparties[row])
        # One script call appends every customer's events and adds to every set (one
        # command for redis-py to pack and one reply to parse, not one per customer).
        keys: list[str] = []
        args: list[str | int] = [len(pushed)]
        for customer, encoded in pushed.items():
            keys.append(self._key("pending", customer))
            args += [len(encoded), *encoded]
        for customer, seen in partners.items():
            keys.append(self._key("partners", customer))
            args += [len(seen), *seen]
        by_customer: dict[str, set[str]] = defaultdict(set)
        for device, firsts in devices.items():
            for customer in firsts:
                by_customer[customer].add(device)
        for customer, used in by_customer.items():
            keys.append(self._key("devices", customer))
            args += [len(used), *used]
        with self.client.pipeline(transaction=False) as pipe:
            self._append(keys=keys, args=args, client=pipe)
            self._queue_minima(pipe, devices, flags)
            lengths = pipe.execute()[0]
        due = [c for c, length in zip(pushed, lengths, strict=True) if length >= COMPACT_AT]
        if due:
            self.compact_many(sorted(due))
        return len(columns)

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
        """Fold each customer's pending events into its state, in two round trips per try
        (two script calls for all of them)."""
        folded: dict[str, int] = {}
        remaining = list(customers)
        for _ in range(MAX_RETRIES):
            # One script call (atomic, so a consistent snapshot) reads them all.
            read = self._read_many(keys=self._compaction_keys(remaining))
            loaded: dict[str, CustomerState] = {}
            versions: dict[str, bytes] = {}
            pending_rows: list[bytes | str] = []
            for index, customer in enumerate(remaining):
                raw_state, version, pending = read[3 * index : 3 * index + 3]
                folded[customer] = len(pending)
                if pending:
                    loaded[customer] = self._load(raw_state)
                    versions[customer] = b"" if version is None else version
                    pending_rows += pending
            # Every due customer's pending events folded as one batch of columns.
            self.plan.apply_columns(_decode_rows(pending_rows), loaded.__getitem__)
            writes = [
                (customer, versions[customer], _dump(state)) for customer, state in loaded.items()
            ]
            if not writes:
                return folded
            args: list[bytes | int] = []
            for customer, version, state in writes:
                args += [version, state, folded[customer]]
            keys = self._compaction_keys([customer for customer, _, _ in writes])
            done = self._compare_and_set_many(keys=keys, args=args)
            remaining = [c for (c, _, _), ok in zip(writes, done, strict=True) if not ok]
            if not remaining:
                return folded
        raise RuntimeError(f"gave up after {MAX_RETRIES} conflicting compactions of {remaining}")

    def _fold(self, raw_state: bytes | str | None, pending: list[bytes | str]) -> CustomerState:
        state = self._load(raw_state)
        for raw in pending:
            self.plan.apply(state, _decode(raw))
        return state

    def _compaction_keys(self, customers: Sequence[str]) -> list[str]:
        return [
            self._key(kind, customer)
            for customer in customers
            for kind in ("state", "version", "pending")
        ]

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


def _encode_rows(columns: EventColumns) -> list[str]:
    """Each row, in `columns.order`, as a compact JSON array (the field order `_decode` reads)."""
    values = columns.values
    rows = zip(
        columns.event_id,
        columns.customer_id,
        columns.event_type,
        columns.micros,
        values["amount_minor"],
        values["category"],
        values["counterparty_id"],
        values["device_id"],
        values["is_sim_change"],
        values["product_id"],
        columns.due_day,
        values["amount_due_minor"],
        values["credit_limit_minor"],
        strict=True,
    )
    encode = _ENCODER.encode
    encoded = [encode(row) for row in rows]
    return [encoded[row] for row in columns.order]


def _decode_rows(raws: list[bytes | str]) -> EventColumns:
    """Pending events (as `_encode_rows` wrote them) as columns, in the order given; they are
    already mirrored, each stored under its own customer."""
    text = b"[" + b",".join(r if isinstance(r, bytes) else r.encode() for r in raws) + b"]"
    rows = json.loads(text)
    if not rows:
        return EventColumns.build(
            event_id=[],
            customer_id=[],
            event_type=[],
            micros=[],
            due_day=[],
            values={name: [] for name in VALUE_COLUMNS},
            mirror=False,
        )
    (
        ids,
        customers,
        types,
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
    ) = (list(column) for column in zip(*rows, strict=True))
    return EventColumns.build(
        event_id=ids,
        customer_id=customers,
        event_type=types,
        micros=micros,
        due_day=due_day,
        values={
            "amount_minor": amount,
            "category": category,
            "counterparty_id": counterparty,
            "device_id": device,
            "is_sim_change": sim,
            "product_id": product,
            "amount_due_minor": amount_due,
            "credit_limit_minor": limit,
        },
        mirror=False,
    )


_ENCODER = json.JSONEncoder(separators=(",", ":"))


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
