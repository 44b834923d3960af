"""The Redis online feature store, for production: the same state as in process, shared.

Keys (all under `prefix`, by default `KEY_PREFIX`, which names the layout's version: a
store with another layout never reads these keys, it starts empty and is fed again):

- `{prefix}:state:{customer_id}`: the customer's folded `CustomerState` as JSON
  (`CustomerState.to_data`, written and read with orjson: plain lists, dicts, ints and
  strings, faster both ways than pickle, and nothing in it is ever executed on load);
- `{prefix}:version:{customer_id}`: a token naming the state's current version, new at
  every rewrite (the writer's random id and a counter: never reused, not even after
  `clear`), which makes the rewrite a compare-and-set;
- `{prefix}:pending:{customer_id}`: a list of the customer's events not yet folded in,
  one entry per batch that had events of the customer: those events as compact JSON
  arrays separated by commas (so the entries of a list, joined by commas in brackets,
  are one JSON array of all its events);
- `{prefix}:devices:{customer_id}`, `{prefix}:partners:{customer_id}`: sets of the devices
  the customer logged in on and of its transfer counterparties (so a read can fetch the
  graph facts it needs inside Redis, without first decoding the state);
- `{prefix}:device:{device_id}`: hash customer id → day of that customer's first login;
- `{prefix}:flag`: hash customer id → day of the customer's first flag event.

**A batch costs one round trip per `SCRIPT_CUSTOMERS` of its customers.** `apply` folds
the batch into the states the writer holds, groups it by customer and sends script calls
that, per customer, either append its events as one pending entry or, when its pending
events reach `compact_at`, write its folded state in their place; one `SADD` per set and
every index minimum kept (minima commute, so concurrent writers need no transaction).
The customers' keys are built inside the script from the prefix and the customer id.
Each call is short, so a reader never waits behind a whole batch (Redis runs one script
at a time; a read waits behind at most the `PIPELINED_CALLS` calls a writer has sent).
The calls go on one connection, each sent before the reply to the one before it is read
(at most `PIPELINED_CALLS` awaited at once); the customers that only append go first, so
the first call is sent before the batch is folded and Redis runs it meanwhile, and the
writer encodes each next call while Redis runs the current one: the writer and Redis
work side by side, not in turn. A call is never sent twice, except one that Redis
refused without running it because it had lost the script.

**A writer folds a batch into the states it holds while it is in step with Redis.** It
keeps, per customer (up to `cached_states` of them, least recently folded dropped
first), the version token of the stored state and that state with the first n pending
entries folded in, all of them appended by this writer (and how many events those hold).
The batch's rows are folded into those states before the call that needs them, without
reading or decoding anything back. A customer the writer does not hold is in step only
if it is new (neither state nor pending entries before this entry): its rows are folded
into a new state once Redis has confirmed that, after the calls, so a customer that was
dropped from the cache (a population larger than `cached_states`) or moved by another
writer is not folded in vain at every batch, only from a snapshot (below). If the writer
sent a state (its pending events reached `compact_at`), the script checks that the
stored version is still the one the writer holds and that the list holds exactly its n
entries: in step, that state is written, its new version set and the pending list
deleted (every entry in it is folded into that state), all in the same call. Otherwise
the entry is appended, and the writer is in step if the list held exactly its n entries
(and, for its first entry after a state, n = 0, the version is still the one it holds):
another writer's append is noticed at once, another's compaction (which resets the list)
at the latest when this writer sends its state, which the compare-and-set then refuses,
so a state folded out of step is never written. Out of step, the entry is appended and
the state folded for it dropped; a customer whose list reached `compact_at` entries
comes back as a consistent snapshot of its version, state and pending entries (a script
runs atomically), which is decoded (one `orjson.loads` for all the events) and folded as
one batch (`OnlinePlan.apply_columns`: the same state as folding them one by one), then
written by a compare-and-set script call that trims exactly the entries folded in
(appends go to the tail, so none is lost). Versions are never reused, so a state is
never mistaken for another writer's. A customer whose version moved before that
compare-and-set is retried through `compact_many`, which reads a fresh snapshot. A state
is taken out of the cache before it is folded and put back only once the script has
confirmed that Redis matches it, so a failed or interrupted call (whether or not the
script ran) never leaves behind a state ahead of or behind what Redis holds.

A read is one round trip: a script returns, atomically, the state, the pending entries
(fewer than `compact_at` events from a writer in step, fewer than `compact_at` entries
otherwise; folded in memory as one batch of columns), every device hash of the
customer's devices and the flags of all its device neighbours and transfer partners. It
never reads the customer's history. (The scripts read keys they did not declare, so the
store wants a single Redis, not a cluster; a cluster would need hash tags.)
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

import hiredis
import orjson
import pyarrow as pa
import redis
from redis.exceptions import NoScriptError

from creditline.features.adapters.parquet_events import columns_from_table
from creditline.features.domain.columns import VALUE_COLUMNS, EventColumns
from creditline.features.domain.definitions import TRANSFER_TYPES
from creditline.features.domain.events import FeatureEvent, day_number
from creditline.features.domain.online import (
    CustomerState,
    FeatureVector,
    OnlinePlan,
)

#: Customers per write script call, and states per write or compare-and-set call: Redis
#: runs one script at a time, so a read waits behind at most `PIPELINED_CALLS` of these
#: (~0.5 ms of Redis work each), never behind a whole batch.
SCRIPT_CUSTOMERS = 128
SCRIPT_STATES = 32
#: Write calls a writer keeps sent ahead of their replies. With one, Redis sat idle while
#: the writer read a reply and sent the next call, and the writer idled while Redis ran
#: it; with two, the next call waits in Redis's input while the current one runs (the
#: writer's wait for replies on the 2,000-customer bench, 2026-11-30, loaded machine:
#: 1.6-2.9 → 1.1-1.5 µs per event). A read may then wait behind two write calls (~1 ms)
#: instead of one; read p99 beside a writer at 5,000 events/s stayed 0.8-1.9 ms (one
#: run each side above 2 ms on a loaded machine).
PIPELINED_CALLS = 2
#: Pending events that trigger a fold into the state (the default of `compact_at`); also
#: bounds the fold on a read. A fold writes the whole state (~8 KB for a year of events),
#: so the writer's and Redis's cost per event falls as this grows, and a read's rises
#: (it folds up to this many pending events). Measured on the 2,000-customer bench
#: (2026-11-30, same window): 64 takes ~15% less CPU per event, writer and Redis
#: together, than 32 and ~20% less than 16; 128 another ~21% less than 64 (two
#: alternated pairs: 61 → 77k and 81 → 102k events/s), for ~13% more client CPU per read
#: (620 → 700 µs) and a read p99 of 1.2–1.3 ms (64: 1.0–1.1), far inside the 3 ms target.
#: Writes come at ingestion rates, reads one per decision: the writes weigh more.
COMPACT_AT = 128
#: States a writer keeps decoded by default (see the module docstring): a year of one
#: customer's events decodes to ~50 KiB, so ~200 MiB at most; 0 turns the cache off.
CACHED_STATES = 4_096
MAX_RETRIES = 20

# KEYS: the sets to add to, then the index hashes to keep minima in (the customers' own
# keys are built here from the prefix). ARGV: the prefix, the number of customers and
# COMPACT_AT; then for each customer its id, the version of the state the writer holds
# ('' if none: it then expects a customer without state or pending events), how many
# pending entries that state holds already, the customer's events of the batch as one
# entry, and the new version of the state ('' if none) followed, if there is one, by
# that state (the held one with the batch folded in); then (optional) the number of
# sets; for each set the number of members and the members; for each hash the number of
# pairs and its field, day pairs (a day is written only if the field has none or a later
# one: minima commute, so concurrent writers need no transaction). SADD goes in chunks
# that stay within Lua's unpack limit.
#
# A customer the writer is in step with (the version is the one it holds and the list
# holds exactly the entries it holds) and sends a new state for has that state written,
# its version set and its pending list deleted (every entry is folded into that state);
# any other customer has the entry appended. Returns, for each customer, 1 if the writer
# was in step with it (for an append: the list held exactly the entries it holds and,
# if none, the version is the one it holds), else 0 if its list is shorter than
# COMPACT_AT, else {version, state (nil if missing), pending entries}.
_WRITE = """
local prefix = ARGV[1]
local customers = tonumber(ARGV[2])
local compact_at = tonumber(ARGV[3])
local a = 4
local out = {}
for c = 1, customers do
  local id = ARGV[a]
  local pending = prefix .. ':pending:' .. id
  local held, entries, token = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 4]
  local in_step = false
  if token ~= '' then
    in_step = redis.call('LLEN', pending) == entries
      and (redis.call('GET', prefix .. ':version:' .. id) or '') == held
  end
  if in_step then
    redis.call('SET', prefix .. ':state:' .. id, ARGV[a + 5])
    redis.call('SET', prefix .. ':version:' .. id, token)
    redis.call('DEL', pending)
    out[c] = 1
  else
    -- Appended first: the list held what the writer holds if it is one entry longer.
    -- The version is compared only on the first entry after a state: a writer that
    -- missed another's compaction is caught when it writes its state (above).
    local length = redis.call('RPUSH', pending, ARGV[a + 3])
    if token == '' and length - 1 == entries and (entries > 0
      or (redis.call('GET', prefix .. ':version:' .. id) or '') == held) then
      out[c] = 1
    elseif length >= compact_at then
      local version = redis.call('GET', prefix .. ':version:' .. id) or ''
      local state = redis.call('GET', prefix .. ':state:' .. id)
      out[c] = {version, state, redis.call('LRANGE', pending, 0, -1)}
    else
      out[c] = 0
    end
  end
  a = a + 5
  if token ~= '' then a = a + 1 end
