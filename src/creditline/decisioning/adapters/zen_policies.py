"""Policies as GoRules JDM files, evaluated in process by zen-engine.

A policy folder (`policies/v2/`) holds one JDM file per table (`admission.json`,
`score_cutoff.json`, `limit.json`, `price.json`) and `parameters.json`. The version of a
policy is the folder's name plus a digest of every file in it, so editing a table gives
decisions a new version even if the folder keeps its name. A table that reads a field the
pipeline does not provide fails to load (`policies/v1/`, kept unchanged so the decisions
made under it can be traced to their exact files, reads the fraud-ring and thin-file flags
that v2 turned into table rows). Decision content is parsed
once and served from memory (`ZenEngine.evaluate` with a caching loader takes ~10-25 µs;
building a decision per call would take ~66 µs).

Which rows fired is part of every decision's record. Asking zen-engine for its trace
doubles the cost of an evaluation (the trace copies every node's input and output into
Python objects), so instead, when a table is loaded, every decision-table row gets one
more output, `RULE_ID_FIELD`, whose value is the row's own `_id`: each output row then
names the rule that produced it. This is done in memory only; the files, and so the
policy version, stay as written.

A decision table is a pure function of the fields its columns read. When a table is only
decision tables over plain field paths (all of ours), its results are remembered by the
values of those fields (`memo_size` of them per policy): most applicants share an
admission profile, a tier's price, a score's cut-off, and each call into zen-engine is a
hand-off to its worker thread that costs far more than the evaluation under load.

A number is remembered by its class rather than its value where that is exact: when a
policy file is one decision table whose outputs are literals, and every cell of a field's
columns compares it with numbers only (`< 18`, `>= 0.5`, `[50000..150000)`, `620`), which
rows fire depends only on where the number lies among those numbers, so every income
between ¥50,000 and ¥150,000 shares the limit table's entry, and every score between 620
and 799 the price table's. A number within a billionth (relative) of one of them is
remembered by its exact value (zen-engine compares decimals, Python floats: the two could
disagree only there), and so is anything that is not a finite int or float.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import zen

from creditline.decisioning.domain.application import TABLE_FIELDS
from creditline.decisioning.domain.policy import (
    TABLES,
    PolicyError,
    PolicyParameters,
    TableResult,
    is_plain_path,
    unknown_inputs,
)


class ZenPolicyEngine:
    def __init__(self, folder: Path, *, memo_size: int = 4096) -> None:
        if not folder.is_dir():
            raise PolicyError(f"no policy folder at {folder}")
        self.folder = folder
        digest = hashlib.sha256()
        self._contents: dict[str, Any] = {}
        self._reads: dict[str, tuple[tuple[str, ...], ...] | None] = {}
        #: Per table, the numbers each field read is compared with (None: keyed by value).
        self._bounds: dict[str, tuple[tuple[float, ...] | None, ...]] = {}
        self._memo: dict[tuple[Any, ...], TableResult] = {}
        self._memo_size = memo_size
        for table in TABLES:
            path = folder / f"{table}.json"
            if not path.exists():
                raise PolicyError(f"policy {folder.name} has no {path.name}")
            raw = path.read_bytes()
            digest.update(path.name.encode() + b"\x00" + raw)
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError as error:
                raise PolicyError(f"{path}: not JSON: {error}") from error
            provided = TABLE_FIELDS[table]
            unknown = unknown_inputs(parsed, provided)
            if unknown:
                raise PolicyError(
                    f"{path} reads {', '.join(unknown)}, which the pipeline does not give "
                    f"the {table} table (it gives {', '.join(sorted(provided))})"
                )
            reads = self._reads[table] = fields_read(parsed)
            if reads is not None:
                classes = numeric_bounds(parsed)
                self._bounds[table] = tuple(classes.get(path) for path in reads)
            self._contents[table] = zen.ZenDecisionContent(json.dumps(with_rule_ids(parsed)))
        params_path = folder / "parameters.json"
        raw_params = params_path.read_bytes()
        digest.update(b"parameters.json\x00" + raw_params)
        self._parameters = PolicyParameters.from_mapping(json.loads(raw_params))
        self._version = f"{folder.name}+{digest.hexdigest()[:12]}"
        self._engine = zen.ZenEngine({"loader": self._load})

    def _load(self, key: str) -> Any:
        try:
            return self._contents[key]
        except KeyError:
            raise PolicyError(f"unknown policy table {key!r}") from None

    @property
    def version(self) -> str:
        return self._version

    @property
    def parameters(self) -> PolicyParameters:
        return self._parameters

    def evaluate(self, table: str, context: Mapping[str, Any]) -> TableResult:
        reads = self._reads.get(table)
        if reads is None or self._memo_size <= 0:
            return self._evaluate(table, context)
        key = (table, *map(_key, (_at(context, path) for path in reads), self._bounds[table]))
        known = self._memo.get(key)
        if known is not None:
            return known
        result = self._evaluate(table, context)
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[key] = result
        return result

    def _evaluate(self, table: str, context: Mapping[str, Any]) -> TableResult:
        result = self._engine.evaluate(table, dict(context))["result"]
        found = result if isinstance(result, list) else [result] if result else []
        rows: list[Mapping[str, Any]] = []
        fired: list[str] = []
        for index, row in enumerate(found):
            rule_id = row.pop(RULE_ID_FIELD, None) if isinstance(row, dict) else None
            fired.append(f"row-{index}" if rule_id is None else str(rule_id))
            rows.append(MappingProxyType(row) if isinstance(row, dict) else row)
        return TableResult(table, tuple(rows), tuple(fired))


_MISSING = object()
_PLAIN_NODES = {"inputNode", "outputNode", "decisionTableNode"}


def fields_read(content: Mapping[str, Any]) -> tuple[tuple[str, ...], ...] | None:
    """The field paths a JDM graph reads, split at the dots, when its result depends on
    nothing else: only decision tables whose columns are plain paths (None otherwise)."""
    paths: list[tuple[str, ...]] = []
    for node in content.get("nodes", []):
        kind = node.get("type") if isinstance(node, Mapping) else None
        if kind not in _PLAIN_NODES:
            return None
        if kind != "decisionTableNode":
            continue
        for column in node.get("content", {}).get("inputs", []):
            field_ = str(column.get("field", ""))
            if not is_plain_path(field_):
                return None
            parts = tuple(field_.split("."))
            if parts not in paths:
                paths.append(parts)
    return tuple(paths)


def _at(context: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = context
    for part in path:
        if type(node) is not dict and not isinstance(node, Mapping):
            return _MISSING
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return node
    return node


def _key(value: Any, bounds: tuple[float, ...] | None) -> Any:
    """A field's part of a memo key: the number's class among `bounds` where that is exact
    (see the module docstring), else the typed value."""
    # (`value - value == 0` leaves out infinities and NaN.)
    if bounds is not None and (type(value) is int or type(value) is float) and value - value == 0:
        at = bisect_right(bounds, value)
        below = bounds[at - 1] if at else None
        above = bounds[at] if at < len(bounds) else None
        if (below is None or value - below > _near(below)) and (
            above is None or above - value > _near(above)
        ):
            return at
    return _typed(value)


def _near(bound: float) -> float:
    return 1e-9 * max(1.0, abs(bound))


_NUMBER = r"-?\d+(?:\.\d+)?"
#: A cell that compares the field with a number (`< 18`, `>= 0.5`, `620`), or an interval
#: of two numbers (`[600..619]`, `[50000..150000)`, `(0..1]`).
_COMPARISON = re.compile(rf"\s*(?:<=|>=|<|>)?\s*({_NUMBER})\s*")
_INTERVAL = re.compile(rf"\s*[\[(\]]\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*[\])\[]\s*")
#: An output that is a constant: a plain string, a number, true, false, null.
_LITERAL = re.compile(rf'\s*(?:"[^"\\`$]*"|{_NUMBER}|true|false|null)?\s*')


def numeric_bounds(content: Mapping[str, Any]) -> dict[tuple[str, ...], tuple[float, ...]]:
    """The fields of a one-table JDM graph that its cells only compare with numbers, and
    those numbers, sorted (none when the graph is not one decision table with literal
    outputs, or a rule names a column the table does not have)."""
    tables = [
        node
        for node in content.get("nodes", [])
        if isinstance(node, Mapping) and node.get("type") == "decisionTableNode"
    ]
    if len(tables) != 1:
        return {}
    table = tables[0].get("content", {})
    columns = {str(c.get("id")): str(c.get("field", "")) for c in table.get("inputs", [])}
    outputs = {str(c.get("id")) for c in table.get("outputs", [])}
    bounds: dict[str, set[float]] = {field_: set() for field_ in columns.values()}
    for rule in table.get("rules", []):
        for cell, text in rule.items():
            if cell == "_id" or cell == "_description":
                continue
            if not isinstance(text, str):
                return {}
            if cell in outputs:
                if not _LITERAL.fullmatch(text):
                    return {}
                continue
            if cell not in columns:
                return {}
            field_ = columns[cell]
            if field_ not in bounds or not text.strip():
                continue
            numbers = _numbers(text)
            if numbers is None:
                del bounds[field_]
            else:
                bounds[field_].update(numbers)
    return {
        tuple(field_.split(".")): tuple(sorted(found))
        for field_, found in bounds.items()
        if is_plain_path(field_)
    }


def _numbers(cell: str) -> tuple[float, ...] | None:
    """The numbers a cell compares with, if it only compares with numbers."""
    for pattern in (_COMPARISON, _INTERVAL):
        matched = pattern.fullmatch(cell)
        if matched:
            found = tuple(float(n) for n in matched.groups())
            return found if all(math.isfinite(n) for n in found) else None
    return None


def _typed(value: Any) -> tuple[type, Any]:
    """A value as a memo key: its type too (True == 1 in Python, not in a table), and only
    scalars (anything else is keyed by its text, never by identity)."""
    if value is _MISSING or value is None or isinstance(value, bool | int | float | str):
        return (type(value), value)
    return (type(value), json.dumps(value, sort_keys=True, default=str))


RULE_ID_FIELD = "__rule_id"


def with_rule_ids(content: dict[str, Any]) -> dict[str, Any]:
    """The JDM content with each decision-table row also returning its `_id` as
    `RULE_ID_FIELD` (rows without an `_id` return nothing there)."""
    for node in content.get("nodes", []):
        if not isinstance(node, dict) or node.get("type") != "decisionTableNode":
            continue
        table = node.get("content", {})
        outputs = table.get("outputs", [])
        if any(o.get("field") == RULE_ID_FIELD for o in outputs):
            raise PolicyError(f"{RULE_ID_FIELD!r} is reserved and may not be a table output")
        outputs.append({"id": RULE_ID_FIELD, "name": "Rule id", "field": RULE_ID_FIELD})
        for rule in table.get("rules", []):
            if "_id" in rule:
                rule[RULE_ID_FIELD] = json.dumps(str(rule["_id"]))
    return content


def evaluate_file(path: Path, context: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Evaluate one JDM file (for `creditline policy test`): the output rows, in order."""
    try:
        content = zen.ZenDecisionContent(path.read_text())
    except (OSError, RuntimeError, ValueError) as error:
        raise PolicyError(f"cannot load {path}: {error}") from error
    engine = zen.ZenEngine({"loader": lambda _key: content})
    try:
        result = engine.evaluate(path.stem, dict(context))["result"]
    except RuntimeError as error:
        raise PolicyError(f"{path.name}: {error}") from error
    if isinstance(result, list):
        return list(result)
    return [result] if result else []
