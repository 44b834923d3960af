"""Ingest a batch of behaviour events: validate each, store the new ones exactly once.

The rule it keeps: every input event is counted exactly once, as accepted, duplicate or
rejected (with index, field and reason), and an accepted event is durable before the
call returns. A batch is stored in one transaction (`EventStore.append`), so a crash
leaves either the whole batch or none of it; loading the same input again then stores
what is missing and counts the rest as duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from creditline.data.domain.events import BehaviourEvent, parse_event
from creditline.data.domain.ingest import IngestReport, Rejection
from creditline.data.ports import EventStore
from creditline.shared.errors import InvalidInputError

CONFLICT_REASON = "event_id was already used for an event with different content"


def ingest_batch(
    store: EventStore,
    raws: Sequence[Mapping[str, object]],
    *,
    indexes: Sequence[int] | None = None,
    on_stored: Callable[[Sequence[BehaviourEvent]], None] | None = None,
) -> IngestReport:
    """Validate and store `raws`; `indexes` (default 0, 1, …) name each event in the report.

    `on_stored` receives the events this call stored (never a duplicate), after they are
    durable: that is how the online feature state sees each event once.
    """
    positions = list(indexes) if indexes is not None else list(range(len(raws)))
    if len(positions) != len(raws):
        raise ValueError("indexes must name every event")
    rejected: list[Rejection] = []
    fresh: dict[str, tuple[int, BehaviourEvent]] = {}
    duplicates = 0
    for position, raw in zip(positions, raws, strict=True):
        try:
            event = parse_event(raw)
        except InvalidInputError as error:
            rejected.append(_rejection(position, raw, error))
            continue
        earlier = fresh.get(event.event_id)
        if earlier is None:
            fresh[event.event_id] = (position, event)
        elif _same(earlier[1], event):
            duplicates += 1
        else:
            rejected.append(_conflict(position, event.event_id))
    result = store.append([event for _, event in fresh.values()])
    for event_id, stored_digest in result.existing.items():
        position, event = fresh[event_id]
        if stored_digest == event.digest():
            duplicates += 1
        else:
            rejected.append(_conflict(position, event_id))
    rejected.sort(key=lambda rejection: rejection.index)
    if on_stored is not None:
        stored = [
            event for event_id, (_, event) in fresh.items() if event_id not in result.existing
        ]
        if stored:
            on_stored(stored)
    return IngestReport(result.inserted, duplicates, tuple(rejected))


def _same(first: BehaviourEvent, second: BehaviourEvent) -> bool:
    """Equal content; instants compare as instants, whatever offset they were written in."""
    return first == second


def _rejection(position: int, raw: Mapping[str, object], error: InvalidInputError) -> Rejection:
    issue = error.issues[0]
    reason = "; ".join(f"{i.field}: {i.message}" for i in error.issues)
    event_id = raw.get("event_id")
    return Rejection(
        position, issue.field, issue.code, reason, event_id if isinstance(event_id, str) else None
    )


def _conflict(position: int, event_id: str) -> Rejection:
    return Rejection(position, "event_id", "conflict", CONFLICT_REASON, event_id)
