"""Validate a whole batch of raw events at once, column by column (Arrow), not row by row.

A batch of raw events (dicts from JSON, CSV text, Parquet values) is turned into one Arrow
table in the canonical event schema (`EVENT_SCHEMA`), plus the SHA-256 digest of every
row, with array operations over each column instead of one `parse_event` call per event.

The rule it keeps: **`parse_event` stays the oracle.** The column checks only *accept*
a row when every value is already in a plain, unambiguous form that `parse_event`
accepts with the same stored value (an id matching the id pattern, an `int` amount in
range, an aware `datetime` or ISO 8601 text with an offset, ...). Any row with anything
unusual (a missing required field, a padded string, a float amount, an unknown field, a
value out of range) is handed to `parse_event` itself, which either accepts it (its event
joins the table) or names every bad field with the very messages the per-row path gives.
So the vectorised path cannot accept a row that the per-row path refuses, nor store a
different value, nor word an error differently; `tests/unit/data/test_data_columnar.py`
checks this with Hypothesis. Only the common case (clean rows) is made fast.

The common case of a whole column is checked at once, before any per-value work: ids and
labels by their alphabet over the column's Arrow buffers (`_all_match`), closed
vocabularies by set inclusion, and instants and dates by one line pattern over the joined
column and Arrow's cast from text. A column where any value is not plain goes through the
per-value checks above, which find the doubtful rows; a field no row has is a column of
nulls unchecked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timezone
from enum import StrEnum
from itertools import repeat
from operator import attrgetter
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditline.data.domain.events import (
    _CATEGORY_VALUES,
    _ENUM_FIELDS,
    _ENUM_VALUES,
    _FALSE,
    _ID,
    _ID_FIELDS,
    _LABEL,
    _TRUE,
    _ZERO_ALLOWED,
    ENVELOPE,
    EVENT_FIELDS,
    EVENT_SCHEMAS,
    FIELD_NAMES,
    MAX_AMOUNT_MINOR,
    SCHEMA_VERSION,
    SUPPORTED_VERSIONS,
    BehaviourEvent,
    EventType,
    FieldKind,
    parse_event,
)
from creditline.shared.errors import InvalidInputError
from creditline.shared.money import Currency

#: The Arrow type of each logical column type (also the types of the Parquet files).
ARROW_TYPES: dict[FieldKind, pa.DataType] = {
    FieldKind.STRING: pa.string(),
    FieldKind.INT64: pa.int64(),
    FieldKind.BOOL: pa.bool_(),
    FieldKind.DATE: pa.date32(),
    FieldKind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}
EVENT_SCHEMA = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in EVENT_FIELDS])
_FIELD_SET = frozenset(FIELD_NAMES)
_NONE = type(None)
_ZONE = attrgetter("tzinfo")
#: Whole numbers written as text that `int()` and Arrow's cast read alike (no sign, no
#: leading zero, at most 12 digits: `MAX_AMOUNT_MINOR` has 12).
_PLAIN_INT = r"^(0|[1-9][0-9]{0,11})$"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PLAIN_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
assert set(_PLAIN_BOOL) == _TRUE | _FALSE
_DIGITS = re.compile(r"\d{4}-\d{2}-\d{2}")
_PATTERNS: dict[str, str] = {
    **dict.fromkeys((*_ID_FIELDS, "product_id"), _ID.pattern),
    **dict.fromkeys(("source", "category", "location"), _LABEL.pattern),
}
_ENUMS: dict[str, frozenset[str]] = {
    **_ENUM_VALUES,
    "event_type": frozenset(t.value for t in EventType),
}
_AMOUNTS = ("amount_minor", "amount_due_minor", "credit_limit_minor")
_PAYLOAD = tuple(name for name in FIELD_NAMES if name not in ENVELOPE and name != "currency")
_ENUM_TYPES: dict[str, type[StrEnum]] = {**_ENUM_FIELDS, "event_type": EventType}
_MEMBERS: dict[str, dict[str, StrEnum]] = {
    name: {member.value: member for member in list(enum)} for name, enum in _ENUM_TYPES.items()
}
_DEFAULTS: dict[str, object] = {"schema_version": SCHEMA_VERSION, "currency": Currency.CNY.value}


@dataclass(frozen=True, slots=True)
class ValidBatch:
    """The accepted events of a batch, in input order, as Arrow columns.

    `table` has the columns of `EVENT_SCHEMA` (defaults filled in: `schema_version`,
    `currency`) plus `digest` (`BehaviourEvent.digest()` of each row); `positions[i]` is
    the index in the input of row `i`.
    """

    table: pa.Table
    positions: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def event_ids(self) -> list[str]:
        ids: list[str] = self.table.column("event_id").to_pylist()
        return ids

    @property
    def digests(self) -> list[str]:
        digests: list[str] = self.table.column("digest").to_pylist()
        return digests

    def take(self, rows: Sequence[int]) -> ValidBatch:
        return ValidBatch(
            self.table.take(pa.array(rows, type=pa.int64())),
            tuple(self.positions[row] for row in rows),
        )

    def events(self) -> list[BehaviourEvent]:
        """The rows as `BehaviourEvent`s (for stores and consumers that want objects)."""
        columns: list[list[Any]] = []
        for name in FIELD_NAMES:
            values = self.table.column(name).to_pylist()
            members = _MEMBERS.get(name)
            if members is not None:
                values = [None if v is None else members[v] for v in values]
            columns.append(values)
        # Positional arguments in FIELD_NAMES order (the dataclass's field order, asserted
        # in the domain module); the values were validated and typed above.
        return [BehaviourEvent(*row) for row in zip(*columns, strict=True)]


@dataclass(frozen=True, slots=True)
class BatchValidation:
    valid: ValidBatch
    #: (index in the input, the error `parse_event` raised), in input order.
    invalid: tuple[tuple[int, InvalidInputError], ...]


def validate_batch(raws: Sequence[Mapping[str, object]]) -> BatchValidation:
    """Validate every raw event; the good ones become one Arrow table, in input order."""
    size = len(raws)
    if size == 0:
        return BatchValidation(ValidBatch(_empty_table(), ()), ())
    keys: set[str] = set().union(*raws)
    if keys <= _FIELD_SET:  # the common case: no row has an unknown field
        unknown = np.zeros(size, dtype=np.bool_)
    else:
        unknown = np.fromiter(
            (not raw.keys() <= _FIELD_SET for raw in raws), dtype=np.bool_, count=size
        )
    # A field no row has is left out (None): it is a column of nulls, with nothing to check.
    columns: dict[str, list[object] | None] = dict.fromkeys(FIELD_NAMES)
    if set(map(type, raws)) == {dict}:  # rows from JSON, CSV and Parquet: plain dicts
        dicts = cast("Sequence[dict[str, object]]", raws)
        for name in keys & _FIELD_SET:
            columns[name] = list(map(dict.get, dicts, repeat(name, size)))
    else:
        for name in keys & _FIELD_SET:
            columns[name] = [raw.get(name) for raw in raws]
    return _validate(columns, size, unknown, raws.__getitem__)


def validate_table(table: pa.Table) -> BatchValidation:
    """Validate events given as Arrow columns (a Parquet file); the same rules and results
    as `validate_batch(table.to_pylist())`, without a Python object per value when a
    column already has its Arrow type."""
    size = table.num_rows
    if size == 0:
        return BatchValidation(ValidBatch(_empty_table(), ()), ())
    names = set(table.column_names)
    unknown = np.zeros(size, dtype=np.bool_)
    for name in names - _FIELD_SET:
        unknown |= table.column(name).is_valid().to_numpy(zero_copy_only=False)
    columns: dict[str, pa.Array | list[object]] = {}
    for field in EVENT_SCHEMA:
        if field.name not in names:
            columns[field.name] = pa.nulls(size, field.type)
            continue
        column = table.column(field.name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        columns[field.name] = column if _is_native(column.type, field.type) else column.to_pylist()

    def row(index: int) -> Mapping[str, object]:
        record: dict[str, object] = table.slice(index, 1).to_pylist()[0]
        return record

    return _validate(columns, size, unknown, row)


def _is_native(actual: pa.DataType, wanted: pa.DataType) -> bool:
    """Arrow types whose values `parse_event` would take as they are."""
    if pa.types.is_timestamp(wanted):
        return pa.types.is_timestamp(actual) and actual.tz is not None and actual.unit != "ns"
    if pa.types.is_string(wanted):
        return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))
    if pa.types.is_int64(wanted):
        return bool(pa.types.is_integer(actual) and actual != pa.uint64())
    return bool(actual == wanted or pa.types.is_null(actual))


def _validate(
    columns: Mapping[str, pa.Array | list[object] | None],
    size: int,
    doubt: np.ndarray,
    row: Callable[[int], Mapping[str, object]],
) -> BatchValidation:
    arrays: dict[str, pa.Array] = {}
    for name, kind in EVENT_FIELDS:
        values = columns[name]
        if values is None:
            arrays[name] = pa.nulls(size, ARROW_TYPES[kind])
            continue
        if isinstance(values, pa.Array):
            array, unsure = _native_column(name, kind, values)
        else:
            array, unsure = _COLUMN[kind](name, values)
        arrays[name] = array
        doubt |= unsure
    doubt |= _row_rules(arrays, size)
    fast = np.flatnonzero(~doubt)
    table = pa.Table.from_arrays(
        [
            array if (array := arrays[field.name]).type == field.type else array.cast(field.type)
            for field in EVENT_SCHEMA
        ],
        schema=EVENT_SCHEMA,
    )
    if len(fast) < size:
        table = table.take(pa.array(fast))
    positions = fast.tolist()
    invalid: list[tuple[int, InvalidInputError]] = []
    slow_events: list[BehaviourEvent] = []
    slow_positions: list[int] = []
    for index in np.flatnonzero(doubt).tolist():
        try:
            slow_events.append(parse_event(row(index)))
        except InvalidInputError as error:
            invalid.append((index, error))
        else:
            slow_positions.append(index)
    if slow_events:
        table, positions = _merge(table, positions, slow_events, slow_positions)
    table = _with_defaults(table)
    table = table.append_column("digest", digests(table))
    return BatchValidation(ValidBatch(table, tuple(positions)), tuple(invalid))


def _native_column(name: str, kind: FieldKind, array: pa.Array) -> Column:
    """A column that already has its Arrow type: only the value checks remain."""
    size = len(array)
    if kind is FieldKind.STRING:
        text = array.cast(pa.string())
        if text.null_count == size or _plain_text(name, text):
            return text, np.zeros(size, dtype=np.bool_)
        return _checked_text(name, text, np.zeros(size, dtype=np.bool_))
    if kind is FieldKind.TIMESTAMP:
        return array.cast(pa.timestamp("us", tz="UTC")), np.zeros(size, dtype=np.bool_)
    return array.cast(ARROW_TYPES[kind]), np.zeros(size, dtype=np.bool_)


def _empty_table() -> pa.Table:
    empty = EVENT_SCHEMA.empty_table()
    return empty.append_column("digest", pa.array([], type=pa.string()))


def _merge(
    table: pa.Table, positions: list[int], events: list[BehaviourEvent], at: list[int]
) -> tuple[pa.Table, list[int]]:
    """Add the events `parse_event` accepted, then put every row back in input order."""
    extra = pa.Table.from_pylist([event.as_record() for event in events], schema=EVENT_SCHEMA)
    merged = pa.concat_tables([table, extra])
    every = positions + at
    order = np.argsort(np.array(every, dtype=np.int64), kind="stable")
    return merged.take(pa.array(order)), [every[i] for i in order.tolist()]


def _with_defaults(table: pa.Table) -> pa.Table:
    for name, default in _DEFAULTS.items():
        index = table.schema.get_field_index(name)
        column = table.column(index)
        if column.null_count:
            filled = pc.fill_null(column, pa.scalar(default, type=column.type))
            table = table.set_column(index, name, filled)
    return table


# --- columns -------------------------------------------------------------------------------

Column = tuple[pa.Array, np.ndarray]


def _types(values: list[object]) -> set[type]:
    return set(map(type, values))


def _mask(flags: Any, size: int) -> np.ndarray:
    return np.fromiter(flags, dtype=np.bool_, count=size)


def _keep_only(values: list[object], kinds: tuple[type, ...]) -> tuple[list[object], np.ndarray]:
    """Values of the given exact types are kept; any other value is doubtful (None here)."""
    kept = [v if type(v) in kinds else None for v in values]
    doubtful = _mask((v is not None and type(v) not in kinds for v in values), len(values))
    return kept, doubtful


def _text(values: list[object]) -> tuple[pa.Array, np.ndarray]:
    """Text values as an Arrow string array; a value of another type is doubtful (left to
    `parse_event`, which refuses it or, for numbers as text, converts it)."""
    size = len(values)
    if _types(values) <= {str, _NONE}:
        array = pa.array(values, type=pa.string())
        doubt = np.zeros(size, dtype=np.bool_)
    else:
        kept, doubt = _keep_only(values, (str,))
        array = pa.array(kept, type=pa.string())
    return array, doubt


def _is_false(array: pa.Array) -> np.ndarray:
    """True where a boolean array is false (null counts as fine)."""
    flags: np.ndarray = pc.invert(pc.fill_null(array, True)).to_numpy(zero_copy_only=False)
    return flags


def _string_column(name: str, values: list[object]) -> Column:
    quick = _plain_text_column(name, values)
    if quick is not None:
        return quick
    array, doubt = _text(values)
    return _checked_text(name, array, doubt)


#: The characters each text pattern allows (ASCII), and those a value may not start with;
#: pinned to the domain's patterns, so a change there fails here instead of drifting.
_ID_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
_LABEL_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789_.:-"
_NOT_FIRST = (b"_", b".", b":", b"-")
#: Per byte value, whether a value may not start with it (a table look-up per value).
_NOT_FIRST_BYTE = np.zeros(256, dtype=np.bool_)
_NOT_FIRST_BYTE[np.frombuffer(b"".join(_NOT_FIRST), dtype=np.uint8)] = True
_MAX_TEXT = 64
assert _ID.pattern == r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
assert _LABEL.pattern == r"^[a-z0-9][a-z0-9_.:\-]{0,63}$"
_ALPHABETS = {
    _ID.pattern: _ID_ALPHABET,
    _LABEL.pattern: _LABEL_ALPHABET,
}


def _plain_text_column(name: str, values: list[object]) -> Column | None:
    """The column when every value is None or text its field takes exactly as it is (the
    common case), told with a few passes over the whole column; None when any value is
    anything else, for the per-value checks to find which.

    Arrow builds the column first (in C): it infers `string` only when every value is
    text or None (a number, a boolean or bytes gives another type or an error), and its
    buffers are then the joined text and the offsets that the checks below read."""
    size = len(values)
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError):
        return None
    if array.null_count == size:
        return pa.nulls(size, pa.string()), np.zeros(size, dtype=np.bool_)
    if array.type != pa.string() or not _plain_text(name, array):
        return None
    return array, np.zeros(size, dtype=np.bool_)


def _plain_text(name: str, array: pa.StringArray) -> bool:
    """Whether every non-null value of a text column is one its field takes as it is: in
    the field's vocabulary, or matching its id or label pattern."""
    pattern = _PATTERNS.get(name)
    if pattern is None:
        return set(pc.unique(array).drop_null().to_pylist()) <= _ENUMS[name]
    return _all_match(array, _ALPHABETS[pattern])


