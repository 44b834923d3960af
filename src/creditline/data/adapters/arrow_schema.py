"""The behaviour-event schema as Arrow types: what the Parquet files on disk contain.

One column per `EVENT_FIELDS` entry, in the same order, with the same names as the SQL
table, so that DuckDB, Spark, the feature store and `creditline events load` read the
simulator's files and the ingested archive the same way. `write_partitions` writes a
table into `event_month=YYYY-MM` folders (the month of `occurred_at` in China time, UTC+8
all year).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Defined next to the batch validation, which builds tables of this schema; re-exported.
from creditline.data.columnar import ARROW_TYPES, EVENT_SCHEMA

__all__ = ["ARROW_TYPES", "EVENT_SCHEMA", "write_partitions"]

DAY_MICROS = 86_400_000_000
CHINA_OFFSET_MICROS = 8 * 3_600_000_000
#: Low-cardinality columns: dictionary encoding makes them small and fast to write.
DICTIONARY_COLUMNS = (
    "customer_id",
    "event_type",
    "source",
    "currency",
    "category",
    "channel",
    "location",
    "occupation",
    "education",
)


def write_partitions(table: pa.Table, root: Path, name: str) -> int:
    """Write `table` into `event_month=YYYY-MM` folders; returns the number of files."""
    local = pc.add(table.column("occurred_at").cast(pa.int64()), CHINA_OFFSET_MICROS)
    days = pc.divide(local, DAY_MICROS).to_numpy()
    months = (np.datetime64("1970-01-01") + days.astype("timedelta64[D]")).astype("datetime64[M]")
    written = 0
    for month in np.unique(months):
        mask = pa.array(months == month)
        folder = root / f"event_month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.filter(mask),
            folder / f"{name}.parquet",
            compression="snappy",
            use_dictionary=list(DICTIONARY_COLUMNS),
        )
        written += 1
    return written
