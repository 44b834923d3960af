"""Storage plumbing shared by every capability's SQLAlchemy adapters.

One `MetaData` (with a naming convention so migrations are deterministic), the engine
factory that makes SQLite and PostgreSQL behave alike where it matters, Alembic
migrations, and the base unit of work. It holds no business tables of its own except the
cross-cutting ones: the business date and HTTP idempotency records.
"""
