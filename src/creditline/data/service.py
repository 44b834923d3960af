"""Ingest a batch of behaviour events: validate each, store the new ones exactly once.

The rule it keeps: every input event is counted exactly once, as accepted, duplicate or
rejected (with index, field and reason), and an accepted event is durable before the
call returns. A batch is stored in one transaction (`EventStore.append`), so a crash
leaves either the whole batch or none of it; loading the same input again then stores
what is missing and counts the rest as duplicates.

Validation runs over the whole batch at once (`columnar.validate_batch`, which agrees
with `parse_event` row for row), and duplicates are told apart by digest: the same id
with the same digest is a harmless repeat, with another digest a conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from creditline.data.columnar import ValidBatch, validate_batch, validate_table
from creditline.data.domain.events import BehaviourEvent
from creditline.data.domain.ingest import AppendResult, IngestReport, Rejection
from creditline.data.ports import BulkEventStore, EventStore
from creditline.shared.errors import InvalidInputError

CONFLICT_REASON = "event_id was already used for an event with different content"


def ingest_batch(
    store: EventStore,
    raws: Sequence[Mapping[str, object]],
    *,
    indexes: Sequence[int] | None = None,
    on_stored: Callable[[Sequence[BehaviourEvent]], None] | None = None,
    on_stored_table: Callable[[pa.Table], None] | None = None,
) -> IngestReport:
    """Validate and store `raws`; `indexes` (default 0, 1, …) name each event in the report.

    `on_stored` receives the events this call stored (never a duplicate), after they are
    durable: that is how the online feature state sees each event once. `on_stored_table`
    receives the same rows as one Arrow table (the columns of `ValidBatch.table`), for a
    consumer that folds columns rather than objects.
    """
    positions = list(indexes) if indexes is not None else list(range(len(raws)))
    if len(positions) != len(raws):
        raise ValueError("indexes must name every event")
    checked = validate_batch(raws)
    rejected = [
        _rejection(positions[i], raws[i].get("event_id"), error) for i, error in checked.invalid
    ]
    return _store(store, checked.valid, positions, rejected, on_stored, on_stored_table)


def ingest_table(
    store: EventStore,
    table: pa.Table,
    *,
    first_index: int = 0,
    on_stored: Callable[[Sequence[BehaviourEvent]], None] | None = None,
    on_stored_table: Callable[[pa.Table], None] | None = None,
) -> IngestReport:
    """`ingest_batch` for events given as Arrow columns (a batch of a Parquet file); row
    `i` is named `first_index + i` in the report."""
    positions = list(range(first_index, first_index + table.num_rows))
    checked = validate_table(table)
    ids = table.column("event_id") if "event_id" in table.column_names else None
    rejected = [
        _rejection(positions[i], ids[i].as_py() if ids is not None else None, error)
        for i, error in checked.invalid
    ]
    return _store(store, checked.valid, positions, rejected, on_stored, on_stored_table)


def _store(
    store: EventStore,
    valid: ValidBatch,
    positions: Sequence[int],
    rejected: list[Rejection],
    on_stored: Callable[[Sequence[BehaviourEvent]], None] | None,
    on_stored_table: Callable[[pa.Table], None] | None = None,
) -> IngestReport:
    """Store the valid events once each: repeats inside the batch and ids already stored
    count as duplicates when their digest matches, as conflicts when it does not."""
    duplicates = 0
    first: dict[str, int] | None = None
    digests: list[str] | None = None
    if pc.count_distinct(valid.table.column("event_id")).as_py() == len(valid):
        fresh = valid  # the common case, told by Arrow: no id repeats inside the batch
    else:
        ids, digests = valid.event_ids, valid.digests
        first = {}
        for row, (event_id, digest) in enumerate(zip(ids, digests, strict=True)):
            earlier = first.get(event_id)
            if earlier is None:
                first[event_id] = row
            elif digests[earlier] == digest:
                duplicates += 1
            else:
                rejected.append(_conflict(positions[valid.positions[row]], event_id))
        fresh = valid if len(first) == len(valid) else valid.take(list(first.values()))
    result = _append(store, fresh)
    if result.existing:
        if first is None or digests is None:
            first = {event_id: row for row, event_id in enumerate(valid.event_ids)}
            digests = valid.digests
        for event_id, stored_digest in result.existing.items():
            row = first[event_id]
            if stored_digest == digests[row]:
                duplicates += 1
            else:
                rejected.append(_conflict(positions[valid.positions[row]], event_id))
    rejected.sort(key=lambda rejection: rejection.index)
    if (on_stored is not None or on_stored_table is not None) and result.inserted:
        stored = fresh
        if result.existing:
            stored = fresh.take(
                [row for row, i in enumerate(fresh.event_ids) if i not in result.existing]
            )
        if on_stored is not None:
            on_stored(stored.events())
        if on_stored_table is not None:
            on_stored_table(stored.table)
    return IngestReport(result.inserted, duplicates, tuple(rejected))


def _append(store: EventStore, batch: ValidBatch) -> AppendResult:
    if isinstance(store, BulkEventStore):
        return store.append_table(batch.table)
    return store.append(batch.events())


def _rejection(position: int, event_id: object, error: InvalidInputError) -> Rejection:
    issue = error.issues[0]
    reason = "; ".join(f"{i.field}: {i.message}" for i in error.issues)
    return Rejection(
        position, issue.field, issue.code, reason, event_id if isinstance(event_id, str) else None
    )


def _conflict(position: int, event_id: str) -> Rejection:
    return Rejection(position, "event_id", "conflict", CONFLICT_REASON, event_id)