end
local sets = tonumber(ARGV[a]) or 0
a = a + 1
for s = 1, sets do
  local n = tonumber(ARGV[a])
  a = a + 1
  local last = a + n - 1
  for first = a, last, 1000 do
    redis.call('SADD', KEYS[s], unpack(ARGV, first, math.min(first + 999, last)))
  end
  a = last + 1
end
for h = sets + 1, #KEYS do
  local pairs = tonumber(ARGV[a])
  a = a + 1
  for i = 1, pairs do
    local old = redis.call('HGET', KEYS[h], ARGV[a])
    if (not old) or tonumber(ARGV[a + 1]) < tonumber(old) then
      redis.call('HSET', KEYS[h], ARGV[a], ARGV[a + 1])
    end
    a = a + 2
  end
end
return out
"""

# KEYS: pending, version and state of each customer. Returns {version, state (nil if
# missing), pending events} of each (a script runs atomically: a consistent snapshot).
_READ_MANY = """
local out = {}
for c = 1, #KEYS / 3 do
  local version = redis.call('GET', KEYS[3 * c - 1]) or ''
  out[c] = {version, redis.call('GET', KEYS[3 * c]), redis.call('LRANGE', KEYS[3 * c - 2], 0, -1)}
end
return out
"""

# Compare-and-set of many states: KEYS pending, version and state of each customer; ARGV
# for each the version read, its new version, the new state and the number of events
# folded. Each state whose version is unchanged is written, its version set and exactly
# the folded events trimmed; returns 1 (written) or 0 (version moved) per customer.
_COMPARE_AND_SET_MANY = """
local done = {}
for c = 1, #KEYS / 3 do
  local a = 4 * c - 3
  if (redis.call('GET', KEYS[3 * c - 1]) or '') == ARGV[a] then
    redis.call('SET', KEYS[3 * c - 1], ARGV[a + 1])
    redis.call('SET', KEYS[3 * c], ARGV[a + 2])
    redis.call('LTRIM', KEYS[3 * c - 2], tonumber(ARGV[a + 3]), -1)
    done[c] = 1
  else
    done[c] = 0
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

