"""Alembic environment: runs migrations online against the configured URL."""

from __future__ import annotations

from alembic import context

from creditline.storage.engine import create_db_engine
from creditline.storage.metadata import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
if url is None:  # pragma: no cover - migrate.alembic_config always sets it
    raise RuntimeError("sqlalchemy.url is not configured")

connectable = config.attributes.get("connection")
if connectable is not None:
    context.configure(connection=connectable, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_db_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
