"""Lending: credit lines and their history, loans, instalments, repayments, journal, EOD runs.

Revision ID: 0002_lending
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from creditline.storage.types import UtcDateTime

revision = "0002_lending"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TABLES = (
    "lending_eod_runs",
    "lending_journal_postings",
    "lending_journal_entries",
    "lending_repayments",
    "lending_instalments",
    "lending_loans",
    "lending_line_changes",
    "lending_credit_lines",
)


def upgrade() -> None:
    op.create_table(
        "lending_credit_lines",
        sa.Column("line_id", sa.String(64)),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("limit_minor", sa.BigInteger, nullable=False),
        sa.Column("outstanding_minor", sa.BigInteger, nullable=False),
        sa.Column("holds_minor", sa.BigInteger, nullable=False),
        sa.Column("daily_rate", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(32), nullable=False),
        sa.Column("open_draws", sa.Integer, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("reviewed_on", sa.Date),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("line_id", name="pk_lending_credit_lines"),
    )
    op.create_index("ix_lending_credit_lines_customer_id", "lending_credit_lines", ["customer_id"])
    op.create_table(
        "lending_line_changes",
        sa.Column("change_id", sa.Integer, autoincrement=True),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("changed_on", sa.Date, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("limit_minor", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["lending_credit_lines.line_id"],
            name="fk_lending_line_changes_line_id_lending_credit_lines",
        ),
        sa.PrimaryKeyConstraint("change_id", name="pk_lending_line_changes"),
    )
    op.create_index(
        "ix_lending_line_changes_line", "lending_line_changes", ["line_id", "change_id"]
    )
    op.create_table(
        "lending_loans",
        sa.Column("loan_id", sa.String(64)),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("request_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("principal_minor", sa.BigInteger, nullable=False),
        sa.Column("daily_rate", sa.String(24), nullable=False),
        sa.Column("day_count", sa.String(24), nullable=False),
        sa.Column("rounding", sa.String(16), nullable=False),
        sa.Column("penalty_multiplier", sa.String(8), nullable=False),
        sa.Column("grace_days", sa.Integer, nullable=False),
        sa.Column("write_off_days", sa.Integer, nullable=False),
        sa.Column("allocation", sa.JSON, nullable=False),
        sa.Column("method", sa.String(24), nullable=False),
        sa.Column("term_months", sa.Integer, nullable=False),
        sa.Column("drawn_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("accrual_from", sa.Date, nullable=False),
        sa.Column("accrual_from_day", sa.Integer, nullable=False),
        sa.Column("accrual_fixed_minor", sa.BigInteger, nullable=False),
        sa.Column("days_past_due", sa.Integer, nullable=False),
        sa.Column("closed_on", sa.Date),
        sa.Column("written_off_on", sa.Date),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["lending_credit_lines.line_id"],
            name="fk_lending_loans_line_id_lending_credit_lines",
        ),
        sa.PrimaryKeyConstraint("loan_id", name="pk_lending_loans"),
        sa.UniqueConstraint("request_key", name="uq_lending_loans_request_key"),
    )
    op.create_index("ix_lending_loans_customer_id", "lending_loans", ["customer_id"])
    op.create_index("ix_lending_loans_line_status", "lending_loans", ["line_id", "status"])
    op.create_index("ix_lending_loans_status", "lending_loans", ["status"])
    op.create_table(
        "lending_instalments",
        sa.Column("loan_id", sa.String(64)),
        sa.Column("number", sa.Integer),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("start_day", sa.Integer, nullable=False),
        sa.Column("due_day", sa.Integer, nullable=False),
        sa.Column("period_days", sa.Integer, nullable=False),
        sa.Column("principal_due_minor", sa.BigInteger, nullable=False),
        sa.Column("interest_due_minor", sa.BigInteger, nullable=False),
        sa.Column("interest_accrued_minor", sa.BigInteger, nullable=False),
        sa.Column("principal_paid_minor", sa.BigInteger, nullable=False),
        sa.Column("interest_paid_minor", sa.BigInteger, nullable=False),
        sa.Column("penalty_units", sa.BigInteger, nullable=False),
        sa.Column("penalty_accrued_minor", sa.BigInteger, nullable=False),
        sa.Column("penalty_paid_minor", sa.BigInteger, nullable=False),
        sa.Column("rate_e8", sa.BigInteger, nullable=False),
        sa.Column("penalty_e2", sa.Integer, nullable=False),
        sa.Column("grace_days", sa.Integer, nullable=False),
        sa.Column("rounding", sa.String(16), nullable=False),
        sa.Column("interest_days_num", sa.Integer, nullable=False),
        sa.Column("interest_days_den", sa.Integer, nullable=False),
        sa.Column("accrual_from_day", sa.Integer, nullable=False),
        sa.Column("accrual_fixed_minor", sa.BigInteger, nullable=False),
        sa.Column("accrual_principal_minor", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["lending_loans.loan_id"],
            name="fk_lending_instalments_loan_id_lending_loans",
        ),
        sa.PrimaryKeyConstraint("loan_id", "number", name="pk_lending_instalments"),
    )
    op.create_index("ix_lending_instalments_due_day", "lending_instalments", ["due_day"])
    op.create_table(
        "lending_repayments",
        sa.Column("repayment_id", sa.String(255)),
        sa.Column("loan_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("allocation", sa.JSON, nullable=False),
        sa.Column("entry_id", sa.String(300), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("repayment_id", name="pk_lending_repayments"),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["lending_loans.loan_id"],
            name="fk_lending_repayments_loan_id_lending_loans",
        ),
    )
    op.create_index("ix_lending_repayments_loan", "lending_repayments", ["loan_id"])
    op.create_table(
        "lending_journal_entries",
        sa.Column("entry_id", sa.String(300)),
        sa.Column("effective_on", sa.Date, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("memo", sa.String(300), nullable=False),
        sa.Column("loan_id", sa.String(64)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name="pk_lending_journal_entries"),
    )
    op.create_index(
        "ix_lending_journal_entries_effective_on", "lending_journal_entries", ["effective_on"]
    )
    op.create_table(
        "lending_journal_postings",
        sa.Column("entry_id", sa.String(300)),
        sa.Column("line_no", sa.Integer),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("side", sa.String(6), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["lending_journal_entries.entry_id"],
            name="fk_lending_journal_postings_entry_id_lending_journal_entries",
        ),
        sa.PrimaryKeyConstraint("entry_id", "line_no", name="pk_lending_journal_postings"),
    )
    op.create_table(
        "lending_eod_runs",
        sa.Column("business_date", sa.Date),
        sa.Column("finished_at", UtcDateTime(), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("business_date", name="pk_lending_eod_runs"),
    )

    _make_journal_append_only()


JOURNAL_TABLES = ("lending_journal_entries", "lending_journal_postings")


def _make_journal_append_only() -> None:
    """The journal is append-only in the database too: UPDATE and DELETE are refused."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION lending_journal_is_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'the lending journal is append-only'; END; "
            "$$ LANGUAGE plpgsql"
        )
        for table in JOURNAL_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION lending_journal_is_append_only()"
            )
        return
    for table in JOURNAL_TABLES:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'the lending journal is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in JOURNAL_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS lending_journal_is_append_only()")
    for table in TABLES:
        op.drop_table(table)
