"""The one place that chooses adapters: settings in, a wired `Container` out.

Nothing is created at import time; `build_container` is called once at start-up by the
HTTP app, the CLI or a test, and everything it builds is passed down from there. The
decision and online-feature adapters pull in pandas, zen-engine and redis, so they are
imported when the container first builds them, not by every command that starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from creditline.config import Settings
from creditline.data.adapters.sql import SqlEventStore
from creditline.data.domain.events import BehaviourEvent
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

if TYPE_CHECKING:
    import pyarrow as pa

    from creditline.decisioning.adapters.model_features import ChampionScorer
    from creditline.decisioning.adapters.sql import SqlDecisioningUnitOfWork
    from creditline.decisioning.adapters.zen_policies import ZenPolicyEngine
    from creditline.features.ports import OnlineFeatureStore


@dataclass
class DecisioningWiring:
    """What the decision routes need: the policy, the champion, a unit of work factory."""

    policies: ZenPolicyEngine
    scorer: ChampionScorer
    uow: Callable[[], SqlDecisioningUnitOfWork]
    apr_of: Callable[[Decimal], Decimal]


@dataclass
class Container:
    settings: Settings
    clock: Clock
    engine: Engine
    session_factory: sessionmaker[Session]
    cipher: AesGcmFieldCipher
    business_dates: SqlBusinessDateStore
    idempotency: SqlIdempotencyStore
    _decisioning: DecisioningWiring | None = None
    _feature_store: OnlineFeatureStore | None = None
    _feature_lock: threading.Lock = field(default_factory=threading.Lock)

    def privacy_uow(self) -> SqlPrivacyUnitOfWork:
        return SqlPrivacyUnitOfWork(self.session_factory, self.cipher)

    def event_store(self) -> SqlEventStore:
        return SqlEventStore(self.engine, self.clock)

    def feature_store(self) -> OnlineFeatureStore:
        """Online features: Redis when `CREDITLINE_REDIS_URL` is set, else in process.

        Redis keeps its state across restarts; the in-process store is rebuilt from the
        event table the first time it is needed.
        """
        from creditline.features.adapters.parquet_events import event_from_record

        with self._feature_lock:
            if self._feature_store is None:
                url = self.settings.redis_url
                if url:
                    from creditline.features.adapters.redis_store import RedisFeatureStore

                    self._feature_store = RedisFeatureStore.from_url(url)
                else:
                    from creditline.features.adapters.memory_store import InMemoryFeatureStore

                    memory = InMemoryFeatureStore()
                    stored = self.event_store().scan()
                    memory.apply(event_from_record(e.as_record()) for e in stored)
                    self._feature_store = memory
            return self._feature_store

    def record_features(self, events: Sequence[BehaviourEvent]) -> None:
        """Bring the online feature state up to date with newly stored events."""
        from creditline.features.adapters.parquet_events import event_from_record

        if self._feature_store is None and not self.settings.redis_url:
            # Built now from the event table, which already holds these events.
            self.feature_store()
            return
        self.feature_store().apply(event_from_record(e.as_record()) for e in events)

    def record_feature_table(self, table: pa.Table) -> None:
        """`record_features` for the stored rows as one Arrow table (the columns of
        `ValidBatch.table`): a columnar store folds it without an object per event."""
        from creditline.features.ports import ColumnarFeatureStore

        if self._feature_store is None and not self.settings.redis_url:
            # Built now from the event table, which already holds these events.
            self.feature_store()
            return
        store = self.feature_store()
        if isinstance(store, ColumnarFeatureStore):
            store.apply_table(table)
            return
        from creditline.features.adapters.parquet_events import event_from_record

        store.apply(event_from_record(row) for row in table.to_pylist())

    def decisioning(self) -> DecisioningWiring:
        if self._decisioning is None:
            from creditline.decisioning.adapters.lending_bridge import (
                line_opener,
                representative_apr,
            )
            from creditline.decisioning.adapters.model_features import (
                ChampionScorer,
                OnlineFeatureSource,
            )
            from creditline.decisioning.adapters.sql import SqlDecisioningUnitOfWork
            from creditline.decisioning.adapters.zen_policies import ZenPolicyEngine
            from creditline.scoring.adapters.file_registry import FileModelRegistry

            features = OnlineFeatureSource(self.feature_store())
            clock = self.clock

            def new_uow() -> SqlDecisioningUnitOfWork:
                return SqlDecisioningUnitOfWork(
                    self.session_factory,
                    self.cipher,
                    features=features,
                    lines=line_opener(clock),
                    business_dates=self.business_dates,
                )

            self._decisioning = DecisioningWiring(
                policies=ZenPolicyEngine(self.settings.policy_dir),
                scorer=ChampionScorer(FileModelRegistry(self.settings.models_dir)),
                uow=new_uow,
                apr_of=representative_apr,
            )
        return self._decisioning

    def business_date(self) -> date:
        return self.business_dates.get()

    def close(self) -> None:
        self.engine.dispose()


def build_container(
    settings: Settings, *, clock: Clock | None = None, apply_migrations: bool = False
) -> Container:
    """Wire the adapters that `settings` asks for (and migrate first, if told to)."""
    clock = clock or SystemClock()
    url = settings.resolved_database_url
    engine = create_db_engine(url, threads=max(1, settings.http_threads))
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