# The version of the key layout below; bump it whenever the layout changes.
KEY_PREFIX = "features:v5"

# (customer, version, state as stored or None if missing, pending events) of a customer
# to compact.
_Snapshot = tuple[str, bytes, bytes | None, list[bytes]]
# What a writer holds of a customer: the version of the stored state, that state with the
# first n pending entries folded in (all of them appended by this writer), n, and how
# many events those entries hold.
_Held = tuple[bytes, CustomerState, int, int]
# How a batch writes a customer: its id, its pending entry, the version and the number of
# pending entries the writer holds, the version, pending entries and pending events the
# writer will hold (with the state folded) once Redis confirms it was in step (None:
# nothing, the state is not folded), and whether the state is written in place of the
# entry (else the entry is appended).
_Planned = tuple[str, bytes, bytes, int, tuple[bytes, int, int] | None, bool]
_T = TypeVar("_T")


class RedisFeatureStore:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = KEY_PREFIX,
        plan: OnlinePlan | None = None,
        cached_states: int = CACHED_STATES,
        compact_at: int = COMPACT_AT,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.plan = plan or OnlinePlan.of()
        self.cached_states = cached_states
        self.compact_at = compact_at
        self._script = client.register_script(_WRITE)
        self._read_many = client.register_script(_READ_MANY)
        self._compare_and_set_many = client.register_script(_COMPARE_AND_SET_MANY)
        self._read = client.register_script(_READ)
        # Version tokens: this writer's random id and a counter, never reused.
        self._writer = uuid.uuid4().hex[:16]
        self._writes = itertools.count(1)
        # customer → what this writer holds of it, least recently folded first.
        self._cache: dict[str, _Held] = {}
        self._cache_lock = threading.Lock()

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
        """Fold a batch given as columns (mirrors included) into the states this writer
        holds (a new one for a customer it does not), then write it in script calls of at
        most `SCRIPT_CUSTOMERS` customers and `SCRIPT_STATES` states: each customer's
        events as one pending entry, or, for a customer whose pending events reach
        `compact_at`, its folded state instead, if Redis still holds what the writer holds
        (else the entry is appended and the folded state dropped). Customers another
        writer moved are folded from a snapshot once their pending lists reach
        `compact_at` entries.

        Redis runs a script without interruption, so a reader waits for at most
        `PIPELINED_CALLS` short scripts, not for the whole batch. The calls go one after
        the other on one connection, and the batch is folded and each call's arguments
        made while Redis runs the calls before (see `_write_parts`)."""
        if not len(columns):
            return 0
        entries, sizes = _encode_entries(columns)
        # Out of the cache before they are folded: put back only once Redis matches them.
        held = self._take_many(entries)
        planned = [
            self._plan_write(customer, entry, held[customer], sizes[customer])
            for customer, entry in entries.items()
        ]
        kept, due = self._write_parts(columns, held, planned)
        self._keep_many(kept)
        again: list[str] = []
        for start in range(0, len(due), SCRIPT_STATES):
            again += self._fold_and_write(due[start : start + SCRIPT_STATES])[1]
        if again:
            self.compact_many(again)
        return len(columns)

    def _plan_write(self, customer: str, entry: bytes, held: _Held | None, size: int) -> _Planned:
        """How to write a customer whose batch is `entry` (`size` events) from what the
        writer held of it: its state is folded and written in place of the entry if its
        pending events reach `compact_at`, else folded and kept in step (only with a
        cache: a state that is not written now would not be kept), else not folded."""
        version, count, events = (b"", 0, 0) if held is None else _position(held)
        events += size
        if events >= self.compact_at:
            return (customer, entry, version, count, (self._token(), 0, 0), True)
        if self.cached_states > 0:
            return (customer, entry, version, count, (version, count + 1, events), False)
        return (customer, entry, version, count, None, False)

    def _write_parts(
        self,
        columns: EventColumns,
        held: Mapping[str, _Held | None],
        planned: Sequence[_Planned],
    ) -> tuple[list[tuple[str, _Held]], list[_Snapshot]]:
        """Fold the batch into the planned states and write it in `_WRITE` calls of at
        most `SCRIPT_CUSTOMERS` customers and `SCRIPT_STATES` states (the last call with
        the batch's set and index updates); returns what to keep in the cache (customers
        Redis confirmed in step) and the snapshots of the customers due for compaction.

        The calls that only append go first, so the first is sent before the batch is
        folded; each next call's arguments (its states encoded) are made, and the call
        sent, while Redis runs the ones before, with at most `PIPELINED_CALLS` awaited at
        once: Redis and the writer work side by side instead of in turn. Should the
        connection fail, the states of the whole batch are given up (none is kept), and
        no call is sent again."""
        # Customers whose entry is only appended first: a call of them needs no folded
        # state, so it is sent before the batch is folded and Redis runs it meanwhile.
        ordered = [p for p in planned if not p[5]] + [p for p in planned if p[5]]
        parts = _slices(ordered, lambda plan: plan[5])
        # A customer not held is folded now only if its state is written now; otherwise
        # only once Redis confirms it new (`fresh`): one evicted from the cache or moved
        # by another writer is not folded in vain.
        folding = [p[0] for p in ordered if p[4] is not None and (p[5] or held[p[0]])]
        states: dict[str, CustomerState] = {}
        folded = False
        kept: list[tuple[str, _Held]] = []
        fresh: list[tuple[str, tuple[bytes, int, int]]] = []
        due: list[_Snapshot] = []
        # Calls sent whose reply is not read yet, oldest first (Redis answers in order).
        sent: deque[tuple[Sequence[_Planned], Sequence[Any]]] = deque()
        pool = self.client.connection_pool
        connection: Any = pool.get_connection()
        try:
            for index, part in enumerate(parts):
                if not folded and (sent or any(p[5] for p in part)):
                    # While Redis runs the first call, or before a call writes states.
                    states.update(self._fold_held(columns, held, folding))
                    folded = True
                command = self._write_command(
                    part, states, columns if index == len(parts) - 1 else None
                )
                oldest = None
                if len(sent) >= PIPELINED_CALLS:
                    oldest = sent.popleft()
                    replies = self._receive_write(connection, oldest[1])
                self._send_write(connection, command)
                sent.append((part, command))
                if oldest is not None:
                    self._settle(connection, oldest, replies, sent, states, kept, fresh, due)
            if not folded:
                states.update(self._fold_held(columns, held, folding))
            while sent:
                oldest = sent.popleft()
                replies = self._receive_write(connection, oldest[1])
                self._settle(connection, oldest, replies, sent, states, kept, fresh, due)
        except BaseException:
            # A reply may be left unread: the connection is not reused.
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        if fresh:
            new = self._fold_held(columns, held, [customer for customer, _ in fresh])
            kept += [(c, (then[0], new[c], then[1], then[2])) for c, then in fresh]
        return kept, due

    def _settle(
        self,
        connection: Any,
        call: tuple[Sequence[_Planned], Sequence[Any]],
        replies: list[Any] | None,
        sent: deque[tuple[Sequence[_Planned], Sequence[Any]]],
        states: Mapping[str, CustomerState],
        kept: list[tuple[str, _Held]],
        fresh: list[tuple[str, tuple[bytes, int, int]]],
        due: list[_Snapshot],
    ) -> None:
        """Sort the replies of a call (`_confirm`), or, if Redis did not know the script
        (None: the call did not run), send the call again behind those still awaited."""
        if replies is not None:
            self._confirm(call[0], replies, states, kept, fresh, due)
            return
        self._send_write(connection, call[1])
        sent.append(call)

    def _confirm(
        self,
        part: Sequence[_Planned],
        replies: Sequence[Any],
        states: Mapping[str, CustomerState],
        kept: list[tuple[str, _Held]],
        fresh: list[tuple[str, tuple[bytes, int, int]]],
        due: list[_Snapshot],
    ) -> None:
        """Sort a call's replies: what the writer holds of each customer Redis confirmed
        in step goes to `kept` (to `fresh`, a customer confirmed new whose state is not
        folded yet), the snapshot of each customer due for compaction to `due`."""
        for plan, reply in zip(part, replies, strict=True):
            customer, then = plan[0], plan[4]
            if isinstance(reply, list):
                due.append((customer, *reply))
            elif reply and then is not None:
                state = states.get(customer)
                if state is None:
                    fresh.append((customer, then))
                else:
                    kept.append((customer, (then[0], state, then[1], then[2])))

    def _write_command(
        self,
        part: Sequence[_Planned],
        states: Mapping[str, CustomerState],
        indexed: EventColumns | None,
    ) -> list[Any]:
        """The `_WRITE` call (EVALSHA and its arguments) for these planned customers (and,
        given `indexed`, the set and index updates of those columns). A state to write
        goes with the version token of what the writer will hold once it is written."""
        args: list[bytes | str | int] = [self.prefix, len(part), self.compact_at]
        for customer, entry, version, count, then, write in part:
            args += [customer, version, count, entry]
            if write and then is not None:
                args += [then[0], _dump(states[customer])]
            else:
                args.append(b"")
        keys: list[str] = []
        if indexed is not None:
            keys, extra = self._index_updates(indexed)
            args += extra
        return ["EVALSHA", self._script.sha, len(keys), *keys, *args]

    def _send_write(self, connection: Any, command: Sequence[Any]) -> None:
        # Packed by hiredis as it is: `send_command` first copies every argument through
        # a generator, ~7% of the writer's time on the bench.
        connection.send_packed_command([hiredis.pack_command(tuple(command))])

    def _receive_write(self, connection: Any, command: Sequence[Any]) -> list[Any] | None:
        """The reply to the oldest `_WRITE` call awaited on `connection` (`command`), or
        None if Redis did not know the script (restarted, flushed): the call did not run,
        the script is loaded now and the caller sends the call again."""
        try:
            replies: list[Any] = connection.read_response()
        except NoScriptError:
            self.client.script_load(_WRITE)
            return None
        return replies

    def _fold_held(
        self,
        columns: EventColumns,
        held: Mapping[str, _Held | None],
        customers: Sequence[str],
    ) -> dict[str, CustomerState]:
        """Fold the batch's rows of `customers` into the states held (a new state for a
        customer not held: new to Redis too, or about to be written in place of all it
        has); returns them by customer."""
        states: dict[str, CustomerState] = {}
        for customer in customers:
            entry = held[customer]
            states[customer] = self.plan.new_state() if entry is None else entry[1]
        if states:
            rows = columns if len(states) == len(held) else columns.of_customers(states)
            self.plan.apply_columns(rows, states.__getitem__)
        return states

    def _token(self) -> bytes:
        """A new version token: this writer's id and a counter, never reused."""
        return f"{self._writer}:{next(self._writes)}".encode()

    def _write(self, folded: Sequence[tuple[str, bytes, CustomerState, int]]) -> list[str]:
        """Compare-and-set (customer, version read, state, pending entries folded) in one
        script call; returns the customers whose version moved meanwhile."""
        written: list[tuple[str, bytes, CustomerState]] = []
        args: list[bytes | int] = []
        for customer, version, state, count in folded:
            token = self._token()
            written.append((customer, token, state))
            args += [version, token, _dump(state), count]
        keys = self._compaction_keys(customer for customer, *_ in folded)
        done = self._compare_and_set_many(keys=keys, args=args)
        again = [customer for (customer, _, _), ok in zip(written, done, strict=True) if not ok]
        self._keep_many(
            [
                (customer, (token, state, 0, 0))
                for (customer, token, state), ok in zip(written, done, strict=True)
                if ok
            ]
        )
        return again

    def _index_updates(self, columns: EventColumns) -> tuple[list[str], list[bytes | str | int]]:
        """The keys and arguments of `_WRITE` after its customers: the sets (devices and
        transfer partners of each customer) and the index minima (device logins, flags)."""
        customers = columns.customer_id
        devices, flags = self.plan.index_columns(columns)
        partners: dict[str, set[str]] = defaultdict(set)
        counterparties = columns.values["counterparty_id"]
        for row, kind in enumerate(columns.event_type):
            if kind in TRANSFER_TYPES and counterparties[row]:
                partners[customers[row]].add(counterparties[row])
        by_customer: dict[str, set[str]] = defaultdict(set)
        for device, firsts in devices.items():
            for customer in firsts:
                by_customer[customer].add(device)
        sets = [
            (self._key(name, customer), seen)
            for name, members in (("partners", partners), ("devices", by_customer))
            for customer, seen in members.items()
        ]
        keys: list[str] = []
        args: list[bytes | str | int] = [len(sets)]
        for key, seen in sets:
            keys.append(key)
            args += [len(seen), *seen]
        minima = [(self._key("device", device), seen) for device, seen in devices.items()]
        if flags:
            minima.append((self._flag_key, flags))
        for key, days in minima:
            keys.append(key)
            args.append(len(days))
            for name, day in days.items():
                args += [name, day]
        return keys, args

    def compact(self, customer_id: str) -> int:
        """Fold the customer's pending events into its stored state; returns how many."""
        return self.compact_many([customer_id])[customer_id]

    def compact_many(self, customers: Sequence[str]) -> dict[str, int]:
        """Fold each customer's pending events into its state, in two round trips per try
        for every `SCRIPT_STATES` of them; returns how many events each had pending."""
        folded: dict[str, int] = {}
        for start in range(0, len(customers), SCRIPT_STATES):
            folded.update(self._compact_slice(customers[start : start + SCRIPT_STATES]))
        return folded

    def _compact_slice(self, customers: Sequence[str]) -> dict[str, int]:
        folded: dict[str, int] = {}
        remaining = list(customers)
        for _ in range(MAX_RETRIES):
            read = self._read_many(keys=self._compaction_keys(remaining))
            snapshots = [
                (customer, version, state, pending)
                for customer, (version, state, pending) in zip(remaining, read, strict=True)
            ]
            counts, remaining = self._fold_and_write(snapshots)
            folded.update(counts)
            if not remaining:
                return folded
        raise RuntimeError(f"gave up after {MAX_RETRIES} conflicting compactions of {remaining}")

    def _fold_and_write(self, snapshots: Sequence[_Snapshot]) -> tuple[dict[str, int], list[str]]:
        """Fold the snapshots' pending events into their states (one batch of columns) and
        write them back with one compare-and-set script call; returns how many events each
        customer had pending, and the customers whose version moved meanwhile (to compact
        again). A state this writer holds in step with a snapshot (same version, and all
        its pending entries folded in already) is written as it is."""
        counts: dict[str, int] = {}
        states: dict[str, CustomerState] = {}
        versions: dict[str, bytes] = {}
        entries: dict[str, int] = {}
        rows: list[list[Any]] = []
        for customer, version, raw_state, pending in snapshots:
            counts[customer] = 0
            if not pending:
                continue
            # Out of the cache before it is folded: put back only once written.
            entry = self._take(customer)
            if entry is not None and entry[0] == version and entry[2] == len(pending):
                states[customer] = entry[1]
                counts[customer] = entry[3]
            else:
                states[customer] = self._load(raw_state)
                own = _parse_entries(pending)
                counts[customer] = len(own)
                rows += own
            versions[customer] = version
            entries[customer] = len(pending)
        if not states:
            return counts, []
        if rows:
            batch = _columns_of_rows(rows)
            # The parsed rows (a list each) go before the fold allocates: alive, they
            # would be moved to the oldest generation and bring full collections sooner.
            rows.clear()
            self.plan.apply_columns(batch, states.__getitem__)
        again = self._write([(c, versions[c], state, entries[c]) for c, state in states.items()])
        return counts, again

    def _take(self, customer: str) -> _Held | None:
        return self._take_many([customer])[customer]

    def _take_many(self, customers: Iterable[str]) -> dict[str, _Held | None]:
        """Take these customers' entries out of the cache (None where there is none)."""
        with self._cache_lock:
            pop = self._cache.pop
            return {customer: pop(customer, None) for customer in customers}

    def _keep_many(self, entries: Sequence[tuple[str, _Held]]) -> None:
        """Put these entries (back) into the cache, as its most recent."""
        if self.cached_states <= 0 or not entries:
            return
        with self._cache_lock:
            cache = self._cache
            for customer, held in entries:
                cache.pop(customer, None)
                cache[customer] = held
            while len(cache) > self.cached_states:
                del cache[next(iter(cache))]

    def _compaction_keys(self, customers: Iterable[str]) -> list[str]:
        return [
            self._key(kind, customer)
            for customer in customers
            for kind in ("pending", "version", "state")
        ]

    def _load(self, raw: bytes | str | None) -> CustomerState:
        if raw is None:
            return self.plan.new_state()
        return CustomerState.from_data(self.plan, orjson.loads(raw))

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
        state = self._load(raw_state or None)
        if pending:
            self.plan.apply_columns(_columns_of_rows(_parse_entries(pending)), lambda _: state)
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
        with self._cache_lock:
            self._cache.clear()
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


