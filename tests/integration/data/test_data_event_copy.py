"""PostgreSQL: a batch goes straight into `behaviour_events` with COPY once its ids are
looked up; an id that another writer stores after that look-up makes the COPY fail, and
the batch is then stored through the staging table, still exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from creditline.data.adapters import sql
from creditline.data.adapters.sql import SqlEventStore
from creditline.data.service import ingest_batch
from creditline.shared.clock import FixedClock
from creditline.storage.engine import create_db_engine
from tests.conftest import migrated_database
from tests.contract.test_events_store import payment

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlEventStore]:
    with migrated_database(request, "postgresql", tmp_path) as url:
        engine = create_db_engine(url)
        yield SqlEventStore(engine, FixedClock(datetime(2026, 1, 15, 2, 0, tzinfo=UTC)))
        engine.dispose()


def test_an_id_stored_after_the_look_up_is_found_and_not_stored_twice(
    store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_batch(store, [payment(2), payment(5, amount=555)])
    looked_up: list[int] = []
    real_digests = sql._digests

    def blind_first_look_up(
        connection: object, event_ids: list[str], **kwargs: object
    ) -> dict[str, str]:
        # The first look-up misses what is stored, as if another writer stored those ids
        # just after it; every later look-up is the real one.
        looked_up.append(len(event_ids))
        if len(looked_up) == 1:
            return {}
        return real_digests(connection, event_ids, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sql, "_digests", blind_first_look_up)

    report = ingest_batch(store, [payment(n) for n in range(8)])

    assert (report.accepted, report.duplicates) == (6, 1)
    assert [(r.index, r.code) for r in report.rejected] == [(5, "conflict")]
    assert looked_up == [8, 2]
    assert store.count() == 8
    with store._engine.connect() as connection:
        amount = connection.execute(
            text("SELECT amount_minor FROM behaviour_events WHERE event_id = 'evt-5'")
        ).scalar_one()
    assert amount == 555


def test_instants_are_copied_as_the_same_instants_whatever_the_session_time_zone(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The COPY text carries an explicit UTC offset; without it PostgreSQL would read the
    # instants in the session's time zone.
    raw = {**payment(1), "occurred_at": "2026-01-01T17:30:00.123456+08:00"}
    with migrated_database(request, "postgresql", tmp_path) as url:
        engine = create_db_engine(f"{url}?options=-c%20timezone%3DAsia/Shanghai")
        store = SqlEventStore(engine, FixedClock(datetime(2026, 1, 15, 2, 0, tzinfo=UTC)))

        ingest_batch(store, [raw])

        with engine.connect() as connection:
            zone, occurred, ingested = connection.execute(
                text(
                    "SELECT current_setting('TimeZone'), occurred_at, ingested_at "
                    "FROM behaviour_events"
                )
            ).one()
        engine.dispose()
    assert zone == "Asia/Shanghai"
    assert occurred == datetime(2026, 1, 1, 9, 30, 0, 123456, tzinfo=UTC)
    assert ingested == datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
