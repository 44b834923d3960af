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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

_CURSOR_KEY = "storage.direct_cursor"

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
            rows = cursor.fetchall() if form.columns and cursor.description else []
        except connection.dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection, form.sql, parameters, error) from error
        if not rows:
            return []
        results = form.results
        if results is None:
            results = form.results = _result_processors(form, connection.dialect, cursor)
        return [_row(form.columns, results, row) for row in rows]

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
    )


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
    # construct_params adds the statement's own literal binds ('closed', 0) to the values.
    params = form.compiled.construct_params(dict(values))
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
