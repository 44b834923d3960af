"""The SQLite checkpointer: commits reach the database file off the request path, and a
disposed engine leaves the file complete on its own (no WAL needed to read it)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from creditline.storage.engine import create_db_engine


def rows_in_file_alone(database: Path, copy: Path) -> int:
    """Rows of `t` in a copy of the database file without its WAL: what a checkpoint wrote."""
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy)
    try:
        return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself has not been checkpointed yet
        return 0
    finally:
        connection.close()


def test_commits_reach_the_database_file_without_a_commit_checkpointing(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t (id) VALUES (1), (2), (3)"))
        # A few pages, far below the commits' own threshold: only the thread copies them.
        deadline = time.monotonic() + 10
        while rows_in_file_alone(database, tmp_path / "copy.sqlite") < 3:
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            time.sleep(0.1)
    finally:
        engine.dispose()


def test_a_disposed_engine_leaves_a_complete_file_and_no_thread(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    engine = create_db_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO t (id) VALUES (1), (2)"))
    engine.dispose()

    assert rows_in_file_alone(database, tmp_path / "copy.sqlite") == 2
    assert not [t for t in threading.enumerate() if t.name == "wal-checkpoint:db.sqlite"]
