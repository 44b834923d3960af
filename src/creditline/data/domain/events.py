"""Behaviour events: what a source tells us a customer did, in one versioned, flat schema.

A behaviour event is an immutable fact about one customer at one instant, reported by one
source (a payment app, a partner bank, a utility, the device SDK, the simulator). Every
event carries the same envelope: `event_id` (chosen by the source; the idempotency key:
the same id is stored once, ever), `customer_id`, `event_type`, `occurred_at` (an aware
instant), `source` and `schema_version`. The payload is a fixed set of typed, nullable
fields; `EVENT_SCHEMAS` says, per event type, which of them are required and which are
allowed, so one flat row shape serves the HTTP API, CSV, JSON Lines, Parquet, the SQL
table and the feature store (which reads exactly these columns).

Rules it keeps:

- Money is integer fen (`*_minor`) with its `currency`; never a float.
- Instants are timezone-aware; a string without a UTC offset is refused, not guessed.
- A field that the event type does not define is refused, so that a typo never becomes
  a silently missing value.
- `parse_event` reports every broken field at once (`InvalidInputError.issues`), each with
  the field name, a stable code and a reason a person can act on.

See docs/events.md for every field and type.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import cast

from creditline.shared.errors import FieldIssue, InvalidInputError
from creditline.shared.money import Currency

#: The schema version this code writes; readers accept every version in `SUPPORTED_VERSIONS`.
SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_.:\-]{0,63}$")
#: The largest amount one event may carry: ¥1,000,000,000.00 (guards against unit slips).
MAX_AMOUNT_MINOR = 100_000_000_000


class EventType(StrEnum):
    """The kinds of behaviour event (the same names the feature store reads)."""

    PROFILE_UPDATE = "profile_update"
    PAYMENT = "payment"
    ORDER = "order"
    REFUND = "refund"
    BILL = "bill"
    BILL_REPAYMENT = "bill_repayment"
    ALTERNATIVE_PAYMENT = "alternative_payment"
    TRANSFER = "transfer"
    DEVICE_LOGIN = "device_login"
    BALANCE = "balance"


class Channel(StrEnum):
    """How a payment was made."""

    ONLINE = "online"
    IN_APP = "in_app"
    QR_CODE = "qr_code"
    IN_STORE = "in_store"


class AlternativeKind(StrEnum):
    """Alternative-data payments: the bills that thin-file customers do have."""

    UTILITY = "utility"
    PHONE = "phone"
    TRANSIT = "transit"


class BalanceKind(StrEnum):
    SAVINGS = "savings"
    WEALTH = "wealth"


class Occupation(StrEnum):
    SALARIED = "salaried"
    CIVIL_SERVANT = "civil_servant"
    SELF_EMPLOYED = "self_employed"
    GIG_WORKER = "gig_worker"
    STUDENT = "student"
    RETIRED = "retired"
    UNEMPLOYED = "unemployed"


class Education(StrEnum):
    BELOW_HIGH_SCHOOL = "below_high_school"
    HIGH_SCHOOL = "high_school"
    ASSOCIATE = "associate"
    BACHELOR = "bachelor"
    POSTGRADUATE = "postgraduate"


@dataclass(frozen=True, slots=True)
class BehaviourEvent:
    """One validated behaviour event; payload fields the type does not use are None."""

    event_id: str
    customer_id: str
    event_type: EventType
    occurred_at: datetime
    source: str
    schema_version: int = SCHEMA_VERSION
    currency: Currency = Currency.CNY
    amount_minor: int | None = None
    category: str | None = None
    channel: Channel | None = None
    reference_id: str | None = None
    counterparty_id: str | None = None
    device_id: str | None = None
    is_sim_change: bool | None = None
    location: str | None = None
    product_id: str | None = None
    due_on: date | None = None
    amount_due_minor: int | None = None
    credit_limit_minor: int | None = None
    occupation: Occupation | None = None
    education: Education | None = None
    is_real_name_verified: bool | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError(f"{self.event_id}: occurred_at must be timezone-aware")

    def as_record(self) -> dict[str, object]:
        """The flat row: every field in `EVENT_FIELDS` order, enums as their values."""
        return {name: _plain(getattr(self, name)) for name in FIELD_NAMES}

    def digest(self) -> str:
        """SHA-256 of the canonical record: two events with one id must have one digest.

        Instants are written in UTC, so the same instant written with another offset has
        the same digest; enums are written as their values (`str` of a StrEnum).
        """
        parts = [
            "" if value is None else _utc_text(value) if isinstance(value, datetime) else str(value)
            for value in (getattr(self, name) for name in FIELD_NAMES)
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _utc_text(instant: datetime) -> str:
    offset = instant.utcoffset()
    assert offset is not None  # checked in __post_init__
    naive = (instant - offset).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") + "Z"


def _plain(value: object) -> object:
    return value.value if isinstance(value, StrEnum) else value


class FieldKind(StrEnum):
    """Logical column types, mapped to SQL and Arrow types by the adapters."""

    STRING = "string"
    INT64 = "int64"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"


#: Every column of the flat event row, in order, with its logical type.
EVENT_FIELDS: tuple[tuple[str, FieldKind], ...] = (
    ("event_id", FieldKind.STRING),
    ("customer_id", FieldKind.STRING),
    ("event_type", FieldKind.STRING),
    ("occurred_at", FieldKind.TIMESTAMP),
    ("source", FieldKind.STRING),
    ("schema_version", FieldKind.INT64),
    ("currency", FieldKind.STRING),
    ("amount_minor", FieldKind.INT64),
    ("category", FieldKind.STRING),
    ("channel", FieldKind.STRING),
    ("reference_id", FieldKind.STRING),
    ("counterparty_id", FieldKind.STRING),
    ("device_id", FieldKind.STRING),
    ("is_sim_change", FieldKind.BOOL),
    ("location", FieldKind.STRING),
    ("product_id", FieldKind.STRING),
    ("due_on", FieldKind.DATE),
    ("amount_due_minor", FieldKind.INT64),
    ("credit_limit_minor", FieldKind.INT64),
    ("occupation", FieldKind.STRING),
    ("education", FieldKind.STRING),
    ("is_real_name_verified", FieldKind.BOOL),
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in EVENT_FIELDS)
_FIELD_SET = frozenset(FIELD_NAMES)
ENVELOPE = frozenset(
    {"event_id", "customer_id", "event_type", "occurred_at", "source", "schema_version"}
)
assert tuple(f.name for f in fields(BehaviourEvent)) == FIELD_NAMES


@dataclass(frozen=True, slots=True)
class EventSchema:
    """Version 1 of one event type: the payload fields it requires and allows."""

    event_type: EventType
    version: int
    required: frozenset[str]
    optional: frozenset[str]
    #: For types whose fields are all optional: at least one of these must be present.
    at_least_one_of: frozenset[str] = frozenset()

    @property
    def allowed(self) -> frozenset[str]:
        return ENVELOPE | {"currency"} | self.required | self.optional


def _schema(
    kind: EventType,
    required: set[str],
    optional: set[str] | None = None,
    *,
    at_least_one_of: set[str] | None = None,
) -> EventSchema:
    return EventSchema(
        kind, 1, frozenset(required), frozenset(optional or ()), frozenset(at_least_one_of or ())
    )


_PROFILE = {"occupation", "education", "amount_minor", "is_real_name_verified"}
EVENT_SCHEMAS: Mapping[EventType, EventSchema] = {
    s.event_type: s
    for s in (
        _schema(EventType.PROFILE_UPDATE, set(), _PROFILE, at_least_one_of=_PROFILE),
        _schema(EventType.PAYMENT, {"amount_minor", "category"}, {"channel", "reference_id"}),
        _schema(EventType.ORDER, {"amount_minor", "category"}, {"reference_id", "channel"}),
        _schema(EventType.REFUND, {"amount_minor", "reference_id"}, {"category"}),
        _schema(
            EventType.BILL, {"product_id", "due_on", "amount_due_minor"}, {"credit_limit_minor"}
        ),
        _schema(
            EventType.BILL_REPAYMENT,
            {"product_id", "due_on", "amount_minor"},
            {"amount_due_minor", "channel"},
        ),
        _schema(EventType.ALTERNATIVE_PAYMENT, {"category", "amount_minor"}, {"due_on"}),
        _schema(EventType.TRANSFER, {"counterparty_id", "amount_minor"}, {"channel"}),
        _schema(EventType.DEVICE_LOGIN, {"device_id"}, {"is_sim_change", "location"}),
        _schema(EventType.BALANCE, {"category", "amount_minor"}, set()),
    )
}

#: Closed vocabularies of `category` for the types that have one.
_CATEGORY_VALUES: Mapping[EventType, frozenset[str]] = {
    EventType.ALTERNATIVE_PAYMENT: frozenset(k.value for k in AlternativeKind),
    EventType.BALANCE: frozenset(k.value for k in BalanceKind),
}
#: Amounts that may be zero (a zero balance, a bill with nothing due); others must be > 0.
_ZERO_ALLOWED = frozenset(
    {
        (EventType.BALANCE, "amount_minor"),
        (EventType.PROFILE_UPDATE, "amount_minor"),
        (EventType.BILL, "amount_due_minor"),
        (EventType.BILL_REPAYMENT, "amount_due_minor"),
        (EventType.BILL, "credit_limit_minor"),
    }
)


def _issue(field: str, code: str, message: str) -> FieldIssue:
    return FieldIssue(field=field, code=code, message=message)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_event(raw: Mapping[str, object]) -> BehaviourEvent:
    """Validate one raw event (from JSON, CSV text or Parquet values) into an event.

    Raises `InvalidInputError` listing every field that is missing, unknown, of the wrong
    type or out of range.
    """
    present = {k: v for k, v in raw.items() if v is not None and (type(v) is not str or v.strip())}
    issues: list[FieldIssue] = []
    values: dict[str, object] = {}
    kind = _parse_type(present.get("event_type"), issues)
    schema = EVENT_SCHEMAS.get(kind) if kind is not None else None
    for name in sorted(present.keys() - _FIELD_SET):
        issues.append(_issue(name, "unknown_field", f"{name!r} is not a field of any event"))
    for name in ("event_id", "customer_id", "occurred_at", "source"):
        if name not in present:
            issues.append(_issue(name, "required", f"{name} is required"))
    if schema is not None:
        _check_payload_presence(schema, present, issues)
    for name, value in present.items():
        converter = _CONVERTER_BY_FIELD.get(name)
        if converter is None:
            continue
        try:
            values[name] = converter(value)
        except (TypeError, ValueError, OverflowError) as error:
            issues.append(_issue(name, "invalid_type", str(error)))
    if kind is not None:
        _check_values(kind, values, issues)
    if issues:
        raise InvalidInputError(issues)
    assert kind is not None
    return _build(kind, values)


def _parse_type(value: object, issues: list[FieldIssue]) -> EventType | None:
    if _is_missing(value):
        issues.append(_issue("event_type", "required", "event_type is required"))
        return None
    try:
        return EventType(str(value))
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        issues.append(_issue("event_type", "unknown_value", f"{value!r} is not one of {known}"))
        return None


def _check_payload_presence(
    schema: EventSchema, present: Mapping[str, object], issues: list[FieldIssue]
) -> None:
    for name in sorted(schema.required - set(present)):
        issues.append(
            _issue(name, "required", f"{name} is required for a {schema.event_type} event")
        )
    for name in sorted((set(present) & set(FIELD_NAMES)) - schema.allowed):
        issues.append(
            _issue(name, "not_allowed", f"{name} is not a field of a {schema.event_type} event")
        )
    if schema.at_least_one_of and not schema.at_least_one_of & set(present):
        names = ", ".join(sorted(schema.at_least_one_of))
        issues.append(
            _issue(
                "event_type",
                "empty_event",
                f"a {schema.event_type} event needs at least one of {names}",
            )
        )


def _to_string(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value.strip()


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,19}", value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected a whole number of minor units, got {value!r}")


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    raise ValueError(f"expected true or false, got {value!r}")


def _to_date(value: object) -> date:
    if isinstance(value, datetime):
        raise TypeError("expected a date (YYYY-MM-DD), got an instant")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value.strip())
    raise TypeError(f"expected a date (YYYY-MM-DD), got {type(value).__name__}")


def _to_instant(value: object) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        instant = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    elif isinstance(value, datetime):
        instant = value
    else:
        raise TypeError(f"expected an ISO 8601 instant, got {type(value).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant needs a UTC offset (e.g. 2026-01-15T10:00:00+08:00)")
    try:
        instant.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant falls outside the years 1 to 9999 in UTC") from None
    return instant


_CONVERTERS = {
    FieldKind.STRING: _to_string,
    FieldKind.INT64: _to_int,
    FieldKind.BOOL: _to_bool,
    FieldKind.DATE: _to_date,
    FieldKind.TIMESTAMP: _to_instant,
}

_CONVERTER_BY_FIELD = {
    name: _CONVERTERS[kind] for name, kind in EVENT_FIELDS if name != "event_type"
}

_ID_FIELDS = ("event_id", "customer_id", "reference_id", "counterparty_id", "device_id")
_ENUM_FIELDS: Mapping[str, type[StrEnum]] = {
    "channel": Channel,
    "occupation": Occupation,
    "education": Education,
    "currency": Currency,
}

_ENUM_VALUES = {name: frozenset(m.value for m in enum) for name, enum in _ENUM_FIELDS.items()}


def _check_values(kind: EventType, values: dict[str, object], issues: list[FieldIssue]) -> None:
    for name in (*_ID_FIELDS, "product_id"):
        value = values.get(name)
        if isinstance(value, str) and not _ID.fullmatch(value):
            issues.append(
                _issue(name, "invalid_format", f"{name} must be 1-64 letters, digits or _.:-")
            )
    for name in ("source", "category", "location"):
        value = values.get(name)
        if isinstance(value, str) and not _LABEL.fullmatch(value):
            issues.append(
                _issue(
                    name,
                    "invalid_format",
                    f"{name} must be 1-64 lower-case letters, digits or _.:-",
                )
            )
    for name, allowed_values in _ENUM_VALUES.items():
        value = values.get(name)
        if isinstance(value, str) and value not in allowed_values:
            allowed = ", ".join(sorted(allowed_values))
            issues.append(_issue(name, "unknown_value", f"{value!r} is not one of {allowed}"))
    _check_amounts(kind, values, issues)
    _check_rules(kind, values, issues)


def _check_amounts(kind: EventType, values: dict[str, object], issues: list[FieldIssue]) -> None:
    for name in ("amount_minor", "amount_due_minor", "credit_limit_minor"):
        value = values.get(name)
        if not isinstance(value, int):
            continue
        floor = 0 if (kind, name) in _ZERO_ALLOWED else 1
        if value < floor:
            need = "zero or more" if floor == 0 else "more than zero"
            issues.append(_issue(name, "out_of_range", f"{name} must be {need} fen"))
        elif value > MAX_AMOUNT_MINOR:
            issues.append(_issue(name, "out_of_range", f"{name} exceeds {MAX_AMOUNT_MINOR} fen"))


def _check_rules(kind: EventType, values: dict[str, object], issues: list[FieldIssue]) -> None:
    version = values.get("schema_version")
    if isinstance(version, int) and version not in SUPPORTED_VERSIONS:
        issues.append(
            _issue("schema_version", "unsupported", f"schema_version {version} is not supported")
        )
    allowed = _CATEGORY_VALUES.get(kind)
    category = values.get("category")
    if allowed is not None and isinstance(category, str) and category not in allowed:
        issues.append(
            _issue(
                "category",
                "unknown_value",
                f"{category!r} is not one of {', '.join(sorted(allowed))}",
            )
        )
    if kind is EventType.TRANSFER and values.get("counterparty_id") == values.get("customer_id"):
        issues.append(
            _issue("counterparty_id", "invalid_value", "a transfer goes to another customer")
        )


def _build(kind: EventType, values: Mapping[str, object]) -> BehaviourEvent:
    # Every value was converted to its field's type above; the casts only tell mypy so.
    get = values.get
    channel, occupation, education = get("channel"), get("occupation"), get("education")
    return BehaviourEvent(
        event_id=cast(str, values["event_id"]),
        customer_id=cast(str, values["customer_id"]),
        event_type=kind,
        occurred_at=cast(datetime, values["occurred_at"]),
        source=cast(str, values["source"]),
        schema_version=cast(int, get("schema_version", SCHEMA_VERSION)),
        currency=Currency(cast(str, get("currency", Currency.CNY.value))),
        amount_minor=cast("int | None", get("amount_minor")),
        category=cast("str | None", get("category")),
        channel=Channel(cast(str, channel)) if channel else None,
        reference_id=cast("str | None", get("reference_id")),
        counterparty_id=cast("str | None", get("counterparty_id")),
        device_id=cast("str | None", get("device_id")),
        is_sim_change=cast("bool | None", get("is_sim_change")),
        location=cast("str | None", get("location")),
        product_id=cast("str | None", get("product_id")),
        due_on=cast("date | None", get("due_on")),
        amount_due_minor=cast("int | None", get("amount_due_minor")),
        credit_limit_minor=cast("int | None", get("credit_limit_minor")),
        occupation=Occupation(cast(str, occupation)) if occupation else None,
        education=Education(cast(str, education)) if education else None,
        is_real_name_verified=cast("bool | None", get("is_real_name_verified")),
    )
