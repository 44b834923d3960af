"""`creditline features list | build | rebuild-online` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis
from typer.testing import CliRunner

from creditline.cli.main import app
from creditline.features.adapters.redis_store import RedisFeatureStore
from creditline.features.domain.definitions import feature_names
from creditline.features.domain.events import EventType
from tests.conftest import REDIS_URL, migrated_database, unavailable
from tests.unit.features.handmade import (
    AS_OF,
    EXPECTED_A,
    assert_matches_expected,
    at,
    event,
    history,
    write_parquet,
)

runner = CliRunner()


def test_list_prints_every_feature_as_json_lines() -> None:
    result = runner.invoke(app, ["features", "list", "--json"])

    assert result.exit_code == 0
    names = [json.loads(line)["name"] for line in result.output.splitlines()]
    assert tuple(names) == feature_names()


def test_build_writes_one_row_per_customer(tmp_path: Path) -> None:
    events = write_parquet(history(), tmp_path / "events" / "part.parquet")
    out = tmp_path / "features.parquet"

    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--as-of",
            AS_OF.isoformat(),
            "--events",
            str(events.parent),
            "--out",
            str(out),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "wrote 5 customers × 50 features" in result.output
    rows = {row["customer_id"]: row for row in pq.read_table(out).to_pylist()}
    assert rows["A"]["payment_count_30d"] == EXPECTED_A["payment_count_30d"]


def test_build_with_missing_events_exits_2_and_names_the_option(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--as-of",
            "2026-01-01",
            "--events",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "f.parquet"),
        ],
    )

    assert result.exit_code == 2
    assert "--events" in result.output


def test_build_takes_duckdb_threads_and_memory_limit(tmp_path: Path) -> None:
    events = write_parquet(history(), tmp_path / "events" / "part.parquet")
    out = tmp_path / "features.parquet"
    arguments = ["features", "build", "--as-of", AS_OF.isoformat(), "--events", str(events)]

    result = runner.invoke(
        app, [*arguments, "--out", str(out), "--threads", "1", "--memory-limit", "512MB"]
    )

    assert result.exit_code == 0, result.output
    rows = {row["customer_id"]: row for row in pq.read_table(out).to_pylist()}
    assert rows["A"]["payment_amount_30d"] == EXPECTED_A["payment_amount_30d"]


# A Redis database of this test's own: the command works on the default key prefix.
REBUILD_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/13"


def _behaviour_parquet(path: Path) -> Path:
    """The handmade history as a behaviour-event file `events load` accepts."""
    table = pq.read_table(write_parquet(history(), path))
    is_refund = pc.equal(table["event_type"], "refund")
    reference = pc.if_else(is_refund, pa.scalar("ord-1"), pa.scalar(None, pa.string()))
    table = table.append_column("reference_id", reference)
    table = table.append_column("source", pa.array(["handmade"] * table.num_rows))
    pq.write_table(table, path)
    return path


@pytest.mark.redis
def test_bulk_loads_feed_redis_and_rebuild_online_refolds_every_stored_event(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(REBUILD_REDIS)
    try:
        client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REBUILD_REDIS}: {type(error).__name__}")
    client.flushdb()
    events = _behaviour_parquet(tmp_path / "events.parquet")
    with migrated_database(request, "sqlite", tmp_path) as url:
        env = {
            "CREDITLINE_DATABASE_URL": url,
            "CREDITLINE_DATA_DIR": str(tmp_path / "data"),
            "CREDITLINE_REDIS_URL": REBUILD_REDIS,
        }
        loaded = runner.invoke(app, ["events", "load", str(events)], env=env)
        assert loaded.exit_code == 0, loaded.output
        store = RedisFeatureStore(client)
        # The bulk load reached the online state as it stored each batch.
        assert_matches_expected(dict(store.read("A", AS_OF)), EXPECTED_A)

        # State that is not the stored events' (a stray write, an old layout): rebuilt away.
        store.apply([event("A", EventType.PAYMENT, at(-2), amount_minor=9_999)])
        payments = EXPECTED_A["payment_count_30d"]
        assert isinstance(payments, int)
        assert store.read("A", AS_OF)["payment_count_30d"] == payments + 1
        first = runner.invoke(app, ["features", "rebuild-online", "--batch", "7"], env=env)
        second = runner.invoke(app, ["features", "rebuild-online"], env=env)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "from 32 stored events" in second.output
    rebuilt = RedisFeatureStore(redis.Redis.from_url(REBUILD_REDIS))
    assert_matches_expected(dict(rebuilt.read("A", AS_OF)), EXPECTED_A)  # once, not twice
    client.flushdb()


def test_rebuild_online_without_redis_has_nothing_to_do(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["features", "rebuild-online"], env={"CREDITLINE_DATA_DIR": str(tmp_path)}
    )

    assert result.exit_code == 0
    assert "nothing to rebuild" in result.output
