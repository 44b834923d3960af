"""A pooled PostgreSQL connection is pinged before use only after sitting idle.

The engine replaces a connection that died while idle (here: killed by the server) with a
new one before handing it out, so the caller never sees the dead one; a connection that
went back to the pool a moment ago is handed out without a round trip.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, text

from creditline.storage.engine import create_db_engine


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def test_a_connection_killed_while_idle_is_replaced_before_use(postgres_server: str) -> None:
    engine = create_db_engine(postgres_server, ping_after_idle=0.05)
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        first = _backend_pid(engine)
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        time.sleep(0.1)

        second = _backend_pid(engine)  # would raise if the dead connection were handed out

        assert second != first
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_back_in_the_pool_a_moment_ago_is_not_pinged(postgres_server: str) -> None:
    engine = create_db_engine(postgres_server, ping_after_idle=3600)
    pings = 0
    original = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        nonlocal pings
        pings += 1
        return original(dbapi_connection)

    engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
    try:
        first = _backend_pid(engine)
        second = _backend_pid(engine)

        assert second == first
        assert pings == 0
    finally:
        engine.dispose()
