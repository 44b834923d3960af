"""Behaviour events: the append-only table of every acknowledged event.

Revision ID: 0003_events
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from creditline.storage.types import UtcDateTime

revision = "0003_events"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "behaviour_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("category", sa.String(64)),
        sa.Column("channel", sa.String(16)),
        sa.Column("reference_id", sa.String(64)),
        sa.Column("counterparty_id", sa.String(64)),
        sa.Column("device_id", sa.String(64)),
        sa.Column("is_sim_change", sa.Boolean),
        sa.Column("location", sa.String(64)),
        sa.Column("product_id", sa.String(64)),
        sa.Column("due_on", sa.Date),
        sa.Column("amount_due_minor", sa.BigInteger),
        sa.Column("credit_limit_minor", sa.BigInteger),
        sa.Column("occupation", sa.String(32)),
        sa.Column("education", sa.String(32)),
        sa.Column("is_real_name_verified", sa.Boolean),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("ingested_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_behaviour_events"),
    )
    op.create_index(
        "ix_behaviour_events_customer_id", "behaviour_events", ["customer_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_behaviour_events_customer_id", table_name="behaviour_events")
    op.drop_table("behaviour_events")
