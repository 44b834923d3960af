"""Benchmark: end-of-day runs over N open loans, on SQLite and on PostgreSQL.

    .venv/bin/python bench/lending_eod.py --loans 100000 1000000 --databases sqlite postgresql

Each (loans, database) gets a fresh migrated database: a SQLite file under `--work`, or a
new database on the PostgreSQL server at `--postgres` (dropped afterwards).

Seeding is fast and not part of the figure. `--templates` loans (5,000 by default) are
built and lived with the domain: drawn on a random day before the business date (mixed
methods, terms and day counts, each still inside its term), closed day by day with
`Loan.close_day`; nine in ten pay every instalment on its due date, one in ten never pays
(so some are overdue, a few reach write-off). Their rows are bulk-inserted, then copied in
SQL (`INSERT … SELECT` with an id suffix) until there are N loans, each copy with its own
credit line. Then `--days` business days are closed with the set-based SQL job; the table
shows the seconds per day and the slowest step, and `--steps` prints every step's time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    String,
    cast,
    column,
    create_engine,
    func,
    insert,
    literal,
    select,
    table,
    text,
    true,
)
from sqlalchemy.engine import make_url

from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import _instalment_rows, _new_loan_row
from creditline.lending.adapters.tables import credit_lines, instalments, loans
from creditline.lending.domain.journal import EntryId
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.terms import (
    Component,
    DayCount,
    LoanStatus,
    LoanTerms,
    RepaymentMethod,
)
from creditline.shared.clock import FixedClock
from creditline.shared.money import Money
from creditline.storage import migrate
from creditline.storage.engine import create_db_engine

BUSINESS_DATE = date(2026, 3, 1)
CHUNK = 5_000
ARREARS = (Component.PENALTY, Component.OVERDUE_INTEREST, Component.OVERDUE_PRINCIPAL)
Rows = list[dict[str, Any]]


def lived_loan(n: int, rng: random.Random) -> Loan:
    """Loan `n`, drawn inside its term before BUSINESS_DATE and closed up to yesterday."""
    principal = Money(rng.randrange(100_000, 5_000_000), Money.yuan(1).currency)
    terms = LoanTerms(
        Decimal(rng.choice(["0.00015", "0.0003", "0.00045", "0.0006"])),
        day_count=rng.choice(list(DayCount)),
    )
    term = rng.choice([3, 6, 12])
    drawn_on = BUSINESS_DATE - timedelta(days=rng.randrange(1, 30 * term - 5))
    loan, _ = Loan.draw(
        f"ln{n}",
        f"CL{n}",
        f"C{n}",
        principal,
        terms,
        rng.choice(list(RepaymentMethod)),
        term,
        drawn_on,
    )
    pays = rng.random() >= 0.1
    due_days = {i.due_on for i in loan.instalments}
    day = drawn_on
    while day < BUSINESS_DATE and loan.is_open:
        if pays and day in due_days:
            owed = loan.owed(day)
            amount = sum(owed[c] for c in ARREARS)
            if amount:
                loan.repay(loan.money(amount), on=day, entry_id=EntryId(f"r{n}{day}"))
        loan.close_day(day)
        day += timedelta(days=1)
    return loan


def build_rows(count: int, seed: int = 1) -> tuple[Rows, Rows, Rows]:
    rng = random.Random(seed)
    clock = FixedClock()
    line_rows: Rows = []
    loan_rows: Rows = []
    instalment_rows: Rows = []
    for n in range(count):
        loan = lived_loan(n, rng)
        terms = loan.terms
        delinquent = loan.status in (LoanStatus.OVERDUE, LoanStatus.WRITTEN_OFF)
        line_rows.append(
            {
                "line_id": loan.line_id,
                "customer_id": loan.customer_id,
                "currency": "CNY",
                "limit_minor": 20_000_000,
                "outstanding_minor": loan.principal_outstanding.minor_units,
                "holds_minor": 0,
                "daily_rate": str(terms.daily_rate),
                "status": "frozen" if delinquent else "active",
                "status_reason": "overdue" if delinquent else "opened",
                "open_draws": 1,
                "opened_on": loan.drawn_on,
                "created_at": clock.now(),
            }
        )
        loan_rows.append(
            _new_loan_row(loan, request_key=f"k{n}", fingerprint="bench", at=clock.now())
        )
        instalment_rows += _instalment_rows(loan, with_terms=True)
    return line_rows, loan_rows, instalment_rows


def load(engine: Engine, rows: tuple[Rows, Rows, Rows], copies: int) -> None:
    """Insert the template rows, then `copies - 1` suffixed copies of them, in SQL."""
    tables = (credit_lines, loans, instalments)
    for target, batch in zip(tables, rows, strict=True):
        for start in range(0, len(batch), CHUNK):
            with engine.begin() as connection:
                connection.execute(insert(target), batch[start : start + CHUNK])
    if copies <= 1:
        return
    renamed = {"line_id", "loan_id", "customer_id", "request_key"}
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_copies (n INTEGER PRIMARY KEY)"))
        connection.execute(
            text("INSERT INTO bench_copies (n) VALUES (:n)"),
            [{"n": n} for n in range(1, copies)],
        )
    numbers = table("bench_copies", column("n", Integer))
    copy_no = cast(numbers.c.n, String)
    for target in tables:
        columns = [
            (c + literal(".") + copy_no).label(c.name) if c.name in renamed else c for c in target.c
        ]
        # Copy by copy, each in the templates' order: a loan's instalments stay together
        # on their pages, as they are when loans are drawn one by one.
        source = (
            select(*columns)
            .select_from(target.join(numbers, true()))
            .order_by(numbers.c.n, *target.primary_key.columns)
        )
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # The copies reference rows that exist; skip the per-row FK triggers.
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            connection.execute(insert(target).from_select([c.name for c in target.c], source))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE bench_copies"))


def tidy(engine: Engine) -> None:
    """What a live database has had by the evening: statistics, and on PostgreSQL a vacuum."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        vacuum = "VACUUM ANALYZE" if connection.dialect.name == "postgresql" else "ANALYZE"
        connection.exec_driver_sql(vacuum)


