"""`creditline eod run` and `creditline journal trial-balance` on a SQLite file."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from creditline.cli.main import app
from creditline.lending import service
from creditline.lending.adapters.sql import SqlLendingUnitOfWork
from creditline.lending.domain.terms import RepaymentMethod
from creditline.shared.clock import FixedClock
from creditline.shared.money import Money
from creditline.storage.engine import create_db_engine, make_session_factory

runner = CliRunner()
START = date(2026, 1, 15)


def a_book(url: str) -> None:
    engine = create_db_engine(url)
    factory = make_session_factory(engine)

    def uow() -> SqlLendingUnitOfWork:
        return SqlLendingUnitOfWork(factory, FixedClock())

    service.open_credit_line(
        uow(),
        line_id="CL",
        customer_id="C",
        limit=Money.yuan(5000),
        daily_rate=Decimal("0.0005"),
        on=START,
    )
    service.draw(
        uow(),
        line_id="CL",
        request_key="k",
        amount=Money.yuan(2000),
        term_months=3,
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        on=START,
    )
    engine.dispose()


def test_eod_then_trial_balance(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        "CREDITLINE_DATABASE_URL": sqlite_url,
        "CREDITLINE_DATA_DIR": str(tmp_path),
        "CREDITLINE_INITIAL_BUSINESS_DATE": START.isoformat(),
    }
    a_book(sqlite_url)

    ran = runner.invoke(app, ["eod", "run", "--to", "2026-03-01"], env=env)
    balance = runner.invoke(app, ["journal", "trial-balance", "--json"], env=env)
    table = runner.invoke(app, ["journal", "trial-balance", "--as-of", "2026-01-20"], env=env)
    backwards = runner.invoke(app, ["eod", "run", "--to", "2026-02-01"], env=env)
    bad_date = runner.invoke(app, ["eod", "run", "--to", "tomorrow"], env=env)

    assert ran.exit_code == 0, ran.output
    assert "business date is now 2026-03-01" in ran.output
    assert balance.exit_code == 0, balance.output
    report = json.loads(balance.stdout)
    assert report["nets_to_zero"] is True
    assert report["agrees_with_loans"] is True
    # 2000 − the first instalment's 666.67 principal is past due but still receivable.
    assert report["balances"]["asset:loans_receivable:principal:CNY"] == 200_000
    assert report["balances"]["income:penalty_interest:CNY"] < 0
    assert table.exit_code == 0, table.output
    assert "nets to zero: yes" in table.output
    assert backwards.exit_code == 2
    assert bad_date.exit_code == 2
