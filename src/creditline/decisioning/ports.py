"""What decisioning needs from outside: a policy evaluator and a scorer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from creditline.decisioning.domain.application import ScoreResult
from creditline.decisioning.domain.policy import PolicyParameters, TableResult


class PolicyEngine(Protocol):
    @property
    def version(self) -> str:
        """Names the exact policy files a decision was made under."""
        ...

    @property
    def parameters(self) -> PolicyParameters: ...

    def evaluate(self, table: str, context: Mapping[str, Any]) -> TableResult: ...


class Scorer(Protocol):
    def score(self, features: Mapping[str, float | None]) -> ScoreResult: ...
