"""What the feature store needs from outside: batch engines and online state stores.

A batch engine computes every feature for every customer as of a date from the events
in a Parquet dataset; an online store keeps per-customer state up to date as events
arrive and reads one customer's vector without scanning its history. Both are fed the
same `FeatureDefinition`s, and a parity test holds them to the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from creditline.features.domain.events import FeatureEvent
from creditline.features.domain.online import FeatureVector

if TYPE_CHECKING:
    import pyarrow as pa

#: Called with the share of the work done so far, 0.0 … 1.0.
ProgressCallback = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch build wrote: where, how many customers, which columns."""

    out: Path
    customers: int
    columns: tuple[str, ...]


class BatchEngine(Protocol):
    name: str

    def build(
        self,
        events: Path,
        as_of: date,
        out: Path,
        progress: ProgressCallback | None = None,
    ) -> BatchResult:
        """Write one row per customer with an event before `as_of` to `out` (Parquet/CSV)."""
        ...


class OnlineFeatureStore(Protocol):
    def apply(self, events: Iterable[FeatureEvent]) -> int:
        """Fold accepted (already de-duplicated) events into the state; returns how many."""
        ...

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        """The customer's full feature vector from events before `as_of`."""
        ...

    def customers(self) -> list[str]:
        """Every customer with state, sorted."""
        ...


@runtime_checkable
class ColumnarFeatureStore(OnlineFeatureStore, Protocol):
    """An online store that also folds a batch given as an Arrow table (no object per event)."""

    def apply_table(self, table: pa.Table) -> int:
        """Fold the rows of a table of stored events (`EVENT_COLUMNS`; extra columns are
        ignored): the same state as `apply` of the same events; returns how many."""
        ...
