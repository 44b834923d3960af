"""Cross-cutting tables: the business date and HTTP idempotency records."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Date, Integer, LargeBinary, String, Table, Text

from creditline.storage.metadata import metadata
from creditline.storage.types import UtcDateTime

business_date = Table(
    "business_date",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("business_date", Date, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("status_code", Integer),
    Column("headers", JSON, nullable=False, default=dict),
    Column("response_body", LargeBinary),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=False),
)
