"""`creditline eod run [--to DATE]` and `creditline journal trial-balance [--as-of DATE]`.

`eod run` closes business days one at a time (each once; re-running a day changes
nothing) and prints what each day did. `journal trial-balance` prints the balance of every
ledger account; it exits with 1 if the balances do not net to zero or (for the current
state) disagree with the loan records.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from creditline.bootstrap import Container, build_container
from creditline.config import Settings
from creditline.lending import service
from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.shared.errors import CreditlineError
from creditline.shared.money import Currency, Money
from creditline.storage import migrate

eod_app = typer.Typer(help="End of day: accrue, mark overdue, penalties, write-offs.")
journal_app = typer.Typer(help="The lending journal.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _container() -> Container:
    container = build_container(Settings())
    if not migrate.is_up_to_date(container.engine):
        container.close()
        err.print(
            "[red]error:[/red] the database schema is not up to date: run `creditline db upgrade`"
        )
        raise typer.Exit(2)
    return container


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error:[/red] {option} must be a date such as 2026-01-31, got {text!r}")
        raise typer.Exit(2) from None


@eod_app.command("run")
def run(
    to: Annotated[
        str | None, typer.Option(help="Close days until the business date is this (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Close the current business day (or every day up to --to), one day at a time."""
    target = _date(to, "--to")
    container = _container()
    try:
        started = datetime.now().astimezone()
        summaries = service.run_end_of_day(
            SqlEndOfDay(container.engine, container.clock), container.business_dates, to=target
        )
        table = Table("business date", "interest", "penalty", "written off", "frozen", "unfrozen")
        for day in summaries:
            table.add_row(
                day.business_date.isoformat() + (" (already ran)" if day.already_ran else ""),
                day.interest_accrued.to_str(),
                day.penalty_accrued.to_str(),
                str(day.loans_written_off),
                str(day.lines_frozen),
                str(day.lines_unfrozen),
            )
        out.print(table)
        elapsed = (datetime.now().astimezone() - started).total_seconds()
        typer.echo(f"business date is now {container.business_date()} ({elapsed:.1f} s)")
    except CreditlineError as error:
        err.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from error
    finally:
        container.close()


@journal_app.command("trial-balance")
def trial_balance(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Entries effective on or before this date.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Balances per account (debit − credit); they must net to zero."""
    on = _date(as_of, "--as-of")
    container = _container()
    try:
        uow = SqlLendingUnitOfWork(container.session_factory, container.clock)
        balance = service.trial_balance(uow, as_of=on)
        checks_loans = on is None or on >= container.business_date()
    finally:
        container.close()
    agrees = balance.agrees_with_loans if checks_loans else None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "as_of": on.isoformat() if on else None,
                    "balances": {
                        f"{account}:{currency}": value
                        for (account, currency), value in sorted(balance.balances.items())
                    },
                    "nets_to_zero": balance.nets_to_zero,
                    "agrees_with_loans": agrees,
                }
            )
        )
    else:
        _print_table(balance)
        typer.echo(f"nets to zero: {'yes' if balance.nets_to_zero else 'NO'}")
        if agrees is not None:
            typer.echo(f"agrees with the loan records: {'yes' if agrees else 'NO'}")
    if not balance.nets_to_zero or agrees is False:
        raise typer.Exit(1)


def _print_table(balance: service.TrialBalance) -> None:
    table = Table("account", "currency", "debit", "credit")
    debits = credits = 0
    for (account, currency), value in sorted(balance.balances.items()):
        money = Money(abs(value), Currency(currency))
        table.add_row(
            account,
            currency.value,
            money.to_str() if value > 0 else "",
            money.to_str() if value < 0 else "",
        )
        debits += max(value, 0)
        credits += max(-value, 0)
    table.add_row(
        "total", "", Money(debits, Currency.CNY).to_str(), Money(credits, Currency.CNY).to_str()
    )
    out.print(table)
