"""Policy test cases: run one decision table over examples and show what differs.

A risk analyst edits a table and keeps a CSV of cases beside it. Input columns are the
dotted paths the table reads (`applicant.age`); expected outputs are columns named
`expect.<field>` (`expect.code`). A `collect` table's several rows are compared as a
`|`-joined list, in row order. An empty expected cell means "no row matched".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EXPECT = "expect."


@dataclass(frozen=True, slots=True)
class PolicyCase:
    line: int
    inputs: Mapping[str, Any]
    expected: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: PolicyCase
    actual: Mapping[str, str]

    @property
    def differences(self) -> dict[str, tuple[str, str]]:
        return {
            key: (want, self.actual.get(key, ""))
            for key, want in self.case.expected.items()
            if self.actual.get(key, "") != want
        }

    @property
    def passed(self) -> bool:
        return not self.differences


def parse_cell(text: str) -> Any:
    """A CSV cell as JSON when it reads as JSON (numbers, true/false), else as text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"applicant.age": 30} → {"applicant": {"age": 30}}."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def case_from_row(line: int, row: Mapping[str, str]) -> PolicyCase:
    inputs = {
        k: parse_cell(v) for k, v in row.items() if not k.startswith(EXPECT) and v.strip() != ""
    }
    expected = {
        k.removeprefix(EXPECT): (v or "").strip() for k, v in row.items() if k.startswith(EXPECT)
    }
    return PolicyCase(line, nest(inputs), expected)


def flatten_outputs(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> dict[str, str]:
    return {field: "|".join(_text(row.get(field)) for row in rows) for field in fields}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