def _all_match(array: pa.StringArray, alphabet: bytes) -> bool:
    """Whether every non-null text is 1-64 characters of `alphabet`, not starting with one
    of `_NOT_FIRST`: the id and label patterns, checked on the array's buffers at once
    (the concatenated UTF-8 text and the offsets of each value)."""
    size = len(array)
    _, offset_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int32, count=size + 1, offset=array.offset * 4)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    if array.null_count:
        present = array.is_valid().to_numpy(zero_copy_only=False)
        starts, lengths = starts[present], lengths[present]
    if lengths.min() < 1 or lengths.max() > _MAX_TEXT:
        return False
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    if _NOT_FIRST_BYTE[data[starts]].any():
        return False
    # A character outside the alphabet (any non-ASCII byte included) survives the delete.
    used = data[offsets[0] : offsets[-1]].tobytes()
    return not used.translate(None, alphabet)


def _checked_text(name: str, array: pa.Array, doubt: np.ndarray) -> Column:
    array = _blank_as_null(array)
    if array.null_count < len(array):
        pattern = _PATTERNS.get(name)
        if pattern is not None:
            # Also refuses padded or blank text, which parse_event would strip or ignore.
            doubt |= _is_false(pc.match_substring_regex(array, pattern))
        else:
            allowed = pa.array(sorted(_ENUMS[name]), type=pa.string())
            doubt |= _is_false(pc.or_(pc.is_null(array), pc.is_in(array, value_set=allowed)))
    return array, doubt


