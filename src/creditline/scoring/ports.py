"""What scoring needs from outside: a registry of trained model artefacts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class Role(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    version: str
    kind: str
    dataset: str
    created_at: str
    test_auc: float | None
    folder: Path
    role: Role | None


class ModelRegistry(Protocol):
    def register(self, artefact: Path) -> ModelEntry: ...

    def list(self) -> list[ModelEntry]: ...

    def get(self, version: str) -> ModelEntry: ...

    def promote(self, version: str, role: Role) -> ModelEntry: ...

    def holder(self, role: Role) -> ModelEntry | None: ...
