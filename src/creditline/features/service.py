"""Feature-store use cases: list the definitions, build a batch, feed and read online state.

Each is a function of the engine or store it is given (chosen by `bootstrap` or the CLI);
none picks an adapter itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from creditline.features.domain.definitions import FEATURES, FeatureDefinition
from creditline.features.domain.events import FeatureEvent
from creditline.features.domain.online import FeatureVector
from creditline.features.ports import (
    BatchEngine,
    BatchResult,
    OnlineFeatureStore,
    ProgressCallback,
)
from creditline.shared.errors import FieldIssue, InvalidInputError

OUTPUT_SUFFIXES = (".parquet", ".csv")


def list_features() -> tuple[FeatureDefinition, ...]:
    return FEATURES


def build_batch(
    engine: BatchEngine,
    *,
    events: Path,
    as_of: date,
    out: Path,
    progress: ProgressCallback | None = None,
) -> BatchResult:
    """Every feature for every customer with an event before `as_of`, written to `out`."""
    issues = []
    if not events.exists():
        issues.append(FieldIssue("events", "not_found", f"no events at {events}"))
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        issues.append(
            FieldIssue("out", "unsupported_format", f"the output must end in {OUTPUT_SUFFIXES}")
        )
    if issues:
        raise InvalidInputError(issues)
    return engine.build(events, as_of, out, progress)


def record_events(store: OnlineFeatureStore, events: Iterable[FeatureEvent]) -> int:
    """Fold accepted events into the online state (each event once: ingestion de-duplicates)."""
    return store.apply(events)


def customer_features(store: OnlineFeatureStore, customer_id: str, as_of: date) -> FeatureVector:
    """One customer's feature vector at decision time, from events before `as_of`."""
    return store.read(customer_id, as_of)
