"""What the behaviour-data capability needs from outside: a durable, append-only event store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from creditline.data.domain.events import BehaviourEvent
from creditline.data.domain.ingest import AppendResult


class EventStore(Protocol):
    """Append-only storage of behaviour events, keyed by `event_id`.

    `append` is atomic: either every new event of the call is stored (and durable when it
    returns) or none is. An id that is already stored is left alone and reported in
    `AppendResult.existing` with the stored event's digest, so that the caller can tell a
    harmless retry from a conflicting reuse of the id.
    """

    def append(self, events: Sequence[BehaviourEvent]) -> AppendResult: ...

    def count(self) -> int: ...

    def for_customer(self, customer_id: str) -> list[BehaviourEvent]: ...
