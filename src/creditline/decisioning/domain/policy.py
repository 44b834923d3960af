"""Policy parameters and results: what the versioned policy files say and what fired.

A `PolicySet` version names everything a decision depended on: the JDM tables and the
parameters file, hashed together. `TableResult` is what one decision table returned: the
output rows and the ids of the rules that fired (kept in the decision's trace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from creditline.shared.money import Currency, Money

TABLES = ("admission", "score_cutoff", "limit", "price")


class PolicyError(ValueError):
    """A policy file or a table's output is not what the pipeline can use."""


@dataclass(frozen=True, slots=True)
class PolicyParameters:
    """The numbers the law and the product fix (DOMAIN.md), stored with the policy."""

    required_consents: tuple[str, ...]
    product_min_limit: Money
    product_max_limit: Money
    customer_cap_absolute: Money
    income_cap_divisor: int
    limit_step: Money
    apr_cap: Decimal
    lpr_one_year: Decimal
    enforce_four_times_lpr: bool

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PolicyParameters:
        try:
            return cls(
                required_consents=tuple(str(c) for c in raw["required_consents"]),
                product_min_limit=Money.parse(raw["product_min_limit"], Currency.CNY),
                product_max_limit=Money.parse(raw["product_max_limit"], Currency.CNY),
                customer_cap_absolute=Money.parse(raw["customer_cap_absolute"], Currency.CNY),
                income_cap_divisor=int(raw["income_cap_divisor"]),
                limit_step=Money.parse(raw["limit_step"], Currency.CNY),
                apr_cap=Decimal(str(raw["apr_cap"])),
                lpr_one_year=Decimal(str(raw["lpr_one_year"])),
                enforce_four_times_lpr=bool(raw["enforce_four_times_lpr"]),
            )
        except (KeyError, ValueError, TypeError, InvalidOperation) as error:
            raise PolicyError(f"bad policy parameters: {type(error).__name__}: {error}") from error


_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def is_plain_path(field_: str) -> bool:
    """`applicant.age` is a path into the context; `score.value * 2` is an expression."""
    return bool(_PATH.match(field_))


def unknown_inputs(content: Mapping[str, Any], provided: frozenset[str]) -> list[str]:
    """The plain input fields (`applicant.age`) of a JDM file's decision tables that are not
    in `provided`. A row reading a field nobody provides never matches, silently; a policy
    written for other inputs (an older version's flags) must fail to load instead."""
    unknown: list[str] = []
    for node in content.get("nodes", []):
        if not isinstance(node, Mapping) or node.get("type") != "decisionTableNode":
            continue
        for column in node.get("content", {}).get("inputs", []):
            field_ = str(column.get("field", ""))
            if is_plain_path(field_) and field_ not in provided and field_ not in unknown:
                unknown.append(field_)
    return unknown


@dataclass(frozen=True, slots=True)
class TableResult:
    table: str
    rows: tuple[Mapping[str, Any], ...]
    fired: tuple[str, ...] = field(default_factory=tuple)

    @property
    def first(self) -> Mapping[str, Any] | None:
        return self.rows[0] if self.rows else None


def decimal_output(row: Mapping[str, Any] | None, key: str, table: str) -> Decimal:
    """A decimal a table returned; tables return decimals as strings so no float creeps in."""
    if row is None or key not in row:
        raise PolicyError(f"table {table!r} returned no {key!r}")
    value = row[key]
    if not isinstance(value, str):
        raise PolicyError(f"table {table!r} must return {key!r} as a decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise PolicyError(f"table {table!r} returned {key!r}={value!r}, not a decimal") from None