def _int_column(name: str, values: list[object]) -> Column:
    types = _types(values)
    size = len(values)
    if types <= {int, _NONE}:
        try:
            return pa.array(values, type=pa.int64()), np.zeros(size, dtype=np.bool_)
        except (OverflowError, pa.ArrowException):
            pass  # a number beyond 64 bits: handled value by value below
    elif types <= {str, _NONE}:
        text, doubt = _text(values)
        text = _blank_as_null(text)
        plain = pc.match_substring_regex(text, _PLAIN_INT)
        doubt |= _is_false(plain)
        usable = pc.if_else(pc.fill_null(plain, False), text, pa.scalar(None, pa.string()))
        return usable.cast(pa.int64()), doubt
    fits = [isinstance(v, int) and type(v) is int and _INT64_MIN <= v <= _INT64_MAX for v in values]
    kept = [v if ok else None for v, ok in zip(values, fits, strict=True)]
    doubt = _mask((v is not None and not ok for v, ok in zip(values, fits, strict=True)), size)
    return pa.array(kept, type=pa.int64()), doubt


def _blank_as_null(text: pa.Array) -> pa.Array:
    """Empty text is a missing value (as in a CSV file); other blanks stay doubtful."""
    blank = pc.equal(text, "")
    result: pa.Array = pc.if_else(pc.fill_null(blank, False), None, text)
    return result


