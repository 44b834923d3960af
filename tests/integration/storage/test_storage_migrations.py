"""Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import creditline
from creditline.storage import migrate
from creditline.storage.metadata import metadata


def _import_every_table_module() -> None:
    """Table definitions live in each capability's adapters; import them all."""
    for module in pkgutil.walk_packages(creditline.__path__, "creditline."):
        if ".adapters" in module.name and not module.name.split(".")[-1].startswith("spark"):
            importlib.import_module(module.name)
    importlib.import_module("creditline.storage.tables")


def test_the_migrated_schema_matches_the_declared_tables(db_url: str) -> None:
    _import_every_table_module()
    engine = create_engine(db_url)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)

    engine.dispose()
    assert differences == []


def test_a_migrated_database_is_up_to_date(db_url: str) -> None:
    engine = create_engine(db_url)

    assert migrate.is_up_to_date(engine)
    engine.dispose()


def test_an_empty_database_is_not_up_to_date(tmp_path: pytest.TempPathFactory) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/empty.db")

    assert not migrate.is_up_to_date(engine)
    engine.dispose()
