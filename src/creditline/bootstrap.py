"""The one place that chooses adapters: settings in, a wired `Container` out.

Nothing is created at import time; `build_container` is called once at start-up by the
HTTP app, the CLI or a test, and everything it builds is passed down from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from creditline.config import Settings
from creditline.privacy.adapters.aesgcm_cipher import (
    AesGcmFieldCipher,
    decode_key,
    load_or_create_key_file,
)
from creditline.privacy.adapters.sql import SqlPrivacyUnitOfWork
from creditline.shared.clock import Clock, SystemClock
from creditline.storage import migrate
from creditline.storage.business_date import SqlBusinessDateStore
from creditline.storage.engine import create_db_engine, make_session_factory
from creditline.storage.idempotency import SqlIdempotencyStore


@dataclass
class Container:
    settings: Settings
    clock: Clock
    engine: Engine
    session_factory: sessionmaker[Session]
    cipher: AesGcmFieldCipher
    business_dates: SqlBusinessDateStore
    idempotency: SqlIdempotencyStore
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def privacy_uow(self) -> SqlPrivacyUnitOfWork:
        return SqlPrivacyUnitOfWork(self.session_factory, self.cipher)

    def business_date(self) -> date:
        return self.business_dates.get()

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self.engine.dispose()


def build_container(
    settings: Settings, *, clock: Clock | None = None, apply_migrations: bool = False
) -> Container:
    """Wire the adapters that `settings` asks for (and migrate first, if told to)."""
    clock = clock or SystemClock()
    url = settings.resolved_database_url
    engine = create_db_engine(url)
    if apply_migrations:
        migrate.upgrade(url)
    return Container(
        settings=settings,
        clock=clock,
        engine=engine,
        session_factory=make_session_factory(engine),
        cipher=AesGcmFieldCipher(_master_key(settings)),
        business_dates=SqlBusinessDateStore(engine, clock, settings.initial_business_date),
        idempotency=SqlIdempotencyStore(
            engine, timedelta(seconds=settings.idempotency_lease_seconds)
        ),
    )


def _master_key(settings: Settings) -> bytes:
    if settings.encryption_key is not None:
        return decode_key(settings.encryption_key.get_secret_value())
    return load_or_create_key_file(settings.key_file)
