"""The result of ingesting a batch: what was stored, skipped as a duplicate, or refused.

Every event of a batch ends in exactly one of three places: `accepted` (stored now),
`duplicates` (the same event, same id and same content, was stored before; a retry is
harmless), or `rejected` (with the event's index, the field at fault and the reason).
An id already stored with *different* content is rejected (code `conflict`), never
overwritten: behaviour events are append-only facts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused event: its position in the input, the field at fault and why."""

    index: int
    field: str
    code: str
    reason: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class IngestReport:
    accepted: int
    duplicates: int
    rejected: tuple[Rejection, ...]

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + len(self.rejected)

    def __add__(self, other: IngestReport) -> IngestReport:
        return IngestReport(
            self.accepted + other.accepted,
            self.duplicates + other.duplicates,
            self.rejected + other.rejected,
        )


EMPTY_REPORT = IngestReport(0, 0, ())


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What the store did with a batch of new events (all in one transaction)."""

    inserted: int
    #: The ids that were already stored, with the digest of the stored event.
    existing: dict[str, str]
