"""Ingest a batch of behaviour events: validate each, store the new ones exactly once.

The rule it keeps: every input event is counted exactly once, as accepted, duplicate or
rejected (with index, field and reason), and an accepted event is durable before the
call returns. A batch is stored in one transaction (`EventStore.append`), so a crash
leaves either the whole batch or none of it; loading the same input again then stores
what is missing and counts the rest as duplicates.

Validation runs over the whole batch at once (`columnar.validate_batch`, which agrees
with `parse_event` row for row), and duplicates are told apart by digest: the same id
with the same digest is a harmless repeat, with another digest a conflict.

A load of many batches (`ingest_stream`) may validate the next batch while one writer
thread stores the one before (`overlap`, for PostgreSQL; a `StagedEventStore` encodes the
batch for the database on the caller's thread, so the writer only waits on the
database): the batches are still stored one at a time, in order, each in its own
transaction and reported only once durable, so the rule above holds batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from creditline.data.columnar import ValidBatch, validate_batch, validate_table
from creditline.data.domain.events import BehaviourEvent
from creditline.data.domain.ingest import AppendResult, IngestReport, Rejection
from creditline.data.ports import BulkEventStore, EventStore, StagedEventStore
from creditline.shared.errors import InvalidInputError

CONFLICT_REASON = "event_id was already used for an event with different content"


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A validated batch, ready to store: its valid rows, the name of each input row in
    the report (`indexes`), and the rows refused by validation."""

    valid: ValidBatch
    indexes: Sequence[int]
    rejected: tuple[Rejection, ...]


def check_batch(
    raws: Sequence[Mapping[str, object]], *, indexes: Sequence[int] | None = None
) -> CheckedBatch:
    """Validate `raws`; `indexes` (default 0, 1, …) name each event in the report."""
    positions = list(indexes) if indexes is not None else list(range(len(raws)))
    if len(positions) != len(raws):
        raise ValueError("indexes must name every event")
    checked = validate_batch(raws)
    rejected = tuple(
        _rejection(positions[i], raws[i].get("event_id"), error) for i, error in checked.invalid
    )
    return CheckedBatch(checked.valid, positions, rejected)


def check_table(table: pa.Table, *, first_index: int = 0) -> CheckedBatch:
    """`check_batch` for events given as Arrow columns (a batch of a Parquet file); row
    `i` is named `first_index + i` in the report."""
    positions = range(first_index, first_index + table.num_rows)
    checked = validate_table(table)
    ids = table.column("event_id") if "event_id" in table.column_names else None
    rejected = tuple(
        _rejection(positions[i], ids[i].as_py() if ids is not None else None, error)
        for i, error in checked.invalid
    )
    return CheckedBatch(checked.valid, positions, rejected)


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
    plan = _plan(check_batch(raws, indexes=indexes))
    return _settle(plan, _append(store, plan.fresh), on_stored, on_stored_table)


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
    plan = _plan(check_table(table, first_index=first_index))
    return _settle(plan, _append(store, plan.fresh), on_stored, on_stored_table)


