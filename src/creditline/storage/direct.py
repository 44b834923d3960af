"""Statements run on the driver's cursor, past SQLAlchemy's execution layer.

A `DirectStatement` is a Core statement that SQLAlchemy builds and compiles (once per
dialect and set of parameter names) and that then runs on the DBAPI cursor of the
caller's transaction. Running a cached statement through `Connection.execute` cost about
three and a half times the driver's own CPU here (219 µs against 61 µs for a one-row
`SELECT` on PostgreSQL; see docs/benchmarks.md), and a credit decision runs seven of
them, so the statements of the decision, draw and repayment paths take this way.

What SQLAlchemy would do around the driver is kept: values go in through each bind's type
(`TypeEngine.bind_processor`: `UtcDateTime` refuses a naive datetime, JSON is serialised,
SQLite dates become text), rows come back through each column's result processor (aware
UTC datetimes, parsed JSON, dates from SQLite's text), and a driver error is raised as
SQLAlchemy's own (`IntegrityError` for a unique key, and so on; a lost connection is
invalidated), so callers cannot tell the difference. The statement runs in the caller's
transaction, on its connection, which must already have begun
(`storage.uow.transaction_connection` begins it); inside `uow.committing()` it is queued
in the same PostgreSQL pipeline as any other write. Statements that SQLAlchemy rewrites
per execution (expanding `IN` lists) are refused.

`execute_together` runs a few statements whose values do not depend on each other's rows
in one round trip on PostgreSQL (a psycopg pipeline closed by one sync): the server still
runs them one after the other, each with its own snapshot, so a statement sees the locks
and writes of the ones before it, as it would if they were sent one by one. Each round
trip costs CPU on both sides (a send, a wake-up, a poll, a receive) beside the wait.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

_CURSOR_KEY = "storage.direct_cursor"
_CURSORS_KEY = "storage.direct_cursors"

Processor = Callable[[Any], Any]


@dataclass(slots=True)
class _Compiled:
    sql: str
    compiled: SQLCompiler
    #: Bind names in the order a positional driver takes them (None: the driver takes names).
    order: tuple[str, ...] | None
    binds: tuple[tuple[str, Processor], ...]
    columns: tuple[str, ...]
    types: tuple[TypeEngine[Any], ...]
    #: The statement's own literal binds ('closed', 0), by name, when every other bind is
    #: named by its key and given by the caller: then the parameters are the caller's
    #: values plus these (None: SQLAlchemy's `construct_params` builds them).
    fixed: dict[str, Any] | None
    #: (index, processor) of the columns whose values need one; known after a first run,
    #: since a type may choose its processor by the driver's type code (PostgreSQL's OID).
    results: tuple[tuple[int, Processor], ...] | None = None


class DirectStatement:
    """A statement of a hot path, run on the driver's cursor (see the module docstring)."""

    def __init__(self, statement: Select[Any] | Insert | Update | Delete) -> None:
        self._statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run with one set of values; the rows it returns, by column key (none for a write
        without `RETURNING`, or inside a pipeline)."""
        form = self._form(connection.dialect, values)
        cursor = _cursor(connection)
        parameters = _parameters(form, values)
        try:
            cursor.execute(form.sql, parameters)
            rows = cursor.fetchall() if form.columns and _has_rows(cursor) else []
        except connection.dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection, form.sql, parameters, error) from error
        return _rows(form, connection.dialect, cursor, rows)

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a write once per set of values (all with the same names), returning nothing."""
        if not rows:
            return
        form = self._form(connection.dialect, rows[0])
        cursor = _cursor(connection)
        parameters = [_parameters(form, values) for values in rows]
        try:
            cursor.executemany(form.sql, parameters)
        except connection.dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection, form.sql, parameters, error) from error

    def _form(self, dialect: Dialect, values: Mapping[str, Any]) -> _Compiled:
        key = (dialect.name, frozenset(values))
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _compile(self._statement, dialect, sorted(values))
        return found


def execute_together(
    connection: Connection, statements: Sequence[tuple[DirectStatement, Mapping[str, Any]]]
) -> list[list[dict[str, Any]]]:
    """Run the statements in order, in one round trip on PostgreSQL (see the module
    docstring); the rows of each, as `DirectStatement.execute` returns them. An error in
    any of them is raised, as SQLAlchemy's, once all were sent; the ones after it do not
    run. Elsewhere, or inside a pipeline already open, they run one by one."""
    driver = connection.connection.driver_connection
    if (
        not isinstance(driver, psycopg.Connection)
        or driver.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF
    ):
        return [statement.execute(connection, values) for statement, values in statements]
    dialect = connection.dialect
    cursors = _cursors(connection, driver, len(statements))
    sent = []
    try:
        with driver.pipeline():
            for (statement, values), cursor in zip(statements, cursors, strict=True):
                form = statement._form(dialect, values)
                parameters = _parameters(form, values)
                sent.append((form, parameters))
                cursor.execute(form.sql, parameters)
        found = []
        for (form, _), cursor in zip(sent, cursors, strict=False):
            rows = cursor.fetchall() if form.columns and _has_rows(cursor) else []
            found.append(_rows(form, dialect, cursor, rows))
    except psycopg.Error as error:
        sql = "; ".join(form.sql for form, _ in sent)
        raise _wrapped(connection, sql, [parameters for _, parameters in sent], error) from error
    return found