def _bool_column(name: str, values: list[object]) -> Column:
    types = _types(values)
    if types <= {bool, _NONE}:
        return pa.array(values, type=pa.bool_()), np.zeros(len(values), dtype=np.bool_)
    if types <= {str, _NONE}:
        text, doubt = _text(values)
        text = _blank_as_null(text)
        keys = pa.array(list(_PLAIN_BOOL), type=pa.string())
        found = pc.index_in(text, value_set=keys)
        doubt |= _is_false(pc.or_(pc.is_null(text), pc.is_valid(found)))
        truth = pa.array(list(_PLAIN_BOOL.values()), type=pa.bool_())
        return pc.take(truth, found), doubt
    kept, doubt = _keep_only(values, (bool,))
    return pa.array(kept, type=pa.bool_()), doubt


def _parsed(
    values: list[object], native: type, parse: Callable[[str], object | None]
) -> tuple[list[object], np.ndarray]:
    """Values of type `native` kept, text parsed by `parse` (None when not plain)."""
    out: list[object] = []
    doubt = np.zeros(len(values), dtype=np.bool_)
    for i, value in enumerate(values):
        kind = type(value)
        if kind is native or value is None:
            out.append(value)
        elif kind is str and value != "":
            parsed = parse(value)  # type: ignore[arg-type]
            out.append(parsed)
            if parsed is None:
                doubt[i] = True
        elif kind is str:
            out.append(None)
        else:
            out.append(None)
            doubt[i] = True
    return out, doubt


