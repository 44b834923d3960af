"""`creditline simulate`: write a simulated population, its events and outcomes to a folder."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

from creditline.data.simulator.population import SimulationConfig
from creditline.data.simulator.run import simulate

err = Console(stderr=True)


def simulate_command(
    out: Annotated[Path, typer.Option(help="Output folder (must be new or empty).")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 10_000,
    months: Annotated[int, typer.Option(min=1, max=120, help="Months of behaviour.")] = 12,
    seed: Annotated[int, typer.Option(min=0, help="Random seed: same seed, same files.")] = 1,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM.")] = "2025-01",
    base_rate: Annotated[
        float, typer.Option(help="Share of customers 90+ DPD within 12 months (0.02-0.06).")
    ] = 0.04,
    chunk: Annotated[int, typer.Option(min=100, help="Customers per chunk (memory).")] = 50_000,
) -> None:
    """Simulate a population: date-partitioned Parquet events, customers, outcomes, demand.

    See docs/simulator.md for the model. Exit code 2 on unusable options.
    """
    try:
        year, month = (int(part) for part in start.split("-"))
        config = SimulationConfig(
            customers=customers,
            months=months,
            seed=seed,
            start_on=date(year, month, 1),
            base_rate=base_rate,
            chunk_customers=chunk,
        )
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from error
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("simulating", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            summary = simulate(config, out, progress=advance)
        except FileExistsError as error:
            err.print(f"[red]error:[/red] {error}", highlight=False)
            raise typer.Exit(2) from error
    typer.echo(
        f"{summary.customers} customers, {summary.events} events, "
        f"bad rate {summary.base_rate:.4f}, {summary.seconds:.1f} s -> {out}"
    )
