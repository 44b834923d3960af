"""Benchmark: one end-of-day run over N open loans, on SQLite and on PostgreSQL.

    .venv/bin/python bench/lending_eod.py --loans 10000 100000 --databases sqlite postgresql

Each (loans, database) gets a fresh migrated database: a SQLite file under `--work`, or a
new database on the PostgreSQL server at `--postgres` (dropped afterwards). Loans are
built with the domain (`Loan.draw`: mixed methods, terms and day counts, drawn over the
previous 60 days, a tenth of them unpaid past a due date) and bulk-inserted; loading time
is not part of the figure. Then `--days` business days are closed with the set-based SQL
job, and the table shows seconds per day and loans per second.
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

from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url

from creditline.lending.adapters.eod_sql import SqlEndOfDay
from creditline.lending.adapters.sql import _instalment_rows, _loan_values
from creditline.lending.adapters.tables import credit_lines, instalments, loans
from creditline.lending.domain.loan import Loan
from creditline.lending.domain.terms import DayCount, LoanTerms, RepaymentMethod
from creditline.shared.clock import FixedClock
from creditline.shared.money import Money
from creditline.storage import migrate
from creditline.storage.engine import create_db_engine

BUSINESS_DATE = date(2026, 3, 1)
CHUNK = 5_000


def build_rows(count: int, seed: int = 1) -> tuple[list[dict], list[dict], list[dict]]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    clock = FixedClock()
    line_rows, loan_rows, instalment_rows = [], [], []
    for n in range(count):
        line_id = f"CL{n}"
        principal = Money(rng.randrange(100_000, 5_000_000), Money.yuan(1).currency)
        terms = LoanTerms(
            Decimal(rng.choice(["0.00015", "0.0003", "0.00045", "0.0006"])),
            day_count=rng.choice(list(DayCount)),
        )
        drawn_on = BUSINESS_DATE - timedelta(days=rng.randrange(1, 60))
        loan, _ = Loan.draw(
            f"ln{n}",
            line_id,
            f"C{n}",
            principal,
            terms,
            rng.choice(list(RepaymentMethod)),
            rng.choice([3, 6, 12]),
            drawn_on,
        )
        line_rows.append(
            {
                "line_id": line_id,
                "customer_id": f"C{n}",
                "currency": "CNY",
                "limit_minor": 20_000_000,
                "outstanding_minor": principal.minor_units,
                "holds_minor": 0,
                "daily_rate": str(terms.daily_rate),
                "status": "active",
                "status_reason": "opened",
                "open_draws": 1,
                "opened_on": drawn_on,
                "created_at": clock.now(),
            }
        )
        loan_rows.append(
            {
                "loan_id": loan.loan_id,
                "line_id": line_id,
                "customer_id": f"C{n}",
                "request_key": f"k{n}",
                "fingerprint": "bench",
                "currency": "CNY",
                "principal_minor": principal.minor_units,
                "daily_rate": str(terms.daily_rate),
                "day_count": terms.day_count.value,
                "rounding": terms.rounding.value,
                "penalty_multiplier": "1.5",
                "grace_days": 0,
                "write_off_days": 180,
                "allocation": {},
                "method": loan.method.value,
                "term_months": loan.term_months,
                "drawn_on": drawn_on,
                "created_at": clock.now(),
                **_loan_values(loan),
            }
        )
        instalment_rows += _instalment_rows(loan, with_terms=True)
    return line_rows, loan_rows, instalment_rows


def load(engine: Engine, rows: tuple[list[dict], list[dict], list[dict]]) -> None:  # type: ignore[type-arg]
    for table, batch in zip((credit_lines, loans, instalments), rows, strict=True):
        for start in range(0, len(batch), CHUNK):
            with engine.begin() as connection:
                connection.execute(insert(table), batch[start : start + CHUNK])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, nargs="+", default=[10_000])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    header = (
        f"{'loans':>9} {'database':>10} {'instalments':>11} "
        f"{'s/day (mean)':>12} {'s/day (max)':>11} {'loans/s':>9}"
    )
    lines = [header, "-" * len(header)]
    for count in args.loans:
        rows = build_rows(count)
        for kind in args.databases:
            url, handle = database(kind, args.work, args.postgres)
            try:
                migrate.upgrade(url)
                engine = create_db_engine(url)
                load(engine, rows)
                if kind == "postgresql":
                    with engine.begin() as connection:
                        connection.execute(text("ANALYZE"))
                eod = SqlEndOfDay(engine, FixedClock())
                timings = []
                for offset in range(args.days):
                    started = time.perf_counter()
                    eod.close_day(BUSINESS_DATE + timedelta(days=offset))
                    timings.append(time.perf_counter() - started)
                engine.dispose()
            finally:
                drop(kind, handle, args.postgres)
            mean = sum(timings) / len(timings)
            lines.append(
                f"{count:>9,} {kind:>10} {len(rows[2]):>11,} "
                f"{mean:>12.2f} {max(timings):>11.2f} {count / mean:>9,.0f}"
            )
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