def _plain_date(text: str) -> date | None:
    if len(text) != 10 or not _DIGITS.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


#: Dates in the plain form that Arrow's cast reads as `date.fromisoformat` does; a date that
#: does not exist (Feb 30) makes the cast fail, which sends the column to the per-value path.
_PLAIN_DATES = re.compile(r"(?:(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\n)*")


def _date_column(name: str, values: list[object]) -> Column:
    if _types(values) <= {date, _NONE}:  # `date` objects (Parquet rows), kept as they are
        return pa.array(values, type=pa.date32()), np.zeros(len(values), dtype=np.bool_)
    quick = _plain_text_cast(values, _PLAIN_DATES, pa.date32())
    if quick is not None:
        return quick, np.zeros(len(values), dtype=np.bool_)
    out, doubt = _parsed(values, date, _plain_date)
    return pa.array(out, type=pa.date32()), doubt


def _plain_instant(text: str) -> datetime | None:
    if text != text.strip():
        return None
    try:
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is not None:
            instant.astimezone(UTC)  # outside years 1-9999 in UTC: for parse_event to judge
    except (ValueError, OverflowError):
        return None
    return instant if instant.tzinfo is not None else None


#: Time zones whose `utcoffset` is never None: an instant carrying one is aware.
_FIXED_ZONES = (timezone, ZoneInfo)


