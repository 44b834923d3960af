"""Lending end of day: leave room in the pages the end-of-day job rewrites every night.

Every business day the end-of-day job updates the current instalment of every open loan
(interest accrued) and the loan row of every overdue one (DPD). On PostgreSQL an update
writes a new row version; when it fits on the same page and no indexed column changes it
is a HOT update (no index entries to add, the old version is pruned in place). With full
pages (fill factor 100, the default) every one of those updates moves the row to another
page and adds an entry to each index, and the tables and indexes grow by a day's worth of
rows each night. A fill factor of 80 for instalments (about one row in seven changes
daily) and 90 for loans keeps those updates on their page.

The setting applies to pages written from now on; an existing table gets it on its next
rewrite (`VACUUM FULL` or `CLUSTER`, a maintenance-window job). SQLite rewrites rows in
place and has no such setting, so there this revision does nothing. No table, column or
index changes, so the declared tables (`lending/adapters/tables.py`) are unchanged.

Revision ID: 0005_lending_eod
Revises: 0002_lending
"""

from __future__ import annotations

from alembic import op

revision = "0005_lending_eod"
down_revision = "0002_lending"
branch_labels = None
depends_on = None

FILL_FACTORS = {"lending_instalments": 80, "lending_loans": 90}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, percent in FILL_FACTORS.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in FILL_FACTORS:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
