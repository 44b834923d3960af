"""`creditline events load` and `creditline simulate` from the command line.

Includes the crash test: a loader process is killed mid-load, the file is loaded again,
and every event is then stored exactly once.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from creditline.cli import events as events_cli
from creditline.cli.main import app
from tests.conftest import DATABASES, migrated_database

runner = CliRunner()
HEADER = [
    "event_id",
    "customer_id",
    "event_type",
    "occurred_at",
    "source",
    "amount_minor",
    "category",
]


def good(n: int) -> dict[str, object]:
    return {
        "event_id": f"evt-{n}",
        "customer_id": f"cus-{n % 7}",
        "event_type": "payment",
        "occurred_at": f"2026-01-{1 + n % 28:02d}T10:00:00+08:00",
        "source": "alipay",
        "amount_minor": 100 + n,
        "category": "dining",
    }


@pytest.fixture(params=DATABASES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with migrated_database(request, request.param, tmp_path) as url:
        yield {"CREDITLINE_DATABASE_URL": url, "CREDITLINE_DATA_DIR": str(tmp_path / "data")}


def stored(env: dict[str, str]) -> tuple[int, int]:
    engine = create_engine(env["CREDITLINE_DATABASE_URL"])
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT count(*), count(DISTINCT event_id) FROM behaviour_events")
        ).one()
    engine.dispose()
    return int(row[0]), int(row[1])


def write_csv(path: Path, rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])


def as_row(event: dict[str, object]) -> list[object]:
    return [event[name] for name in HEADER]


@pytest.mark.parametrize("reader", ["--reader-process", "--no-reader-process"])
def test_a_csv_with_every_kind_of_bad_row(env: dict[str, str], tmp_path: Path, reader: str) -> None:
    file = tmp_path / "events.csv"
    write_csv(
        file,
        [
            as_row(good(1)),  # line 2
            as_row({**good(2), "amount_minor": "12.50"}),  # line 3: not whole fen
            as_row({**good(3), "occurred_at": "2026-01-03 10:00"}),  # line 4: no offset
            as_row({**good(4), "event_type": "loan"}),  # line 5: unknown type
            as_row({**good(5), "customer_id": ""}),  # line 6: missing
            as_row(good(1)),  # line 7: duplicate of line 2
            ["evt-8", "cus-1"],  # line 8: too few values
            [*as_row(good(9)), "surplus"],  # line 9: too many values
            as_row({**good(1), "amount_minor": 5}),  # line 10: id reused for other content
            as_row(good(11)),  # line 11
        ],
    )

    result = runner.invoke(app, ["events", "load", str(file), reader], env=env)

    assert result.exit_code == 0, result.output
    assert "10 rows: 2 stored, 1 duplicates, 7 rejected" in result.stdout
    with (tmp_path / "events.csv.errors.csv").open() as handle:
        errors = [(r["line"], r["field"], r["code"]) for r in csv.DictReader(handle)]
    assert errors == [
        ("3", "amount_minor", "invalid_type"),
        ("4", "occurred_at", "invalid_type"),
        ("5", "event_type", "unknown_value"),
        ("6", "customer_id", "required"),
        ("8", "line", "missing_values"),
        ("9", "line", "extra_values"),
        ("10", "event_id", "conflict"),
    ]
    assert stored(env) == (2, 2)


def test_json_lines_and_parquet_load_the_same_events(env: dict[str, str], tmp_path: Path) -> None:
    events = [good(n) for n in range(50)]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(json.dumps(e) for e in events) + "\n{not json\n[1]\n")
    parquet = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist([*events, good(50)]), parquet)

    first = runner.invoke(app, ["events", "load", str(jsonl)], env=env)
    second = runner.invoke(app, ["events", "load", str(parquet)], env=env)

    assert first.exit_code == 0, first.output
    assert "52 rows: 50 stored, 0 duplicates, 2 rejected" in first.stdout
    assert "line 51: line: not valid JSON" in first.stderr
    assert "51 rows: 1 stored, 50 duplicates, 0 rejected" in second.stdout
    assert stored(env) == (51, 51)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("events.txt", "a,b\n"),
        ("missing.csv", None),
        ("events.csv", "customer_id,amount\n1,2\n"),
        ("events.parquet", "not parquet at all"),
    ],
)
def test_unusable_input_exits_with_2(
    env: dict[str, str], tmp_path: Path, name: str, content: str | None
) -> None:
    file = tmp_path / name
    if content is not None:
        file.write_text(content)

    result = runner.invoke(app, ["events", "load", str(file)], env=env)

    assert result.exit_code == 2
    assert stored(env) == (0, 0)


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["--reader-process", "--no-reader-process"])
def test_a_killed_load_then_a_reload_stores_every_event_exactly_once(
    env: dict[str, str], tmp_path: Path, reader: str
) -> None:
    total = 20_000
    file = tmp_path / "events.jsonl"
    file.write_text("\n".join(json.dumps(good(n)) for n in range(total)) + "\n")
    command = [
        sys.executable,
        "-m",
        "creditline.cli.main",
        "events",
        "load",
        str(file),
        "--batch",
        "500",
        reader,
    ]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while stored(env)[0] < 1_000 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    readers = psutil.Process(process.pid).children()  # a batch reader is a forked child
    process.send_signal(signal.SIGKILL)
    process.wait()
    before, _ = stored(env)
    _, alive = psutil.wait_procs(readers, timeout=10)

    result = runner.invoke(app, ["events", "load", str(file)], env=env)

    assert 0 < before < total, "the loader must die part-way through"
    assert len(readers) == (1 if reader == "--reader-process" else 0)
    assert not alive, "the batch reader must end with its loader"
    assert result.exit_code == 0, result.output
    assert (
        f"{total} rows: {total - before} stored, {before} duplicates, 0 rejected" in result.stdout
    )
    assert stored(env) == (total, total)


def test_simulate_writes_a_population_and_refuses_bad_options(tmp_path: Path) -> None:
    out = tmp_path / "sim"

    made = runner.invoke(
        app, ["simulate", "--customers", "300", "--months", "1", "--out", str(out)]
    )
    bad = runner.invoke(app, ["simulate", "--base-rate", "0.9", "--out", str(tmp_path / "b")])

    assert made.exit_code == 0, made.output
    assert (out / "customers.parquet").exists()
    assert (out / "outcomes.parquet").exists()
    assert pq.read_table(out / "customers.parquet").num_rows == 300
    assert bad.exit_code == 2


def test_stored_events_export_to_month_partitions_that_duckdb_reads(
    env: dict[str, str], tmp_path: Path
) -> None:
    import duckdb

    file = tmp_path / "events.jsonl"
    events = [good(n) for n in range(30)] + [{**good(99), "occurred_at": "2026-01-31T23:30:00Z"}]
    file.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    runner.invoke(app, ["events", "load", str(file)], env=env)

    result = runner.invoke(app, ["events", "export", "--out", str(tmp_path / "x")], env=env)
    again = runner.invoke(app, ["events", "export", "--out", str(tmp_path / "x")], env=env)

    assert result.exit_code == 0, result.output
    assert again.exit_code == 2
    query = f"""
        SELECT event_month, count(*), sum(amount_minor)
        FROM read_parquet('{tmp_path}/x/**/*.parquet', hive_partitioning = true)
        GROUP BY 1 ORDER BY 1
    """
    with duckdb.connect() as connection:
        months = connection.execute(query).fetchall()
    # 23:30 UTC on 31 January is 07:30 on 1 February in China time.
    expected_january = sum(100 + n for n in range(30))
    assert months == [("2026-01", 30, expected_january), ("2026-02", 1, 199)]


def test_a_load_raises_the_collectors_threshold_only_while_it_runs(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int, int]] = []
    real = events_cli._load_all

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(events_cli, "_load_all", spy)
    before = gc.get_threshold()
    file = tmp_path / "events.csv"
    write_csv(file, [as_row(good(1))])

    result = runner.invoke(app, ["events", "load", str(file)], env=env)

    assert result.exit_code == 0, result.output
    assert seen == [(events_cli.BULK_GC_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == before
