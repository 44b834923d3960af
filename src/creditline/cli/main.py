"""`creditline`: serve the API, migrate the database, and the capabilities' commands.

Each command is a few lines: read `Settings`, build the container, call a service.
Bad input exits with code 2 and a one-line reason; unexpected errors exit with 1.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from creditline import __version__
from creditline.cli import events, policy, simulate
from creditline.cli import features as features_cli
from creditline.cli import lending as lending_cli
from creditline.cli import model as model_cli
from creditline.config import Settings
from creditline.observability import configure_logging
from creditline.storage import migrate

app = typer.Typer(
    name="creditline",
    help="Instant consumer credit lines: scores, decisions, lending.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The system of record: schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
demo_app = typer.Typer(
    help="A working lender on a laptop: seed a champion model.", no_args_is_help=True
)
app.add_typer(demo_app, name="demo")
# Capability command groups are registered here, one line each.
app.add_typer(policy.app, name="policy")
app.command("simulate")(simulate.simulate_command)
app.add_typer(events.app, name="events")
app.add_typer(features_cli.app, name="features")
app.add_typer(model_cli.app, name="model")
app.add_typer(lending_cli.eod_app, name="eod")
app.add_typer(lending_cli.journal_app, name="journal")

console = Console(stderr=True)


def fail(reason: str, code: int = 2) -> typer.Exit:
    """Print a one-line reason and return the exit to raise (2 = bad input)."""
    console.print(f"[red]error:[/red] {reason}", highlight=False)
    return typer.Exit(code)


@app.command()
def version() -> None:
    """Print the creditline version."""
    typer.echo(__version__)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database (SQLite file by default)."""
    settings = Settings()
    url = settings.resolved_database_url
    try:
        migrate.upgrade(url)
    except Exception as error:
        raise fail(f"cannot migrate {_safe(url)}: {type(error).__name__}: {error}", 1) from error
    typer.echo(f"database at {_safe(url)} is up to date")


@demo_app.command("seed")
def demo_seed(
    customers: Annotated[int, typer.Option(min=500, help="Simulated customers.")] = 3000,
    seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 7,
) -> None:
    """Simulate a population, build its features, train and promote a champion scorecard.

    Does nothing when the registry already has a champion (later starts reuse it).
    """
    from creditline.jobs.seed_demo import seed_demo
    from creditline.shared.clock import SystemClock

    settings = Settings()
    console.print("checking for a champion model…", highlight=False)
    result = seed_demo(settings, SystemClock(), customers=customers, seed=seed)
    if result.created:
        typer.echo(f"trained and promoted {result.version} (test AUC {result.test_auc:.3f})")
    else:
        typer.echo(f"champion {result.version} is in place")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: CREDITLINE_HOST (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Default: CREDITLINE_PORT (8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before serving.")
    ] = True,
    app_factory: Annotated[
        str, typer.Option("--app", hidden=True, help="App factory (import string).")
    ] = "creditline.api.app:create_app",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs, health at /health, metrics at /metrics).

    With more than one worker, each listens on a socket of its own where the system
    allows it, so connections spread evenly over them (`creditline.cli.workers`)."""
    from creditline.cli import workers as worker_processes

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if migrate_first:
        migrate.upgrade(settings.resolved_database_url)
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(f"creditline {__version__} serving on http://{bind_host}:{bind_port}", err=True)
    typer.echo(f"  API docs: http://{bind_host}:{bind_port}/docs", err=True)
    sys.stderr.flush()
    code = worker_processes.serve(
        app_factory,
        host=bind_host,
        port=bind_port,
        workers=workers,
        echo=lambda line: typer.echo(line, err=True),
        access_log=False,
        log_config=None,  # keep our JSON logging (configure_logging) for uvicorn's lines too
        log_level=settings.log_level.lower(),
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    if code:
        raise typer.Exit(code)


def _safe(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    app()
