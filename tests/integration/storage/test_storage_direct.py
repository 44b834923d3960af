"""Direct statements give what `Connection.execute` gives, on SQLite and PostgreSQL.

The oracle is SQLAlchemy's own execution of the same statement: rows written one way are
read back the other, and must be equal value for value (types included).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from creditline.storage.direct import DirectStatement, execute_together
from creditline.storage.tables import business_date, idempotency_keys

AT = datetime(2026, 1, 15, 2, 30, 15, 123456, tzinfo=UTC)


def _record(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "key": key,
        "fingerprint": "f" * 64,
        "method": "POST",
        "path": "/v1/applications",
        "state": "completed",
        "status_code": 201,
        "headers": {"content-type": "application/json", "location": "/v1/x/1"},
        "response_body": b'{"ok": true}\x00\xff',
        "created_at": AT,
        "locked_until": AT,
    } | changes


_SELECT_ALL = select(idempotency_keys).where(idempotency_keys.c.key == bindparam("the_key"))


def _by_sqlalchemy(engine: Engine, key: str) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(_SELECT_ALL, {"the_key": key}).one()._mapping)


def test_a_row_written_directly_reads_back_as_sqlalchemy_wrote_it(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(idempotency_keys), _record("by-sqlalchemy"))
        DirectStatement(insert(idempotency_keys)).execute(connection, _record("direct"))
    theirs = _by_sqlalchemy(engine, "by-sqlalchemy")
    ours = _by_sqlalchemy(engine, "direct")
    assert ours | {"key": "by-sqlalchemy"} == theirs
    assert ours["created_at"] == AT
    assert ours["created_at"].tzinfo is not None
    assert ours["headers"] == {"content-type": "application/json", "location": "/v1/x/1"}


def test_rows_read_directly_equal_sqlalchemy_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(idempotency_keys), _record("k1", status_code=None))
        rows = DirectStatement(_SELECT_ALL).execute(connection, {"the_key": "k1"})
        none = DirectStatement(_SELECT_ALL).execute(connection, {"the_key": "absent"})
    assert none == []
    assert rows == [_by_sqlalchemy(engine, "k1")]
    assert [type(v) for v in rows[0].values()] == [
        type(v) for v in _by_sqlalchemy(engine, "k1").values()
    ]


def test_the_statement_keeps_its_own_literal_values(engine: Engine) -> None:
    completed = select(idempotency_keys.c.key).where(idempotency_keys.c.state == "completed")
    with engine.begin() as connection:
        connection.execute(insert(idempotency_keys), _record("done"))
        connection.execute(insert(idempotency_keys), _record("running", state="in_flight"))
        found = DirectStatement(completed.order_by(idempotency_keys.c.key)).execute(connection, {})
    assert found == [{"key": "done"}]


def test_dates_go_in_and_come_back_as_dates(engine: Engine) -> None:
    read = select(business_date.c.business_date.label("day"), business_date.c.updated_at)
    with engine.begin() as connection:
        DirectStatement(insert(business_date)).execute(
            connection, {"id": 1, "business_date": date(2026, 2, 28), "updated_at": AT}
        )
        rows = DirectStatement(read).execute(connection, {})
    assert rows == [{"day": date(2026, 2, 28), "updated_at": AT}]
    with engine.connect() as connection:
        assert connection.execute(select(business_date.c.business_date)).scalar_one() == date(
            2026, 2, 28
        )


def test_many_rows_and_returning(engine: Engine) -> None:
    insert_key = insert(idempotency_keys).returning(idempotency_keys.c.key)
    with engine.begin() as connection:
        DirectStatement(insert(idempotency_keys)).execute_many(
            connection, [_record("a"), _record("b"), _record("c")]
        )
        returned = DirectStatement(insert_key).execute(connection, _record("d"))
        DirectStatement(
            update(idempotency_keys).where(idempotency_keys.c.key == bindparam("the_key"))
        ).execute(connection, {"the_key": "b", "status_code": 409})
    assert returned == [{"key": "d"}]
    assert _by_sqlalchemy(engine, "b")["status_code"] == 409
    assert _by_sqlalchemy(engine, "a")["status_code"] == 201


def test_a_duplicate_key_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    statement = DirectStatement(insert(idempotency_keys))
    with engine.connect() as connection, connection.begin():
        statement.execute(connection, _record("twice"))
        with pytest.raises(IntegrityError):
            statement.execute(connection, _record("twice"))


def test_a_naive_datetime_is_refused_as_sqlalchemy_refuses_it(engine: Engine) -> None:
    naive = _record("naive", created_at=AT.replace(tzinfo=None))
    with (
        engine.connect() as connection,
        connection.begin(),
        pytest.raises(StatementError, match="naive"),
    ):
        connection.execute(insert(idempotency_keys), naive)
    with (
        engine.connect() as connection,
        connection.begin(),
        pytest.raises(StatementError, match="naive"),
    ):
        DirectStatement(insert(idempotency_keys)).execute(connection, naive)


def test_an_expanding_list_is_refused(engine: Engine) -> None:
    listed = select(idempotency_keys.c.key).where(
        idempotency_keys.c.key.in_(bindparam("keys", expanding=True))
    )
    with engine.connect() as connection, pytest.raises(TypeError, match="rewritten"):
        DirectStatement(listed).execute(connection, {"keys": ["a"]})


def test_a_lost_connection_is_invalidated_as_sqlalchemy_would(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a server that drops the connection is PostgreSQL's case")
    with engine.connect() as connection:
        pid = connection.execute(select(func.pg_backend_pid())).scalar_one()
        with engine.connect() as other:
            other.execute(select(func.pg_terminate_backend(pid)))
            other.commit()
        with pytest.raises(DBAPIError) as raised:
            DirectStatement(_SELECT_ALL).execute(connection, {"the_key": "k"})
        assert raised.value.connection_invalidated
        assert connection.invalidated
    # The pool hands out a working connection afterwards.
    with engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 0
        )


def test_statements_sent_together_return_what_each_returns_alone(engine: Engine) -> None:
    completed = select(idempotency_keys.c.key, idempotency_keys.c.created_at).where(
        idempotency_keys.c.state == "completed"
    )
    counted = select(func.count().label("n")).select_from(idempotency_keys)
    with engine.begin() as connection:
        connection.execute(insert(idempotency_keys), _record("done"))
        connection.execute(insert(idempotency_keys), _record("running", state="in_flight"))
        alone = [
            DirectStatement(_SELECT_ALL).execute(connection, {"the_key": "running"}),
            DirectStatement(completed).execute(connection, {}),
            DirectStatement(_SELECT_ALL).execute(connection, {"the_key": "absent"}),
            DirectStatement(counted).execute(connection, {}),
        ]
        together = execute_together(
            connection,
            [
                (DirectStatement(_SELECT_ALL), {"the_key": "running"}),
                (DirectStatement(completed), {}),
                (DirectStatement(_SELECT_ALL), {"the_key": "absent"}),
                (DirectStatement(counted), {}),
            ],
        )
    assert together == alone
    assert together[1] == [{"key": "done", "created_at": AT}]
    assert together[3] == [{"n": 2}]
    assert together[0][0]["headers"] == {"content-type": "application/json", "location": "/v1/x/1"}


def test_a_statement_sent_together_sees_the_writes_before_it(engine: Engine) -> None:
    counted = DirectStatement(select(func.count().label("n")).select_from(idempotency_keys))
    with engine.begin() as connection:
        found = execute_together(
            connection,
            [
                (counted, {}),
                (DirectStatement(insert(idempotency_keys)), _record("new")),
                (counted, {}),
            ],
        )
    assert found == [[{"n": 0}], [], [{"n": 1}]]
    assert _by_sqlalchemy(engine, "new")["state"] == "completed"


def test_an_error_among_statements_sent_together_is_sqlalchemys(engine: Engine) -> None:
    statement = DirectStatement(insert(idempotency_keys))
    with engine.connect() as connection:
        with pytest.raises(IntegrityError), connection.begin():
            execute_together(
                connection,
                [
                    (statement, _record("twice")),
                    (statement, _record("twice")),
                    (statement, _record("after")),
                ],
            )
        # The transaction rolled back: none of them is kept, and the connection still works.
        assert (
            connection.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 0
        )
