"""Policies as GoRules JDM files, evaluated in process by zen-engine.

A policy folder (`policies/v1/`) holds one JDM file per table (`admission.json`,
`score_cutoff.json`, `limit.json`, `price.json`) and `parameters.json`. The version of a
policy is the folder's name plus a digest of every file in it, so editing a table gives
decisions a new version even if the folder keeps its name. Decision content is parsed
once and served from memory (`ZenEngine.evaluate` with a caching loader takes ~10-25 µs;
building a decision per call would take ~66 µs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zen

from creditline.decisioning.domain.policy import TABLES, PolicyError, PolicyParameters, TableResult


class ZenPolicyEngine:
    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise PolicyError(f"no policy folder at {folder}")
        self.folder = folder
        digest = hashlib.sha256()
        self._contents: dict[str, Any] = {}
        for table in TABLES:
            path = folder / f"{table}.json"
            if not path.exists():
                raise PolicyError(f"policy {folder.name} has no {path.name}")
            raw = path.read_bytes()
            digest.update(path.name.encode() + b"\x00" + raw)
            try:
                json.loads(raw)
            except json.JSONDecodeError as error:
                raise PolicyError(f"{path}: not JSON: {error}") from error
            self._contents[table] = zen.ZenDecisionContent(raw.decode())
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
        response = self._engine.evaluate(table, dict(context), {"trace": True})
        result = response["result"]
        rows = tuple(result) if isinstance(result, list) else ((result,) if result else ())
        return TableResult(table, rows, _fired(response.get("trace", {})))


def _fired(trace: Mapping[str, Any]) -> tuple[str, ...]:
    """Ids of the rules that fired, in row order, from zen-engine's trace."""
    fired: list[str] = []
    for node in trace.values():
        data = node.get("traceData")
        entries = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        for entry in entries:
            rule = entry.get("rule") if isinstance(entry, dict) else None
            if isinstance(rule, dict) and "_id" in rule:
                fired.append(str(rule["_id"]))
    return tuple(fired)


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
