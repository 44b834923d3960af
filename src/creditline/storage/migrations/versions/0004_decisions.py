"""Decisions: the automated decision, its trace and its review.

Revision ID: 0004_decisions
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from creditline.storage.types import UtcDateTime

revision = "0004_decisions"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("application_id", sa.String(255)),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("requested_limit_minor", sa.BigInteger),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("limit_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("daily_rate", sa.String(24)),
        sa.Column("apr", sa.String(24)),
        sa.Column("apr_simple", sa.String(24)),
        sa.Column("score", sa.Integer),
        sa.Column("pd", sa.Float),
        sa.Column("tier", sa.String(24)),
        sa.Column("model_version", sa.String(128)),
        sa.Column("model_reasons", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Column("fired_rows", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("inputs_fingerprint", sa.String(64), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=False),
        sa.Column("credit_line_id", sa.String(64)),
        sa.Column("review_status", sa.String(16)),
        sa.Column("review_decision", sa.String(16)),
        sa.Column("review_limit_minor", sa.BigInteger),
        sa.Column("review_note", sa.Text),
        sa.Column("reviewer", sa.String(128)),
        sa.Column("reviewed_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("application_id", name="pk_decisions"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name="fk_decisions_customer_id_customers"
        ),
    )
    op.create_index("ix_decisions_customer_id", "decisions", ["customer_id"])
    op.create_index("ix_decisions_review_status", "decisions", ["review_status", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_decisions_review_status", table_name="decisions")
    op.drop_index("ix_decisions_customer_id", table_name="decisions")
    op.drop_table("decisions")