def database(kind: str, work: Path, postgres: str) -> tuple[str, object]:
    if kind == "sqlite":
        path = work / f"eod-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", path
    name = f"creditline_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(postgres).set(database=name).render_as_string(hide_password=False), name


def drop(kind: str, handle: object, postgres: str) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{handle}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{handle}" WITH (FORCE)'))
    admin.dispose()


def count_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        open_loans = connection.execute(
            select(func.count()).where(loans.c.status.in_(["active", "overdue"]))
        ).scalar_one()
        rows = connection.execute(select(func.count()).select_from(instalments)).scalar_one()
    return int(open_loans), int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, nargs="+", default=[10_000])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--templates", type=int, default=5_000)
    parser.add_argument("--steps", action="store_true", help="print each step's seconds")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    header = (
        f"{'loans':>9} {'open':>9} {'database':>10} {'instalments':>11} {'seed s':>7} "
        f"{'s/day (mean)':>12} {'s/day (max)':>11} {'loans/s':>9}  slowest step"
    )
    lines = [header, "-" * len(header)]
    for count in args.loans:
        templates = min(count, args.templates)
        copies = -(-count // templates)
        rows = build_rows(templates)
        for kind in args.databases:
            url, handle = database(kind, args.work, args.postgres)
            try:
                migrate.upgrade(url)
                engine = create_db_engine(url)
                started = time.perf_counter()
                load(engine, rows, copies)
                tidy(engine)
                seeded = time.perf_counter() - started
                open_loans, instalment_count = count_rows(engine)
                eod = SqlEndOfDay(engine, FixedClock())
                timings, steps = [], []
                for offset in range(args.days):
                    started = time.perf_counter()
                    eod.close_day(BUSINESS_DATE + timedelta(days=offset))
                    timings.append(time.perf_counter() - started)
                    steps.append(dict(eod.last_step_seconds))
                    if args.steps:
                        detail = "  ".join(f"{k} {v:.2f}" for k, v in steps[-1].items())
                        print(f"  {kind} day {offset + 1}: {timings[-1]:.2f} s  ({detail})")
                engine.dispose()
            finally:
                drop(kind, handle, args.postgres)
            mean = sum(timings) / len(timings)
            worst = max(steps[-1].items(), key=lambda item: item[1], default=("-", 0.0))
            lines.append(
                f"{templates * copies:>9,} {open_loans:>9,} {kind:>10} {instalment_count:>11,} "
                f"{seeded:>7.1f} {mean:>12.2f} {max(timings):>11.2f} {open_loans / mean:>9,.0f}"
                f"  {worst[0]} {worst[1]:.2f}"
            )
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
