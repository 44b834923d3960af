"""`creditline features list | build` through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from creditline.cli.main import app
from creditline.features.domain.definitions import feature_names
from tests.unit.features.handmade import AS_OF, EXPECTED_A, history, write_parquet

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