def _dump(state: CustomerState) -> bytes:
    return orjson.dumps(state.to_data())


def _slices(items: Sequence[_T], heavy: Callable[[_T], bool]) -> list[list[_T]]:
    """`items` in order, cut into slices of at most `SCRIPT_CUSTOMERS` items of which at
    most `SCRIPT_STATES` are `heavy` (at least one slice, even if empty)."""
    slices: list[list[_T]] = [[]]
    weight = 0
    for item in items:
        extra = heavy(item)
        if len(slices[-1]) >= SCRIPT_CUSTOMERS or weight + extra > SCRIPT_STATES:
            slices.append([])
            weight = 0
        slices[-1].append(item)
        weight += extra
    return slices


def _position(entry: _Held) -> tuple[bytes, int, int]:
    """The version, pending entries and pending events of what a writer holds."""
    return entry[0], entry[2], entry[3]


def _encode_entries(columns: EventColumns) -> tuple[dict[str, bytes], dict[str, int]]:
    """Each customer's rows, in order, as one pending entry (compact JSON arrays, fields in
    the order `_columns_of_rows` reads them, separated by commas), and how many rows each
    entry holds; customers in the order of their first row."""
    values = columns.values
    rows = list(
        zip(
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
    )
    customers = columns.customer_id
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in columns.order:
        own = grouped.get(customers[row])
        if own is None:
            grouped[customers[row]] = [rows[row]]
        else:
            own.append(rows[row])
    dumps = orjson.dumps
    entries = {customer: dumps(own)[1:-1] for customer, own in grouped.items()}
    return entries, {customer: len(own) for customer, own in grouped.items()}


def _parse_entries(entries: Sequence[bytes | str]) -> list[list[Any]]:
    """The rows of pending entries (as `_encode_entries` wrote them), in order."""
    text = b"[" + b",".join(e if isinstance(e, bytes) else e.encode() for e in entries) + b"]"
    rows: list[list[Any]] = orjson.loads(text)
    return rows


def _columns_of_rows(rows: list[list[Any]]) -> EventColumns:
    """Parsed pending rows as columns, in the order given; they are already mirrored, each
    stored under its own customer."""
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