#: ISO 8601 instants in the one plain form (`2026-01-15T10:00:00.123+08:00`, or `Z`) that
#: Arrow's cast reads to the same instant as `datetime.fromisoformat`; every field in its
#: range by shape, and a date that does not exist (Feb 30) makes the cast fail, which sends
#: the column to the per-value path. Years 1 and 9999 are left to that path too: an offset
#: can carry them out of the years 1-9999 in UTC, which `parse_event` refuses.
_PLAIN_INSTANTS = re.compile(
    r"(?:(?!0000|0001|9999)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)\n)*"
)


def _plain_text_cast(
    values: list[object], plain: re.Pattern[str], to: pa.DataType
) -> pa.Array | None:
    """The column cast by Arrow from text (no Python object per value) when every value is
    None or text in the `plain` form (a line pattern, checked over the joined column at
    once); None otherwise, and when the cast refuses a value."""
    texts = [value for value in values if value is not None]
    if not texts or _types(texts) != {str}:
        return None
    joined = "\n".join(cast("list[str]", texts)) + "\n"
    if joined.count("\n") != len(texts) or not plain.fullmatch(joined):
        return None
    try:
        result: pa.Array = pa.array(values, type=pa.string()).cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return result


def _timestamp_column(name: str, values: list[object]) -> Column:
    quick = _plain_text_cast(values, _PLAIN_INSTANTS, pa.timestamp("us", tz="UTC"))
    if quick is not None:
        return quick, np.zeros(len(values), dtype=np.bool_)
    if _types(values) <= {datetime, _NONE}:
        zones = set(map(_ZONE, filter(None, values)))
        if all(type(zone) in _FIXED_ZONES for zone in zones):  # every instant is aware
            array = pa.array(values, type=pa.timestamp("us", tz="UTC"))
            return array, np.zeros(len(values), dtype=np.bool_)
    out, doubt = _parsed(values, datetime, _plain_instant)
    for i, value in enumerate(out):
        if value is not None and value.utcoffset() is None:  # type: ignore[attr-defined]
            out[i] = None
            doubt[i] = True
    return pa.array(out, type=pa.timestamp("us", tz="UTC")), doubt


_COLUMN: dict[FieldKind, Callable[[str, list[object]], Column]] = {
    FieldKind.STRING: _string_column,
    FieldKind.INT64: _int_column,
    FieldKind.BOOL: _bool_column,
    FieldKind.DATE: _date_column,
    FieldKind.TIMESTAMP: _timestamp_column,
}


# --- rules across columns ------------------------------------------------------------------


def _row_rules(arrays: Mapping[str, pa.Array], size: int) -> np.ndarray:
    """Rows that break a rule involving several fields (or a missing value) are doubtful.

    The per-type rules are looked up by each row's type in tables made once from
    `EVENT_SCHEMAS` (one row per type, one column per payload field), so a batch costs a
    few array operations whatever mix of types it holds."""
    null = {name: _nulls(arrays[name], size) for name in FIELD_NAMES}
    doubt = np.zeros(size, dtype=np.bool_)
    for name in ("event_id", "customer_id", "event_type", "occurred_at", "source"):
        doubt |= null[name]
    # Each row's event type as its index in `_KINDS`; a row of no or an unknown type is
    # already doubtful, and is looked up as the last row of the tables (no rules).
    codes = pc.fill_null(pc.index_in(arrays["event_type"], value_set=_KIND_VALUES), -1)
    kinds = codes.to_numpy(zero_copy_only=False)
    missing = np.column_stack([null[name] for name in _PAYLOAD])
    doubt |= (_REQUIRED_BY_KIND[kinds] & missing).any(axis=1)
    doubt |= (_REFUSED_BY_KIND[kinds] & ~missing).any(axis=1)
    one_of = _ONE_OF_BY_KIND[kinds]
    doubt |= one_of.any(axis=1) & ~(one_of & ~missing).any(axis=1)
    floors = _FLOORS_BY_KIND[kinds]
    for column, name in enumerate(_AMOUNTS):
        if not null[name].all():
            values = pc.fill_null(arrays[name], 1).to_numpy(zero_copy_only=False)
            doubt |= (values < floors[:, column]) | (values > MAX_AMOUNT_MINOR)
    if not null["category"].all():
        for kind, vocabulary in _CATEGORY_VALUES.items():
            of_kind = kinds == _KINDS.index(kind)
            if of_kind.any():
                known = pc.is_in(arrays["category"], value_set=pa.array(sorted(vocabulary)))
                doubt |= of_kind & ~pc.fill_null(known, True).to_numpy(zero_copy_only=False)
    version = arrays["schema_version"]
    if version.null_count < size:
        supported = pa.array(sorted(SUPPORTED_VERSIONS), type=pa.int64())
        known_version = pc.is_in(pc.fill_null(version, SCHEMA_VERSION), value_set=supported)
        doubt |= ~known_version.to_numpy(zero_copy_only=False)
    if arrays["counterparty_id"].null_count < size:
        same = pc.equal(arrays["counterparty_id"], arrays["customer_id"])
        transfer = kinds == _KINDS.index(EventType.TRANSFER)
        doubt |= transfer & pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    return doubt


