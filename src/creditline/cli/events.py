"""`creditline events load FILE`: bulk-load behaviour events from CSV, JSON Lines or Parquet.

Rows are validated and stored in batches, each batch in one transaction, so a crash loses
at most the batch in flight, and loading the same file again stores exactly what is
missing (the rest counts as duplicates). Bad rows are reported with their line number,
field and reason, on screen and in an error file. Exit codes: 0 when every row was stored,
skipped as a duplicate or reported; 2 when the input is unusable.
"""

from __future__ import annotations

import csv
import gc
import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from creditline.bootstrap import build_container
from creditline.config import Settings
from creditline.data.domain.ingest import EMPTY_REPORT, IngestReport, Rejection
from creditline.data.ports import EventStore
from creditline.storage import migrate

if TYPE_CHECKING:
    import pyarrow as pa

    from creditline.data.adapters.files import Row
    from creditline.data.service import CheckedBatch

    #: Rows of a CSV or JSON Lines file, or a Parquet batch (number of its first row, table).
    Batch = list[Row] | tuple[int, pa.Table]

# The file readers and the batch validation (pyarrow) are imported by the commands that
# read files, so that other commands start without them.

app = typer.Typer(help="Behaviour events: bulk loads.", no_args_is_help=True)
err = Console(stderr=True)
SHOWN_ERRORS = 20
#: The cyclic collector's first threshold while `events load` runs (Python's default: 700).
BULK_GC_THRESHOLD = 20_000


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="A .csv, .jsonl or .parquet file, or a folder")],
    errors: Annotated[
        Path | None, typer.Option(help="Where to write bad rows (default FILE.errors.csv).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=50_000, help="Rows per transaction.")] = 5_000,
    reader_process: Annotated[
        bool,
        typer.Option(
            help="Read and validate in a forked child process while batches are stored "
            "(uses a second core, for about a fifth more CPU in all)."
        ),
    ] = False,
) -> None:
    """Load FILE's events: new ones stored, duplicates skipped, bad rows reported."""
    from creditline.data.adapters.files import (
        UnusableInputError,
        file_format,
        read_parquet_tables,
        read_rows,
    )
    from creditline.data.prefetch import ChildProcessReader

    settings = Settings()
    batches: Iterator[Batch]
    try:
        if file_format(file) == "parquet":
            batches = read_parquet_tables(file, batch)
        else:
            batches = _chunks(read_rows(file), batch)
    except UnusableInputError as error:
        _fail(str(error))
    # With --reader-process the file's batches are read and validated in a forked child
    # (made before the container, so that no pool or thread is forked with it) while this
    # process stores them: both halves hold the GIL, so only two processes overlap them
    # (docs/ingestion.md).
    checked: Iterator[CheckedBatch] = _checked(batches)
    with ExitStack() as stack:
        # A bulk load makes and drops millions of short-lived objects; with the default
        # threshold (700) the cyclic collector ran so often that it took 15-30 % of the
        # Redis writer's CPU (docs/benchmarks.md, seventh round). Young objects are still
        # collected, every BULK_GC_THRESHOLD allocations; the caller's setting comes back.
        stack.callback(gc.set_threshold, *gc.get_threshold())
        gc.set_threshold(BULK_GC_THRESHOLD, 10, 10)
        if reader_process and "fork" in multiprocessing.get_all_start_methods():
            checked = stack.enter_context(ChildProcessReader(checked))
        container = build_container(settings)
        try:
            if not migrate.is_up_to_date(container.engine):
                _fail("the database schema is not up to date: run `creditline db upgrade`")
            error_path = errors or file.with_name(file.name + ".errors.csv")
            # With Redis, the online features see each stored batch as it commits, as they
            # do for `POST /v1/events`; an in-process store is built from the table at
            # start-up.
            online = container.record_feature_table if settings.redis_url else None
            # A writer thread pays where the database, not the GIL, holds it (see
            # ingest_stream).
            overlap = container.engine.dialect.name != "sqlite"
            report = _load_all(checked, container.event_store(), error_path, online, overlap)
        except UnusableInputError as error:
            _fail(str(error))
        finally:
            container.close()
    typer.echo(
        f"{report.total} rows: {report.accepted} stored, {report.duplicates} duplicates, "
        f"{len(report.rejected)} rejected" + (f" (see {error_path})" if report.rejected else "")
    )


def _fail(reason: str) -> NoReturn:
    err.print(f"[red]error:[/red] {reason}", highlight=False)
    raise typer.Exit(2)


def _chunks(rows: Iterator[Row], size: int) -> Iterator[Batch]:
    pending: list[Row] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending


def _load_all(
    batches: Iterator[CheckedBatch],
    store: EventStore,
    error_path: Path,
    online: Callable[[pa.Table], None] | None = None,
    overlap: bool = True,
) -> IngestReport:
    from creditline.data.service import ingest_stream

    report = EMPTY_REPORT
    with (
        error_path.open("w", newline="", encoding="utf-8") as handle,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as bar,
    ):
        writer = csv.writer(handle)
        writer.writerow(["line", "event_id", "field", "code", "reason"])
        task = bar.add_task("loading", total=None)
        # The next batch is read and validated while the one before is being stored.
        stream = ingest_stream(store, batches, on_stored_table=online, overlap=overlap)
        for stored in stream:
            _write_rejections(writer, stored.rejected)
            report += stored
            bar.update(task, completed=report.total)
        bar.update(task, completed=report.total, total=report.total)
    if not report.rejected:
        error_path.unlink()
    for rejection in report.rejected[:SHOWN_ERRORS]:
        err.print(f"line {rejection.index}: {rejection.field}: {rejection.reason}", highlight=False)
    if len(report.rejected) > SHOWN_ERRORS:
        err.print(f"... and {len(report.rejected) - SHOWN_ERRORS} more in {error_path}")
    return report


def _checked(batches: Iterator[Batch]) -> Iterator[CheckedBatch]:
    """Each batch validated (one transaction's worth), its unreadable lines among the
    rows it refuses."""
    from creditline.data.adapters.files import RowError
    from creditline.data.service import check_batch, check_table

    for batch in batches:
        if isinstance(batch, tuple):  # a Parquet batch: Arrow columns, rows numbered from `first`
            first, table = batch
            yield check_table(table, first_index=first)
            continue
        unreadable = tuple(
            Rejection(line, row.field, row.code, row.reason)
            for line, row in batch
            if isinstance(row, RowError)
        )
        records = [(line, row) for line, row in batch if not isinstance(row, RowError)]
        checked = check_batch([row for _, row in records], indexes=[line for line, _ in records])
        yield replace(checked, rejected=checked.rejected + unreadable)


def _write_rejections(writer: Any, rejected: tuple[Rejection, ...]) -> None:
    """A stored batch's bad rows (in line order) into the error file."""
    for rejection in rejected:
        writer.writerow(
            [
                rejection.index,
                rejection.event_id or "",
                rejection.field,
                rejection.code,
                rejection.reason,
            ]
        )


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="A new folder for the Parquet files.")],
) -> None:
    """Export every stored event to month-partitioned Parquet (for DuckDB and Spark)."""
    from creditline.data.adapters.parquet_archive import export_events

    container = build_container(Settings())
    try:
        exported = export_events(container.engine, out)
    except FileExistsError as error:
        _fail(str(error))
    finally:
        container.close()
    typer.echo(f"{exported} events -> {out}")
