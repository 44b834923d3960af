"""What the behaviour-data capability needs from outside: a durable, append-only event store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from creditline.data.domain.events import BehaviourEvent
from creditline.data.domain.ingest import AppendResult

if TYPE_CHECKING:
    import pyarrow as pa


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


@runtime_checkable
class BulkEventStore(EventStore, Protocol):
    """An `EventStore` that also takes a validated batch as Arrow columns, with the same
    promises as `append` (atomic, exactly once by `event_id`, existing ids reported), so
    that a large batch never becomes one Python object per event."""

    def append_table(self, table: pa.Table) -> AppendResult:
        """`table`: the columns of `EVENT_SCHEMA` plus `digest`, distinct event ids."""
        ...


@runtime_checkable
class StagedEventStore(BulkEventStore, Protocol):
    """A `BulkEventStore` that splits `append_table` in two: `stage_table` does the CPU
    work of a batch (its encoding for the database) and returns the call that stores it
    (the transaction, which mostly waits on the database). A loader can then encode a
    batch on its own thread, beside its validation, and hand a writer thread only the
    waiting. The returned call has every promise of `append_table`."""

    def stage_table(self, table: pa.Table) -> Callable[[], AppendResult]: ...
