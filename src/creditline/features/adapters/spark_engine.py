"""The Spark batch engine: the same feature query, run by Spark SQL, for populations at scale.

The query comes from `sql_compiler` with the Spark dialect, so Spark and DuckDB compute
from one set of definitions. Tests and the CLI use local mode; in production the session
comes from the cluster. The result is collected through Arrow into one Parquet (or CSV)
file, the same shape the DuckDB engine writes.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from creditline.features.adapters.sql_compiler import SPARK, events_query, feature_query
from creditline.features.domain.definitions import FEATURES, FeatureDefinition
from creditline.features.domain.events import EVENT_COLUMNS, day_number
from creditline.features.ports import BatchResult, ProgressCallback

_SPARK_TYPES = {
    "string": "string",
    "int64": "bigint",
    "bool": "boolean",
    "date": "date",
    "timestamp[us, UTC]": "timestamp",
}
_VIEW = "feature_events"
_PREPARED = "feature_events_cut"
_POLL_SECONDS = 0.5


def local_session(cores: int = 2, memory: str = "2g") -> SparkSession:
    """A local-mode session set up for the feature job: UTC, few shuffle partitions, no UI."""
    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("creditline-features")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cores * 2))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", memory)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def events_frame(spark: SparkSession, events: Path) -> DataFrame:
    """The event files with exactly `EVENT_COLUMNS` (columns absent from the files are NULL)."""
    if not events.exists():
        raise FileNotFoundError(f"no events at {events}")
    # mergeSchema: files may carry different subsets of the columns (DuckDB's engine reads
    # them with union_by_name); without it Spark takes one file's schema for all.
    raw = (
        spark.read.option("recursiveFileLookup", "true")
        .option("mergeSchema", "true")
        .parquet(str(events))
    )
    present = set(raw.columns)
    return raw.select(
        *(
            (F.col(name) if name in present else F.lit(None)).cast(_SPARK_TYPES[kind]).alias(name)
            for name, kind in EVENT_COLUMNS
        )
    )


class SparkEngine:
    name = "spark"

    def __init__(
        self,
        spark: SparkSession | None = None,
        features: tuple[FeatureDefinition, ...] = FEATURES,
    ) -> None:
        self._spark = spark
        self.features = features

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            self._spark = local_session()
        return self._spark

    def frame(self, events: Path, as_of: date) -> DataFrame:
        """The feature query over the cut events, which are cached once (every leaf reads them)."""
        events_frame(self.spark, events).createOrReplaceTempView(_VIEW)
        day = day_number(as_of)
        prepared = self.spark.sql(events_query(SPARK, _VIEW, day)).cache()
        prepared.createOrReplaceTempView(_PREPARED)
        query = feature_query(SPARK, _VIEW, day, self.features, prepared_events=_PREPARED)
        return self.spark.sql(query)

    def build(
        self,
        events: Path,
        as_of: date,
        out: Path,
        progress: ProgressCallback | None = None,
    ) -> BatchResult:
        frame = self.frame(events, as_of)
        table = _collect_with_progress(self.spark, frame, progress)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            pacsv.write_csv(table, out)
        else:
            pq.write_table(table, out)
        return BatchResult(out, table.num_rows, tuple(table.column_names))


def _collect_with_progress(
    spark: SparkSession, frame: DataFrame, progress: ProgressCallback | None
) -> pa.Table:
    result: list[pa.Table] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(frame.toArrow())
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run, name="spark-features")
    worker.start()
    tracker = spark.sparkContext.statusTracker()
    while worker.is_alive():
        worker.join(_POLL_SECONDS)
        if progress is not None and worker.is_alive():
            progress(_share_done(tracker))
    if failure:
        raise failure[0]
    if progress is not None:
        progress(1.0)
    return result[0]


def _share_done(tracker: object) -> float:
    """Completed tasks over known tasks of the running stages (a rough, monotone-ish share)."""
    stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]  # type: ignore[attr-defined]
    known = [s for s in stages if s is not None and s.numTasks > 0]
    if not known:
        return 0.0
    return float(sum(s.numCompletedTasks for s in known)) / float(sum(s.numTasks for s in known))