def _rows(
    form: _Compiled, dialect: Dialect, cursor: Any, rows: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    if not rows:
        return []
    results = form.results
    if results is None:
        results = form.results = _result_processors(form, dialect, cursor)
    return [_row(form.columns, results, row) for row in rows]


def _compile(
    statement: Select[Any] | Insert | Update | Delete, dialect: Dialect, names: list[str]
) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=names)
    if not isinstance(compiled, SQLCompiler):  # pragma: no cover - Core statements compile so
        raise TypeError(f"not a SQL statement: {statement!r}")
    if compiled.post_compile_params or compiled.escaped_bind_names:
        raise TypeError("a statement rewritten per execution cannot run directly")
    binds = []
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            binds.append((name, processor))
    returned = _returned(statement)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Compiled(
        compiled.string,
        compiled,
        order,
        tuple(binds),
        tuple(key for key, _ in returned),
        tuple(type_ for _, type_ in returned),
        _fixed_binds(compiled, frozenset(names)),
    )


def _fixed_binds(compiled: SQLCompiler, names: frozenset[str]) -> dict[str, Any] | None:
    """The values `construct_params` adds to `names` for this statement, when they do not
    depend on the execution (see `_Compiled.fixed`); None otherwise. SQLAlchemy itself is
    asked, once, with a marker for each name: what it returns beside the markers is fixed."""
    if any(bind.callable is not None for bind in compiled.bind_names):
        return None
    try:
        probe = compiled.construct_params({name: _Given(name) for name in names})
    except Exception:  # a required value missing: construct_params says so at each run
        return None
    fixed: dict[str, Any] = {}
    for key, value in probe.items():
        if isinstance(value, _Given):
            if value.name != key:
                return None
        elif key in names:
            return None
        else:
            fixed[key] = value
    return fixed


@dataclass(frozen=True, slots=True)
class _Given:
    name: str


def _has_rows(cursor: Any) -> bool:
    """Whether the cursor's last statement returned rows (psycopg's `description` builds a
    column object per column each time it is asked, so its result is asked instead)."""
    result: Any = getattr(cursor, "pgresult", _NO_RESULT)
    if result is _NO_RESULT:
        return cursor.description is not None
    return result is not None and result.status == _TUPLES_OK


_NO_RESULT = object()
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


def _result_processors(
    form: _Compiled, dialect: Dialect, cursor: Any
) -> tuple[tuple[int, Processor], ...]:
    found = []
    for index, (type_, described) in enumerate(zip(form.types, cursor.description, strict=True)):
        processor = type_.dialect_impl(dialect).result_processor(dialect, described[1])
        if processor is not None:
            found.append((index, processor))
    return tuple(found)


def _returned(statement: Select[Any] | Insert | Update | Delete) -> list[tuple[str, Any]]:
    """(key, type) of each column the statement returns, in order."""
    if isinstance(statement, Select):
        return [(str(column.key), column.type) for column in statement.selected_columns]
    return [
        (str(description["name"]), description["type"])
        for description in statement.returning_column_descriptions
    ]


def _parameters(form: _Compiled, values: Mapping[str, Any]) -> Any:
    # The statement's own literal binds ('closed', 0) are added to the values.
    fixed = form.fixed
    if fixed is None:
        params = form.compiled.construct_params(dict(values))
    else:
        params = {**values, **fixed} if fixed else dict(values)
    for name, processor in form.binds:
        try:
            params[name] = processor(params[name])
        except Exception as error:  # as SQLAlchemy reports a value its type refuses
            raise StatementError(str(error), form.sql, dict(values), error) from error
    if form.order is None:
        return params
    return tuple(params[name] for name in form.order)


def _row(
    columns: tuple[str, ...], results: tuple[tuple[int, Processor], ...], raw: Sequence[Any]
) -> dict[str, Any]:
    values = list(raw)
    for index, processor in results:
        values[index] = processor(values[index])
    return dict(zip(columns, values, strict=True))


def _cursor(connection: Connection) -> Any:
    """The driver cursor kept for this DBAPI connection (a cursor per statement cost
    more than some statements)."""
    driver = connection.connection.driver_connection
    cached = connection.info.get(_CURSOR_KEY)
    if cached is not None and cached[0] is driver:
        return cached[1]
    cursor = driver.cursor()  # type: ignore[union-attr]
    connection.info[_CURSOR_KEY] = (driver, cursor)
    return cursor


def _cursors(connection: Connection, driver: psycopg.Connection[Any], count: int) -> list[Any]:
    """`count` driver cursors kept for this DBAPI connection, beside the one of `_cursor`
    (statements sent together each need their own: a cursor holds one result)."""
    cached = connection.info.get(_CURSORS_KEY)
    if cached is None or cached[0] is not driver:
        cached = connection.info[_CURSORS_KEY] = (driver, [])
    cursors: list[Any] = cached[1]
    while len(cursors) < count:
        cursors.append(driver.cursor())
    return cursors[:count]


def _wrapped(connection: Connection, sql: str, parameters: Any, error: Any) -> StatementError:
    """The driver's error as SQLAlchemy's; a lost connection is invalidated, as SQLAlchemy
    does, so the pool does not hand it out again."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
    if lost:
        connection.invalidate(error)
    wrapped: StatementError = DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    return wrapped