_KINDS: list[EventType] = list(EVENT_SCHEMAS)
_KIND_VALUES = pa.array([kind.value for kind in _KINDS], type=pa.string())


def _by_kind(
    rule: Callable[[EventType, str], int], names: Sequence[str], dtype: type
) -> np.ndarray:
    """`rule(kind, name)` for every type (rows, in `_KINDS` order) and name (columns), and
    a last row of zeros for a row of no known type (index -1: no rule applies to it, and
    it is doubtful already)."""
    table = [[rule(kind, name) for name in names] for kind in _KINDS]
    return np.array([*table, [0] * len(names)], dtype=dtype)


_REQUIRED_BY_KIND = _by_kind(lambda k, n: n in EVENT_SCHEMAS[k].required, _PAYLOAD, np.bool_)
_REFUSED_BY_KIND = _by_kind(lambda k, n: n not in EVENT_SCHEMAS[k].allowed, _PAYLOAD, np.bool_)
_ONE_OF_BY_KIND = _by_kind(lambda k, n: n in EVENT_SCHEMAS[k].at_least_one_of, _PAYLOAD, np.bool_)
_FLOORS_BY_KIND = _by_kind(lambda k, n: 0 if (k, n) in _ZERO_ALLOWED else 1, _AMOUNTS, np.int64)


def _nulls(array: pa.Array, size: int) -> np.ndarray:
    """Where `array` is null, as a numpy mask (without a pass for the all or none cases)."""
    if array.null_count == 0:
        return np.zeros(size, dtype=np.bool_)
    if array.null_count == size:
        return np.ones(size, dtype=np.bool_)
    mask: np.ndarray = array.is_null().to_numpy(zero_copy_only=False)
    return mask


# --- digests -------------------------------------------------------------------------------


def utc_text(instants: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """UTC instants as "YYYY-MM-DD HH:MM:SS.ffffff" (Arrow's cast, much faster than
    strftime; the text SQLAlchemy's SQLite types store)."""
    return instants.cast(pa.timestamp("us")).cast(pa.string())


def digests(table: pa.Table) -> pa.Array:
    """`BehaviourEvent.digest()` of every row: SHA-256 of the canonical text of the fields
    (UTC instants with microseconds and a Z, booleans as True/False, None as nothing),
    joined by the unit separator."""
    if table.num_rows == 0:
        return pa.array([], type=pa.string())
    parts: list[pa.Array | pa.ChunkedArray | pa.Scalar] = []
    for name, kind in EVENT_FIELDS:
        column = table.column(name)
        if column.null_count == len(column):
            parts.append(_EMPTY_TEXT)  # a payload field no row of the batch has
        elif kind is FieldKind.TIMESTAMP:
            spaced = utc_text(column)  # "YYYY-MM-DD HH:MM:SS.ffffff"
            parts.append(
                pc.binary_join_element_wise(
                    pc.utf8_replace_slice(spaced, start=10, stop=11, replacement="T"), "Z", ""
                )
            )
        elif kind is FieldKind.BOOL:
            parts.append(pc.if_else(column, "True", "False"))
        else:
            parts.append(column.cast(pa.string()))
    joined = pc.binary_join_element_wise(
        *parts, "\x1f", null_handling="replace", null_replacement=""
    ).cast(pa.binary())
    sha256 = hashlib.sha256
    return pa.array([sha256(row).hexdigest() for row in joined.to_pylist()], type=pa.string())


_EMPTY_TEXT = pa.scalar("", type=pa.string())
