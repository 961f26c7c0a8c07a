"""Core statements compiled once per dialect and run on the session's own DBAPI connection.

The hot path's Core statements are built once at import, yet SQLAlchemy still derives a cache key, an execution
context and a result wrapper on every execution: about 50 µs of CPU per statement on PostgreSQL (105 µs against
41 µs for the same statement run on the driver with SQLAlchemy's own bind and result processors), and a sign-in
runs about twenty. A `Prepared` statement keeps the compiled SQL, the order of its parameters and the type
processors per dialect, and runs on the driver connection of the session's transaction (so SQLite's BEGIN
IMMEDIATE and PostgreSQL's transaction cover it; commit and rollback stay SQLAlchemy's), through one driver cursor
per transaction.

Only what can be done exactly is accepted, and anything else is refused when it is compiled: no ORM entities, no
expanding or literal-rendered parameters, no Python-side column defaults (an insert names every column), no
callable parameter values. A driver error comes back as SQLAlchemy's exception class (IntegrityError...); a lost
connection is handed to SQLAlchemy so that it discards the pool as it would have.

These statements do not pass through engine events (before_cursor_execute...) nor Session events: none of them
touches the configuration tables, whose writes the configuration cache watches through those events.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import errors as pg_errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy import Connection, Delete, Insert, Select, Update, event, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.elements import BindParameter

_REQUIRED = object()  # a parameter the caller must give
_POSITIONAL = ("qmark", "format", "numeric")
_NAMED = ("named", "pyformat")

Processor = Callable[[Any], Any] | None


class Unsupported(ValueError):
    """A statement this module cannot run exactly as SQLAlchemy would."""


@dataclass(frozen=True, slots=True)
class _Bind:
    name: str  # in the compiled SQL
    key: str  # in the caller's parameters
    default: Any  # _REQUIRED, or the value a bound literal carries
    process: Processor


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    binds: tuple[_Bind, ...]
    positions: tuple[str, ...] | None  # positional paramstyles: bind names in the order of the placeholders
    results: tuple[Processor, ...]
    row: type[tuple[Any, ...]] | None  # None: the statement returns no rows
    # psycopg only: the SQL with $n placeholders and the bind names in their order, for libpq (see _Libpq).
    numbered: bytes | None = None
    numbered_names: tuple[str, ...] = ()
    numbered_formats: tuple[PyFormat, ...] = ()  # psycopg picks each parameter's format by its Python type

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        values: dict[str, Any] = {}
        for bind in self.binds:
            if bind.key in params:
                value = params[bind.key]
            elif bind.default is _REQUIRED:
                raise exc.ArgumentError(f"A value is required for the parameter {bind.key!r}")
            else:
                value = bind.default
            values[bind.name] = value if bind.process is None else bind.process(value)
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


class Prepared:
    """One Core statement (insert, update, delete, or select of columns) run without SQLAlchemy's per-execution
    machinery. Results are rows with attribute and index access, as a Core result's."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: Insert | Update | Delete | Select[Any]) -> None:
        if not isinstance(statement, Insert | Update | Delete | Select):
            raise Unsupported(f"not an insert, update, delete or select: {type(statement).__name__}")
        if isinstance(statement, Select) and any(d.get("entity") is not None and d["expr"] is d["entity"]
                                                 for d in statement.column_descriptions):
            raise Unsupported("a select of ORM entities needs the ORM's loading")
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def plan(self, dialect: Dialect) -> _Plan:
        """The statement compiled for this dialect (once per dialect name); raises Unsupported."""
        found = self._plans.get(dialect.name)
        if found is None:
            found = self._plans[dialect.name] = _compile(self.statement, dialect)
        return found

    def run(self, session: Session, params: Mapping[str, Any]) -> int:
        """Execute; the number of rows it matched (rowcount)."""
        return self._execute(session, params)[2]

    def all(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        plan, fetched, _ = self._execute(session, params, rows=True)
        assert fetched is not None
        make = plan.row._make  # type: ignore[union-attr]
        results = plan.results
        if not any(results):
            return [make(r) for r in fetched]
        return [make(v if p is None else p(v) for p, v in zip(results, r, strict=True)) for r in fetched]

    def first(self, session: Session, params: Mapping[str, Any]) -> Any:
        rows = self.all(session, params)
        return rows[0] if rows else None

    def scalar(self, session: Session, params: Mapping[str, Any]) -> Any:
        row = self.first(session, params)
        return row[0] if row is not None else None

    def _execute(self, session: Session, params: Mapping[str, Any], rows: bool = False
                 ) -> tuple[_Plan, list[tuple[Any, ...]] | None, int]:
        """Run the statement: its plan, its rows (None when it returns none) and its rowcount."""
        on = _on(session)
        plan = self.plan(on.dialect)
        if rows and plan.row is None:
            raise Unsupported("this statement returns no rows: use run")
        parameters = plan.parameters(params)
        try:
            if on.libpq is not None and plan.numbered is not None and on.libpq.ready(on.begin):
                assert isinstance(parameters, dict)
                return plan, *on.libpq.execute(plan, parameters)
            cursor = on.cursor
            cursor.execute(plan.sql, parameters)
            return plan, cursor.fetchall() if plan.row is not None else None, int(cursor.rowcount)
        except on.dialect.loaded_dbapi.Error as error:
            dialect, connection = on.dialect, on.connection
            if dialect.is_disconnect(error, connection.connection.dbapi_connection, on.cursor):
                # Let SQLAlchemy meet the dead connection itself: it invalidates the pool, as the first statement
                # of any transaction would after a database restart.
                connection.execute(self.statement, dict(params))
            raise exc.DBAPIError.instance(plan.sql, parameters, error, dialect.loaded_dbapi.Error,
                                          dialect=dialect) from error


class _Libpq:
    """A psycopg connection's libpq side, for prepared statements.

    psycopg's cursor costs about 40 µs of CPU per small statement here, most of it Python around libpq; the same
    statement prepared once per connection and run with libpq's PQexecPrepared, its parameters dumped and its
    rows loaded by psycopg's own adapters (the connection's, as its cursors use), costs about 25 µs. The
    transaction is begun as psycopg begins it, with a plain BEGIN (a connection with an isolation level or
    another transaction characteristic set, or in autocommit, goes through the cursor instead; a sign-in
    ceremony's BEGIN also relaxes synchronous_commit, in the same round trip: see begin_hot); a transaction in
    error goes through the cursor too, to be refused as psycopg refuses it. psycopg's own preparing is off
    (store/db.py): after a rollback it would deallocate every prepared statement, these too."""

    __slots__ = ("_cursor", "driver", "names", "pgconn", "transformer")

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.pgconn = driver.pgconn
        self.transformer = Transformer(driver)
        # Statements prepared on this connection, by SQL and parameter types: they live as long as it does.
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._cursor: Any = None

    def cursor(self) -> Any:
        """One driver cursor for every transaction on this connection (one at a time, as the pool lends it)."""
        if self._cursor is None:
            self._cursor = self.driver.cursor()
        return self._cursor

    def ready(self, begin: bytes) -> bool:
        """In a transaction (or able to begin one with a plain BEGIN, begun now with `begin`), and not in error."""
        status = self.pgconn.transaction_status
        if status == TransactionStatus.INTRANS:
            return True
        if status != TransactionStatus.IDLE:
            return False
        driver = self.driver
        if driver.autocommit or driver.isolation_level is not None or driver.read_only is not None \
                or driver.deferrable is not None:
            return False
        # Not sent with the first statement in libpq's pipeline mode: psycopg's wrapper of PQgetResult, which that
        # mode needs, keeps the GIL while it waits, so a statement waiting for a row lock would stop the thread
        # that holds the lock (a race test hung so). PQexec and PQexecPrepared wait without it.
        self._check(self.pgconn.exec_(begin), ExecStatus.COMMAND_OK)
        return True

    def execute(self, plan: _Plan, parameters: dict[str, Any]) -> tuple[list[tuple[Any, ...]] | None, int]:
        assert plan.numbered is not None
        tx, pgconn = self.transformer, self.pgconn
        dumped = tx.dump_sequence([parameters[n] for n in plan.numbered_names], plan.numbered_formats)
        types = tuple(tx.types or ())
        key = (plan.numbered, types)
        name = self.names.get(key)
        if name is None:
            name = b"passgate_%d" % len(self.names)
            self._check(pgconn.prepare(name, plan.numbered, types), ExecStatus.COMMAND_OK)
            self.names[key] = name
        result = pgconn.exec_prepared(name, dumped, tx.formats)
        self._check(result, ExecStatus.TUPLES_OK if plan.row is not None else ExecStatus.COMMAND_OK)
        rowcount = -1 if result.command_tuples is None else int(result.command_tuples)
        if plan.row is None:
            return None, rowcount
        tx.set_pgresult(result)
        fetched = tx.load_rows(0, result.ntuples, tuple)
        tx.set_pgresult(None)  # the result's memory goes now, not at the connection's next statement
        return fetched, rowcount

    def end(self, commit: bool) -> None:
        """COMMIT (or ROLLBACK) the connection's transaction, when it is in one."""
        status = self.pgconn.transaction_status
        if status == TransactionStatus.IDLE:
            return
        if status not in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            raise pg_errors.OperationalError(self._error("the connection is not usable"))
        failed = status == TransactionStatus.INERROR
        # PostgreSQL answers COMMIT in a failed transaction with a rollback, not an error: said here instead.
        self._check(self.pgconn.exec_(b"COMMIT" if commit and not failed else b"ROLLBACK"), ExecStatus.COMMAND_OK)
        if commit and failed:
            raise pg_errors.InFailedSqlTransaction("a statement of this transaction failed: it was rolled back")

    def _error(self, default: str) -> str:
        return (self.pgconn.error_message or b"").decode(errors="replace").strip() or default

    def _check(self, result: Any, wanted: ExecStatus) -> None:
        """psycopg's exception for a failed statement, as its cursor raises it."""
        if result.status == wanted:
            return
        if result.status == ExecStatus.FATAL_ERROR and not self.driver.broken:
            raise pg_errors.error_from_result(result, encoding=self.driver.info.encoding)
        message = (result.error_message or b"").decode(errors="replace").strip()
        raise pg_errors.OperationalError(message or f"unexpected result: {ExecStatus(result.status).name}")


# session.info key: the connection the session's current transaction runs on, with one driver cursor for it.
_ON = "passgate.prepared.on"
# A pooled connection's info key: its _Libpq, with the statements prepared on it. SQLAlchemy clears this
# dictionary whenever it replaces the driver connection (invalidated, recycled): a new one starts with none.
_LIBPQ = "passgate.prepared.libpq"


# _On.transaction of a transaction that `begin_hot` runs outside SQLAlchemy's transaction machinery.
_HOT = "hot"
_BEGIN = b"BEGIN"
# One round trip: the simple query protocol runs both. SET LOCAL ends with the transaction, commit or rollback.
_BEGIN_RELAXED = b"BEGIN; SET LOCAL synchronous_commit TO off"


@dataclass(frozen=True, slots=True)
class _On:
    transaction: SessionTransaction | str
    connection: Connection
    dialect: Dialect
    cursor: Any
    libpq: _Libpq | None
    begin: bytes = _BEGIN  # what begins the transaction on libpq, when a prepared statement begins it


def _on(session: Session) -> _On:
    """Where the session's current transaction (or savepoint) runs its statements. `Session.connection()` and a
    new driver cursor cost more CPU than a small statement itself (about a third of a three-statement
    transaction, by profile), so both are kept for the transaction's next statements. The transaction object is
    the key: a savepoint, a new transaction, or one that an error deactivated goes back to `Session.connection()`,
    which begins it or raises as SQLAlchemy would."""
    found: _On | None = session.info.get(_ON)
    transaction = session.get_nested_transaction() or session.get_transaction()
    if found is not None:
        if transaction is None:
            if found.transaction is _HOT:
                return found
        elif found.transaction is transaction and transaction.is_active:
            return found
    # Once the ORM takes part in a hot transaction, its transaction is the key, as in any other: a savepoint is
    # only emitted when `Session.connection()` is asked for inside it, and an error it met must refuse the rest.
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None
    transaction = session.get_nested_transaction() or session.get_transaction()
    assert transaction is not None
    libpq = _libpq(connection) if connection.dialect.driver == "psycopg" else None
    cursor = libpq.cursor() if libpq is not None else driver.cursor()
    found = session.info[_ON] = _On(transaction, connection, connection.dialect, cursor, libpq)
    return found


def _libpq(connection: Connection) -> _Libpq:
    record = connection.connection  # the pool's record of this driver connection
    driver = record.driver_connection
    libpq: _Libpq | None = record.info.get(_LIBPQ)
    if libpq is None or libpq.driver is not driver:
        libpq = record.info[_LIBPQ] = _Libpq(driver)
    return libpq


def begin_hot(session: Session, connection: Connection, relaxed: bool = False) -> bool:
    """Run the session's next transaction on `connection` (its own, on PostgreSQL) without SQLAlchemy's transaction
    machinery while only prepared statements run: the first one sends BEGIN, `end_hot` sends COMMIT. Were
    the Session begun (`session.begin()`), its begin, its commit through the driver's and its end would cost more
    CPU than a small statement. The ORM may still take part: it begins its own transaction on the same
    connection, within this one (the driver sees one already open), and `end_hot` then ends it through the ORM.
    `relaxed`: the transaction does not wait for its WAL to reach the disk at COMMIT (synchronous_commit off,
    for this transaction only), when a prepared statement begins it. False when `connection` is not psycopg's:
    the caller begins the Session as usual."""
    if connection.dialect.driver != "psycopg":
        return False
    libpq = _libpq(connection)
    session.info[_ON] = _On(_HOT, connection, connection.dialect, libpq.cursor(), libpq,
                            _BEGIN_RELAXED if relaxed else _BEGIN)
    return True


def end_hot(session: Session, connection: Connection, commit: bool) -> None:
    """Commit (or roll back) a transaction `begin_hot` began. A failed commit raises as SQLAlchemy's would; a failed
    rollback (the caller is raising already) only discards a lost connection."""
    # Where the ORM took part, its commit (with its flush) or rollback goes first, through the driver's; then
    # whatever is still open on the connection is ended here, so that nothing is left for the next transaction
    # to go on in: objects added and never flushed, for one, do not begin the ORM's transaction.
    if commit and (session.in_transaction() or session.new):
        session.commit()
    elif not commit and session.in_transaction():
        session.rollback()
    if connection.invalidated:
        return
    libpq = _libpq(connection)
    try:
        libpq.end(commit)
    except pg_errors.Error as error:
        dialect = connection.dialect
        if dialect.is_disconnect(error, libpq.driver, None) or libpq.driver.broken:  # type: ignore[arg-type]
            connection.invalidate(error)
        if commit:
            raise exc.DBAPIError.instance("COMMIT", None, error, pg_errors.Error, dialect=dialect,
                                          connection_invalidated=connection.invalidated) from error


@event.listens_for(Session, "after_transaction_end")
def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The connection goes back to the pool, and another thread may take it: the session does not keep it past it
    # (its one cursor stays with the connection, in its _Libpq, for whoever takes it next).
    if transaction.parent is None:
        session.info.pop(_ON, None)


def _compile(statement: Insert | Update | Delete | Select[Any], dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise Unsupported("Python-side column defaults: give every column's value")
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise Unsupported("expanding or literal-rendered parameters")
    if compiled.escaped_bind_names:
        raise Unsupported("parameter names the driver needs escaped")
    binds = tuple(_bind(name, bind, dialect) for name, bind in compiled.binds.items())
    if dialect.paramstyle in _POSITIONAL:
        positions: tuple[str, ...] | None = tuple(compiled.positiontup or ())
    elif dialect.paramstyle in _NAMED:
        positions = None
    else:
        raise Unsupported(f"paramstyle {dialect.paramstyle}")
    columns = list(statement.exported_columns) if _returns_rows(statement) else None
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns or ())
    row = namedtuple("Row", [c.key for c in columns]) if columns is not None else None  # type: ignore[misc]
    numbered, names = _numbered(compiled.string) if dialect.driver == "psycopg" else (None, ())
    return _Plan(compiled.string, binds, positions, results, row, numbered, names, (PyFormat.AUTO,) * len(names))


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


def _numbered(sql: str) -> tuple[bytes | None, tuple[str, ...]]:
    """psycopg's %(name)s placeholders as libpq's $n (one number per name), and the names in number order; None
    when the SQL has a % that is neither a placeholder nor an escaped one (the cursor then runs it)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    if "%" in _PLACEHOLDER.sub("", sql):
        return None, ()
    return _PLACEHOLDER.sub(number, sql).encode(), tuple(names)


def _returns_rows(statement: Insert | Update | Delete | Select[Any]) -> bool:
    return isinstance(statement, Select) or bool(statement.exported_columns)


def _bind(name: str, bind: BindParameter[Any], dialect: Dialect) -> _Bind:
    if bind.callable is not None or bind.expanding or bind.literal_execute:
        raise Unsupported(f"parameter {name!r}: callable, expanding or literal")
    default = _REQUIRED if bind.required else bind.value
    return _Bind(name, bind.key, default, bind.type.dialect_impl(dialect).bind_processor(dialect))
