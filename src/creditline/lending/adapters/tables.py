"""Lending tables: credit lines and their history, loans, instalments, repayments, journal.

Amounts are integer fen (`..._minor`); business dates are `DATE` plus, where the
end-of-day SQL does arithmetic on them, an integer day number (`..._day`, the proleptic
Gregorian ordinal, `date.toordinal()`), so the same SQL runs on SQLite and PostgreSQL.
Loan terms are copied onto each instalment row (`rate_e8`, `penalty_e2`, …) so the
end-of-day statements need no joins. The journal tables are append-only: the code only
inserts into them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from creditline.storage.metadata import metadata
from creditline.storage.types import UtcDateTime

credit_lines = Table(
    "lending_credit_lines",
    metadata,
    Column("line_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("limit_minor", BigInteger, nullable=False),
    Column("outstanding_minor", BigInteger, nullable=False),
    Column("holds_minor", BigInteger, nullable=False),
    Column("daily_rate", String(24), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", String(32), nullable=False),
    Column("open_draws", Integer, nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("reviewed_on", Date),
    Column("created_at", UtcDateTime(), nullable=False),
)

line_changes = Table(
    "lending_line_changes",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("line_id", String(64), ForeignKey("lending_credit_lines.line_id"), nullable=False),
    Column("changed_on", Date, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("limit_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Index("ix_lending_line_changes_line", "line_id", "change_id"),
)

loans = Table(
    "lending_loans",
    metadata,
    Column("loan_id", String(64), primary_key=True),
    Column("line_id", String(64), ForeignKey("lending_credit_lines.line_id"), nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("request_key", String(255), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("principal_minor", BigInteger, nullable=False),
    Column("daily_rate", String(24), nullable=False),
    Column("day_count", String(24), nullable=False),
    Column("rounding", String(16), nullable=False),
    Column("penalty_multiplier", String(8), nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("write_off_days", Integer, nullable=False),
    Column("allocation", JSON, nullable=False),
    Column("method", String(24), nullable=False),
    Column("term_months", Integer, nullable=False),
    Column("drawn_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("accrual_from", Date, nullable=False),
    Column("accrual_from_day", Integer, nullable=False),
    Column("accrual_fixed_minor", BigInteger, nullable=False),
    Column("days_past_due", Integer, nullable=False),
    Column("closed_on", Date),
    Column("written_off_on", Date),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_lending_loans_line_status", "line_id", "status"),
    Index("ix_lending_loans_status", "status"),
)

instalments = Table(
    "lending_instalments",
    metadata,
    Column("loan_id", String(64), ForeignKey("lending_loans.loan_id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("due_on", Date, nullable=False),
    Column("start_day", Integer, nullable=False),
    Column("due_day", Integer, nullable=False),
    Column("period_days", Integer, nullable=False),
    Column("principal_due_minor", BigInteger, nullable=False),
    Column("interest_due_minor", BigInteger, nullable=False),
    Column("interest_accrued_minor", BigInteger, nullable=False),
    Column("principal_paid_minor", BigInteger, nullable=False),
    Column("interest_paid_minor", BigInteger, nullable=False),
    Column("penalty_units", BigInteger, nullable=False),
    Column("penalty_accrued_minor", BigInteger, nullable=False),
    Column("penalty_paid_minor", BigInteger, nullable=False),
    # Copies of the loan's immutable terms, so end-of-day SQL needs no join.
    Column("rate_e8", BigInteger, nullable=False),
    Column("penalty_e2", Integer, nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("rounding", String(16), nullable=False),
    Column("interest_days_num", Integer, nullable=False),
    Column("interest_days_den", Integer, nullable=False),
    # The accrual of this instalment's period (see `Loan` for the formula).
    Column("accrual_from_day", Integer, nullable=False),
    Column("accrual_fixed_minor", BigInteger, nullable=False),
    Column("accrual_principal_minor", BigInteger, nullable=False),
    Index("ix_lending_instalments_due_day", "due_day"),
)

repayments = Table(
    "lending_repayments",
    metadata,
    Column("repayment_id", String(255), primary_key=True),
    Column("loan_id", String(64), ForeignKey("lending_loans.loan_id"), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("allocation", JSON, nullable=False),
    Column("entry_id", String(300), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_lending_repayments_loan", "loan_id"),
)

journal_entries = Table(
    "lending_journal_entries",
    metadata,
    Column("entry_id", String(300), primary_key=True),
    Column("effective_on", Date, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("memo", String(300), nullable=False),
    Column("loan_id", String(64)),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_lending_journal_entries_effective_on", "effective_on"),
)

journal_postings = Table(
    "lending_journal_postings",
    metadata,
    Column(
        "entry_id",
        String(300),
        ForeignKey("lending_journal_entries.entry_id"),
        primary_key=True,
    ),
    Column("line_no", Integer, primary_key=True),
    Column("account", String(64), nullable=False),
    Column("side", String(6), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)

eod_runs = Table(
    "lending_eod_runs",
    metadata,
    Column("business_date", Date, primary_key=True),
    Column("finished_at", UtcDateTime(), nullable=False),
    Column("summary", JSON, nullable=False),
)
