"""Foundation: business date, idempotency records, customers and consents.

Revision ID: 0001_foundation
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from creditline.storage.types import UtcDateTime

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "business_date",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_business_date"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255)),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("response_body", sa.LargeBinary),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(64)),
        sa.Column("name_enc", sa.LargeBinary, nullable=False),
        sa.Column("national_id_enc", sa.LargeBinary, nullable=False),
        sa.Column("phone_enc", sa.LargeBinary, nullable=False),
        sa.Column("national_id_hash", sa.String(64), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("declared_income_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("registration_key", sa.String(255)),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customers"),
        sa.UniqueConstraint("national_id_hash", name="uq_customers_national_id_hash"),
        sa.UniqueConstraint("registration_key", name="uq_customers_registration_key"),
    )
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(64)),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("notice_version", sa.String(40), nullable=False),
        sa.Column("granted_at", UtcDateTime(), nullable=False),
        sa.Column("withdrawn_at", UtcDateTime()),
        sa.Column("end_reason", sa.String(16)),
        sa.PrimaryKeyConstraint("consent_id", name="pk_consents"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name="fk_consents_customer_id_customers",
        ),
    )
    op.create_index("ix_consents_customer_purpose", "consents", ["customer_id", "purpose"])


def downgrade() -> None:
    op.drop_index("ix_consents_customer_purpose", table_name="consents")
    op.drop_table("consents")
    op.drop_table("customers")
    op.drop_table("idempotency_keys")
    op.drop_table("business_date")
