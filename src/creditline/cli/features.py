"""`creditline features list | build | rebuild-online`: the credit-profile features, batch
builds, and the rebuild of the online state (Redis) from the stored events."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from creditline.bootstrap import build_container
from creditline.config import Settings
from creditline.features import service
from creditline.features.ports import BatchEngine
from creditline.shared.errors import InvalidInputError
from creditline.storage import migrate

app = typer.Typer(
    help="Credit-profile features: definitions and batch builds.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


class EngineName(StrEnum):
    DUCKDB = "duckdb"
    SPARK = "spark"


@app.command("list")
def list_features(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per feature.")] = False,
) -> None:
    """Print every feature: name, group, window, unit and description."""
    features = service.list_features()
    if as_json:
        for feature in features:
            record = {
                "name": feature.name,
                "group": feature.group.value,
                "window_days": feature.window_days,
                "unit": feature.unit.value,
                "description": feature.description,
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    table = Table(title=f"{len(features)} features")
    for column in ("name", "group", "window", "unit", "description"):
        table.add_column(column)
    for feature in features:
        window = f"{feature.window_days}d" if feature.window_days else "-"
        table.add_row(
            feature.name, feature.group.value, window, feature.unit.value, feature.description
        )
    out.print(table)


def _engine(name: EngineName, threads: int | None, memory_limit: str | None) -> BatchEngine:
    if name is EngineName.SPARK:
        from creditline.features.adapters.spark_engine import SparkEngine

        return SparkEngine()
    from creditline.features.adapters.duckdb_engine import DuckDbEngine

    return DuckDbEngine(threads=threads, memory_limit=memory_limit)


@app.command("build")
def build(
    as_of: Annotated[
        datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Use events before this date.")
    ],
    events: Annotated[
        Path, typer.Option(help="Parquet events: a file or a directory tree (e.g. simulate's).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Output file: .parquet or .csv")],
    engine: Annotated[EngineName, typer.Option(help="Batch engine.")] = EngineName.DUCKDB,
    threads: Annotated[
        int | None, typer.Option(min=1, help="DuckDB worker threads (default: one per core).")
    ] = None,
    memory_limit: Annotated[
        str | None, typer.Option(help="DuckDB memory limit, e.g. 4GB (default: 80% of RAM).")
    ] = None,
) -> None:
    """Compute every feature for every customer as of a date and write one row each."""
    chosen = _engine(engine, threads, memory_limit)
    on: date = as_of.date()
    with Progress(
        TextColumn(f"[bold]features {engine.value}[/bold] as of {on}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("build", total=1.0)
        try:
            result = service.build_batch(
                chosen,
                events=events,
                as_of=on,
                out=out_file,
                progress=lambda share: progress.update(task, completed=share),
            )
        except InvalidInputError as error:
            progress.stop()
            for issue in error.issues:
                err.print(f"[red]error:[/red] --{issue.field}: {issue.message}", highlight=False)
            raise typer.Exit(2) from error
    typer.echo(
        f"wrote {result.customers} customers × {len(result.columns) - 1} features to {result.out}"
    )


@app.command("rebuild-online")
def rebuild_online(
    batch: Annotated[int, typer.Option(min=1, help="Events folded per batch.")] = 10_000,
) -> None:
    """Rebuild the online feature state in Redis from every stored event.

    For a Redis that was flushed, replaced, or written under an earlier key layout. Run it
    with ingestion paused: the state is cleared first, then every stored event is folded in
    again, so an event stored meanwhile could be counted twice. The in-process store needs
    no rebuild (each server builds it from the event table when it starts).
    """
    settings = Settings()
    if not settings.redis_url:
        typer.echo(
            "online features are kept in process: each server builds them from the stored "
            "events when it starts, so there is nothing to rebuild"
        )
        return
    from creditline.features.adapters.parquet_events import event_from_record
    from creditline.features.adapters.redis_store import RedisFeatureStore

    container = build_container(settings)
    try:
        if not migrate.is_up_to_date(container.engine):
            err.print(
                "[red]error:[/red] the database schema is not up to date: "
                "run `creditline db upgrade`"
            )
            raise typer.Exit(2)
        store = container.feature_store()
        assert isinstance(store, RedisFeatureStore)
        events = container.event_store()
        total = events.count()
        store.clear()
        with Progress(
            TextColumn("[bold]online features[/bold] from stored events"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            task = progress.add_task("rebuild", total=total)
            stream = events.scan(batch_rows=batch)
            while chunk := list(itertools.islice(stream, batch)):
                store.apply(event_from_record(e.as_record()) for e in chunk)
                progress.advance(task, len(chunk))
    finally:
        container.close()
    typer.echo(f"rebuilt the online features from {total:,} stored events")
