"""Shared fixtures: migrated databases (SQLite and PostgreSQL), a wired container, a client.

PostgreSQL tests need the server at `CREDITLINE_TEST_POSTGRES_URL` (default: the local
server on 127.0.0.1:5432, database `test`). Each test session makes its own database
there, migrates it with Alembic and drops it at the end; each test leaves it empty again.
Locally a missing server skips those tests with the reason; under `CI=true` it fails them.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from creditline.api.app import create_app
from creditline.bootstrap import Container, build_container
from creditline.config import Settings
from creditline.shared.clock import FixedClock
from creditline.storage import migrate
from creditline.storage.engine import create_db_engine
from creditline.storage.metadata import metadata

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "CREDITLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CREDITLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_KEY = base64.b64encode(bytes(range(32))).decode()
START = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
BUSINESS_DATE = date(2026, 1, 15)


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI: a service the suite needs must be there in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL}: {type(error).__name__}")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh, migrated database of this test session's own on the PostgreSQL server."""
    name = f"creditline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "creditline.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def empty_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = [t.name for t in metadata.sorted_tables]
    with engine.begin() as connection:
        existing = {
            row[0]
            for row in connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        }
        names = [f'"{t}"' for t in tables if t in existing]
        names += [f'"{t}"' for t in existing - set(tables) - {"alembic_version"}]
        if names:
            connection.execute(text(f"TRUNCATE {', '.join(names)} CASCADE"))
    engine.dispose()


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def migrated_database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of `kind` ("sqlite" or "postgresql") for one test."""
    if kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "creditline.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    url: str = request.getfixturevalue("postgres_database")
    empty_postgres(url)
    try:
        yield url
    finally:
        empty_postgres(url)


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, then PostgreSQL (contract tests)."""
    with migrated_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on each database in turn (for adapter tests below the container)."""
    made = create_db_engine(db_url)
    yield made
    made.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "creditline.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def make_settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        encryption_key=TEST_KEY,
        initial_business_date=BUSINESS_DATE,
        log_json=True,
    )


@pytest.fixture
def make_container(tmp_path: Path, clock: FixedClock) -> Iterator[Callable[[str], Container]]:
    built: list[Container] = []

    def build(url: str) -> Container:
        container = build_container(make_settings(url, tmp_path), clock=clock)
        built.append(container)
        return container

    yield build
    for container in built:
        container.close()


@pytest.fixture
def container(make_container: Callable[[str], Container], db_url: str) -> Container:
    """A wired container over each database in turn."""
    return make_container(db_url)


@pytest.fixture
def client(make_container: Callable[[str], Container], db_url: str) -> Iterator[TestClient]:
    """An HTTP client of a fresh app, over each database in turn."""
    with TestClient(create_app(make_container(db_url))) as test_client:
        yield test_client