def ingest_stream(
    store: EventStore,
    batches: Iterable[CheckedBatch],
    *,
    on_stored: Callable[[Sequence[BehaviourEvent]], None] | None = None,
    on_stored_table: Callable[[pa.Table], None] | None = None,
    overlap: bool = True,
) -> Generator[IngestReport, None, None]:
    """`ingest_batch` for each of `batches` in turn, one report each, in order; the next
    batch is taken from `batches` (so read and validated, when it is a lazy iterator of
    `check_batch` calls) while the one before is being stored.

    The next batch is also planned and, for a `StagedEventStore`, encoded for the
    database (`stage_table`) on the caller's thread; storing happens on one writer
    thread, one batch at a time and in order, one transaction each, exactly as a loop of
    `ingest_batch` calls would: a batch goes to
    the writer only after the previous one's result is back and its report was taken,
    and a report (and `on_stored`, in this thread) comes only after its batch is
    durable. So a consumer that stops taking reports leaves no batch stored unreported,
    and an error in the writer is raised here, at its batch's report. An error while
    taking the next batch is raised after the report of the batch in the writer's hands
    (as a loop would report that batch before reading the next): nothing is left
    running.

    `overlap=False` stores each batch on the caller's thread instead, with the same
    reports: on SQLite, whose driver takes the GIL back for every row it inserts, a writer
    thread beside Python validation only adds hand-overs (measured: 29 % more CPU for a
    Parquet load), while on PostgreSQL the writer waits on the server and the overlap
    pays."""
    if not overlap:
        for checked in batches:
            done = _plan(checked)
            report = _settle(done, _append(store, done.fresh), on_stored, on_stored_table)
            # The batch's columns are let go before the next batch is read, as they would
            # be after a call of `ingest_table`: one batch in memory at a time, not two.
            checked = done = None  # type: ignore[assignment]
            yield report
        return
    batches = iter(batches)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-writer") as writer:
        pending: tuple[_Plan, Future[AppendResult]] | None = None
        while True:
            try:
                # Read, validated, planned and encoded (`_staged`) while `pending` is stored.
                batch = next(batches, None)
                staged = None if batch is None else _staged(store, _plan(batch))
            except BaseException:
                if pending is not None:  # its report first, as a loop of batches would
                    yield _settle(pending[0], pending[1].result(), on_stored, on_stored_table)
                raise
            if pending is not None:
                yield _settle(pending[0], pending[1].result(), on_stored, on_stored_table)
            if staged is None:
                return
            plan, store_it = staged
            pending = plan, writer.submit(store_it)


def _staged(store: EventStore, plan: _Plan) -> tuple[_Plan, Callable[[], AppendResult]]:
    """The plan and the call that stores it: a `StagedEventStore` encodes the batch now,
    on the caller's thread, so that the writer thread only waits on the database (a
    writer that also computes contends for the GIL with the validation beside it)."""
    if isinstance(store, StagedEventStore):
        return plan, store.stage_table(plan.fresh.table)
    return plan, partial(_append, store, plan.fresh)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A batch with the repeats inside it told apart: `fresh` (each id once) goes to the
    store; `first` maps each id to its first row (None when no id repeats)."""

    batch: CheckedBatch
    fresh: ValidBatch
    first: dict[str, int] | None
    digests: list[str] | None
    duplicates: int
    rejected: tuple[Rejection, ...]


def _plan(batch: CheckedBatch) -> _Plan:
    """Repeats inside the batch count as duplicates when their digest matches the first
    row with that id, as conflicts when it does not; the first row of each id is kept."""
    valid, positions = batch.valid, batch.indexes
    if pc.count_distinct(valid.table.column("event_id")).as_py() == len(valid):
        # The common case, told by Arrow: no id repeats inside the batch.
        return _Plan(batch, valid, None, None, 0, batch.rejected)
    rejected = list(batch.rejected)
    ids, digests = valid.event_ids, valid.digests
    first: dict[str, int] = {}
    duplicates = 0
    for row, (event_id, digest) in enumerate(zip(ids, digests, strict=True)):
        earlier = first.get(event_id)
        if earlier is None:
            first[event_id] = row
        elif digests[earlier] == digest:
            duplicates += 1
        else:
            rejected.append(_conflict(positions[valid.positions[row]], event_id))
    fresh = valid if len(first) == len(valid) else valid.take(list(first.values()))
    return _Plan(batch, fresh, first, digests, duplicates, tuple(rejected))


def _settle(
    plan: _Plan,
    result: AppendResult,
    on_stored: Callable[[Sequence[BehaviourEvent]], None] | None,
    on_stored_table: Callable[[pa.Table], None] | None,
) -> IngestReport:
    """The batch's report once the store has answered: ids it already held count as
    duplicates when their digest matches, as conflicts when it does not; the rows stored
    now go to `on_stored` and `on_stored_table`."""
    valid, positions = plan.batch.valid, plan.batch.indexes
    duplicates, rejected = plan.duplicates, list(plan.rejected)
    if result.existing:
        first, digests = plan.first, plan.digests
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
        stored = plan.fresh
        if result.existing:
            stored = stored.take(
                [row for row, i in enumerate(stored.event_ids) if i not in result.existing]
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
