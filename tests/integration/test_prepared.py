"""Prepared statements (store/prepared.py) store and return exactly what SQLAlchemy's own execution does: JSON,
timezone-aware datetimes (strings on SQLite), booleans, RETURNING rows, rowcounts; positional (SQLite) and named
(psycopg) parameters; and what they cannot run exactly is refused when compiled. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, exc, func, insert, select, text, update

from passgate.store.db import Database
from passgate.store.prepared import Prepared, Unsupported
from passgate.store.tables import SignIn, User
from tests.conftest import Where, in_event_loop

T = SignIn.__table__
NOW = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)

_INSERT = Prepared(insert(T))
_READ = Prepared(select(T.c.id, T.c.created_at, T.c.details, T.c.applied_policies, T.c.is_interactive,
                        T.c.error_code).where(T.c.id == bindparam("wanted")))
# "wanted" twice and "at" twice: a positional paramstyle repeats them in the placeholders' order.
_CLEAR = (
    update(T).where(T.c.id == bindparam("wanted"), T.c.is_interactive.is_(True), T.c.created_at < bindparam("at"))
    .values(is_interactive=bindparam("flag"), created_at=bindparam("at"), failure_reason=bindparam("wanted"))
    .returning(T.c.id, T.c.created_at, T.c.details, T.c.is_interactive)
)
_PREPARED_CLEAR = Prepared(_CLEAR)


def entry(entry_id: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c.key: None for c in T.columns}
    row.update(id=entry_id, created_at=NOW, correlation_id="c0ffee", error_code=0, conditional_access_status="success",
               authentication_requirement="multiFactorAuthentication", is_interactive=True,
               details={"sessionId": "s", "nested": {"list": [1, 2.5, None, "é"]}, "flag": False},
               applied_policies=[{"id": "p", "result": "success"}], authentication_details=[])
    row.update(values)
    return row


def stored(db: Database, entry_id: str) -> tuple[Any, ...]:
    """The row as the database holds it, without any type processing."""
    with db.transaction() as s:
        found = s.execute(text("SELECT created_at, details, applied_policies, authentication_details, is_interactive, "
                               "user_id FROM sign_ins WHERE id = :i"), {"i": entry_id}).one()
        return tuple(found)


def test_an_insert_stores_what_sqlalchemy_stores(db: Database) -> None:
    with db.transaction(write=True) as s:
        assert _INSERT.run(s, entry("prepared")) == 1
        s.execute(insert(T), entry("core"))
    assert stored(db, "prepared") == stored(db, "core")
    with db.transaction() as s:
        prepared, core = s.get(SignIn, "prepared"), s.get(SignIn, "core")
        assert prepared is not None and core is not None
        columns = [c.key for c in T.columns if c.key != "id"]
        assert [getattr(prepared, c) for c in columns] == [getattr(core, c) for c in columns]
        assert prepared.created_at == NOW and prepared.created_at.tzinfo is not None
        assert prepared.is_interactive is True and prepared.details["nested"] == {"list": [1, 2.5, None, "é"]}


def test_a_select_reads_what_a_core_select_reads(db: Database) -> None:
    with db.transaction(write=True) as s:
        _INSERT.run(s, entry("one", is_interactive=False, error_code=50126))
    with db.transaction() as s:
        row = _READ.first(s, {"wanted": "one"})
        assert tuple(row) == tuple(s.execute(_READ.statement, {"wanted": "one"}).one())
        assert row.created_at == NOW and row.is_interactive is False and row[5] == 50126
        assert row.applied_policies == [{"id": "p", "result": "success"}]
        assert _READ.first(s, {"wanted": "none"}) is None
        assert _READ.all(s, {"wanted": "one"}) == [row]


def test_an_update_with_returning(db: Database) -> None:
    later = NOW + timedelta(minutes=5)
    with db.transaction(write=True) as s:
        _INSERT.run(s, entry("prepared"))
        _INSERT.run(s, entry("core"))
    with db.transaction(write=True) as s:
        row = _PREPARED_CLEAR.first(s, {"wanted": "prepared", "flag": False, "at": later})
        core = s.execute(_CLEAR, {"wanted": "core", "flag": False, "at": later}).one()
        assert (row.created_at, row.details, row.is_interactive) == (core[1], core[2], core[3])
        assert row.id == "prepared" and row.created_at == later and row.is_interactive is False
        # The claim is single-use: the row no longer matches.
        assert _PREPARED_CLEAR.first(s, {"wanted": "prepared", "flag": False, "at": later}) is None
        assert _PREPARED_CLEAR.run(s, {"wanted": "core", "flag": False, "at": later}) == 0
    assert stored(db, "prepared")[0] == stored(db, "core")[0]
    with db.transaction() as s:
        found = s.get(SignIn, "prepared")
        assert found is not None and found.failure_reason == "prepared" and found.is_interactive is False


def test_an_update_counts_the_rows_it_changed(db: Database) -> None:
    change = Prepared(update(T).where(T.c.correlation_id == bindparam("c")).values(error_code=bindparam("code")))
    with db.transaction(write=True) as s:
        _INSERT.run(s, entry("a"))
        _INSERT.run(s, entry("b"))
        assert change.run(s, {"c": "c0ffee", "code": 7}) == 2
        assert change.run(s, {"c": "nobody", "code": 7}) == 0


def test_parameters_follow_the_driver_paramstyle(db: Database) -> None:
    plan = _PREPARED_CLEAR.plan(db.engine.dialect)
    if db.engine.dialect.paramstyle == "qmark":
        assert plan.positions is not None and plan.sql.count("?") == len(plan.positions)
        assert plan.positions.count("at") == 2
        assert isinstance(plan.parameters({"wanted": "x", "flag": True, "at": NOW}), tuple)
    else:
        assert plan.positions is None and "%(wanted)s" in plan.sql
        assert isinstance(plan.parameters({"wanted": "x", "flag": True, "at": NOW}), dict)


def test_a_rollback_takes_the_prepared_writes_with_it(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=True) as s:
        _INSERT.run(s, entry("gone"))
        raise RuntimeError
    with db.transaction() as s:
        assert _READ.first(s, {"wanted": "gone"}) is None


@pytest.mark.parametrize("earlier", [0, 1])
def test_driver_errors_are_sqlalchemy_errors(db: Database, earlier: int) -> None:
    """The failing statement first in its transaction, or after another (on PostgreSQL, one run on libpq)."""
    with db.transaction(write=True) as s:
        _INSERT.run(s, entry("twice"))
    with pytest.raises(exc.IntegrityError), db.transaction(write=True) as s:
        for n in range(earlier):
            _INSERT.run(s, entry(f"earlier-{n}"))
        _INSERT.run(s, entry("twice"))
    with db.transaction() as s:  # the connection serves again, and nothing of the failed transaction stays
        assert _READ.first(s, {"wanted": "twice"}) is not None
        assert _READ.first(s, {"wanted": "earlier-0"}) is None


def test_what_it_cannot_run_exactly_is_refused(db: Database) -> None:
    dialect = db.engine.dialect
    with pytest.raises(Unsupported):
        Prepared(select(User))  # ORM entities need the ORM's loading
    expanding = Prepared(select(T.c.id).where(T.c.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(Unsupported):
        expanding.plan(dialect)
    defaults = Prepared(insert(T).values(created_at=bindparam("at"), correlation_id=bindparam("c")))
    with pytest.raises(Unsupported):
        defaults.plan(dialect)  # the id and other Python-side defaults would not be applied
    with db.transaction() as s, pytest.raises(Unsupported):
        Prepared(update(T).values(error_code=1)).first(s, {})  # no rows to read: run() it
    with pytest.raises(exc.ArgumentError), db.transaction(write=True) as s:
        _INSERT.run(s, {k: v for k, v in entry("partial").items() if k != "details"})


def test_a_savepoint_rolled_back_takes_only_its_own_writes(db: Database, where: Where) -> None:
    def body() -> None:
        with db.transaction(write=True) as s:
            _INSERT.run(s, entry("outer"))
            with pytest.raises(RuntimeError), s.begin_nested():
                _INSERT.run(s, entry("inner"))
                assert _READ.first(s, {"wanted": "inner"}) is not None
                raise RuntimeError
            assert _READ.first(s, {"wanted": "inner"}) is None
            _INSERT.run(s, entry("after"))

    where(body)
    with db.transaction() as s:
        assert [_READ.first(s, {"wanted": w}) is not None for w in ("outer", "inner", "after")] == [True, False, True]


def test_a_savepoint_first_in_the_transaction_rolls_back_alone(db: Database, where: Where) -> None:
    """As a guessable secret's attempt runs (signin/flow.py): the savepoint comes before any statement."""
    def body() -> None:
        with db.transaction(write=True) as s:
            with pytest.raises(RuntimeError), s.begin_nested():
                _INSERT.run(s, entry("inner"))
                raise RuntimeError
            _INSERT.run(s, entry("after"))

    where(body)
    with db.transaction() as s:
        assert [_READ.first(s, {"wanted": w}) is not None for w in ("inner", "after")] == [False, True]


def test_each_transaction_of_a_session_runs_on_its_own_connection(db: Database) -> None:
    """A session that commits and goes on: the next statement belongs to the next transaction, so that rolling
    that one back takes it away (it would stay if it ran on the first transaction's connection, which went back
    to the pool at the commit)."""
    session = db.sessions()
    try:
        _INSERT.run(session, entry("first"))
        session.commit()
        _INSERT.run(session, entry("second"))
        session.rollback()
    finally:
        session.close()
    with db.transaction() as s:
        assert _READ.first(s, {"wanted": "first"}) is not None
        assert _READ.first(s, {"wanted": "second"}) is None


def test_a_transaction_that_failed_runs_nothing_more(db: Database) -> None:
    """After a flush failed, SQLAlchemy refuses further statements until rolled back; prepared ones too."""
    with db.transaction(write=True) as s:
        _INSERT.run(s, entry("before"))
    with pytest.raises(RuntimeError), db.transaction(write=True) as s:
        assert _READ.first(s, {"wanted": "before"}) is not None
        s.add(User(id="u-incomplete", user_principal_name="incomplete@example.com", display_name="A"))
        with pytest.raises(exc.IntegrityError):
            s.flush()  # no webauthn_handle
        with pytest.raises(exc.InvalidRequestError, match="rolled back"):
            _INSERT.run(s, entry("never"))
        raise RuntimeError
    with db.transaction() as s:
        assert _READ.first(s, {"wanted": "never"}) is None


def test_statements_run_on_libpq_and_read_what_the_cursor_reads(pg: Database) -> None:
    with pg.transaction(write=True) as s:
        _INSERT.run(s, entry("one"))  # begins the transaction too
        _INSERT.run(s, entry("two", details=None, applied_policies=None))  # other parameter types
        first = _READ.first(s, {"wanted": "one"})
        second = _READ.first(s, {"wanted": "two"})
        # Prepared on this connection once per SQL and parameter types (JSON goes as text, None as unknown).
        prepared = s.connection().connection.info["passgate.prepared.libpq"].names
        assert sorted(sql.split()[0] for sql, _types in prepared) == [b"INSERT", b"SELECT"]
        changed = _PREPARED_CLEAR.all(s, {"wanted": "one", "flag": False, "at": NOW + timedelta(days=1)})
    with pg.transaction() as s:
        by_cursor = s.connection().connection.driver_connection.cursor().execute(
            "SELECT id, created_at, details, applied_policies, is_interactive, error_code FROM sign_ins WHERE id = %s",
            ("one",)).fetchone()
        again = _READ.first(s, {"wanted": "one"})
    assert first == (first.id, NOW, first.details, first.applied_policies, True, 0)
    assert first.details == {"sessionId": "s", "nested": {"list": [1, 2.5, None, "é"]}, "flag": False}
    assert first.created_at.tzinfo is not None
    assert second.details is None and second.applied_policies is None
    assert changed[0].is_interactive is False and changed[0].created_at == NOW + timedelta(days=1)
    assert tuple(again) == by_cursor


def test_prepared_statements_outlive_a_rollback(pg: Database) -> None:
    """psycopg deallocates every prepared statement after a rollback when it prepared any itself: it must not
    (store/db.py), or the next transaction's statements would be unknown to the server."""
    for _ in range(8):  # enough for psycopg's own preparing, were it on
        with pg.transaction() as s:
            s.execute(text("SELECT count(*) FROM sign_ins")).scalar()
            _READ.first(s, {"wanted": "x"})
    with pytest.raises(exc.IntegrityError), pg.transaction(write=True) as s:
        _INSERT.run(s, entry("twice"))
        _INSERT.run(s, entry("twice"))
    with pg.transaction() as s:
        assert _READ.first(s, {"wanted": "twice"}) is None


def test_a_connection_lost_mid_transaction_is_discarded_and_the_next_one_works(pg: Database) -> None:
    with pg.transaction(write=True) as s:
        _INSERT.run(s, entry("before"))
    with pytest.raises(exc.DBAPIError) as caught, pg.transaction() as s:
        assert _READ.first(s, {"wanted": "before"}) is not None
        pid = s.connection().connection.driver_connection.info.backend_pid
        with pg.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        _READ.first(s, {"wanted": "before"})
    assert caught.value.connection_invalidated
    with pg.transaction() as s:
        assert _READ.first(s, {"wanted": "before"}) is not None


# On an event loop's thread (where the sign-in's requests run) on PostgreSQL, a transaction of prepared statements
# runs outside SQLAlchemy's transaction machinery (store/prepared.py, begin_hot): its first statement sends BEGIN,
# its end COMMIT on libpq. These are the same promises as above, kept there.


def visible(db: Database, entry_id: str) -> bool:
    """Whether another connection sees the entry (committed)."""
    with db.engine.connect() as other:
        return other.execute(text("SELECT count(*) FROM sign_ins WHERE id = :i"), {"i": entry_id}).scalar() == 1


def test_on_the_loop_a_transaction_commits_or_rolls_back_as_one(pg: Database) -> None:
    seen: dict[str, bool] = {}

    def body() -> None:
        with pytest.raises(RuntimeError), pg.transaction(write=True) as s:
            _INSERT.run(s, entry("undone-1"))
            _INSERT.run(s, entry("undone-2"))
            raise RuntimeError
        with pg.transaction(write=True) as s:
            _INSERT.run(s, entry("kept-1"))  # in the transaction: not visible before the commit
            seen["before commit"] = visible(pg, "kept-1")
            _INSERT.run(s, entry("kept-2"))
            seen["own read"] = _READ.first(s, {"wanted": "kept-1"}) is not None
            seen["in an ORM transaction"] = s.in_transaction()

    in_event_loop(body)
    assert seen == {"before commit": False, "own read": True, "in an ORM transaction": False}
    assert [visible(pg, i) for i in ("undone-1", "undone-2", "kept-1", "kept-2")] == [False, False, True, True]


@pytest.mark.parametrize("fail", [False, True])
def test_on_the_loop_the_orm_can_join_a_transaction_of_prepared_statements(pg: Database, fail: bool) -> None:
    def body() -> None:
        with pg.transaction(write=True) as s:
            _INSERT.run(s, entry("prepared-first"))
            s.add(User(id="u-orm", user_principal_name="orm@example.com", display_name="O", webauthn_handle=b"o",
                       created_at=NOW))
            s.flush()
            _INSERT.run(s, entry("prepared-after"))
            assert s.scalar(select(func.count()).select_from(T)) == 2  # one transaction, seen from both sides
            if fail:
                raise RuntimeError

    if fail:
        with pytest.raises(RuntimeError):
            in_event_loop(body)
    else:
        in_event_loop(body)
    with pg.transaction() as s:
        stored = [s.get(User, "u-orm") is not None, *(visible(pg, i) for i in ("prepared-first", "prepared-after"))]
    assert stored == [not fail] * 3


def test_on_the_loop_a_failed_statement_is_not_committed_silently(pg: Database) -> None:
    """PostgreSQL answers COMMIT in a failed transaction with a rollback, and no error: the commit raises instead."""
    outcome: dict[str, object] = {}

    def body() -> None:
        with pytest.raises(exc.DBAPIError) as caught, pg.transaction(write=True) as s:
            _INSERT.run(s, entry("first"))
            with pytest.raises(exc.IntegrityError):
                _INSERT.run(s, entry("first"))
            # The caller goes on as if nothing happened...
        outcome["error"] = type(caught.value.orig).__name__
        with pg.transaction(write=True) as s:  # ...and the next transaction is fine
            _INSERT.run(s, entry("second"))

    in_event_loop(body)
    assert outcome == {"error": "InFailedSqlTransaction"}
    assert not visible(pg, "first") and visible(pg, "second")


def test_on_the_loop_a_commit_that_fails_raises_and_keeps_nothing(pg: Database) -> None:
    table = Table("hot_deferred", MetaData(), Column("id", String, primary_key=True), Column("parent", String))
    with pg.engine.begin() as c:
        c.execute(text("CREATE TABLE hot_deferred (id text PRIMARY KEY, parent text REFERENCES hot_deferred (id) "
                       "DEFERRABLE INITIALLY DEFERRED)"))
    add = Prepared(insert(table))
    outcome: dict[str, object] = {}

    def body() -> None:
        with pytest.raises(exc.IntegrityError), pg.transaction(write=True) as s:
            add.run(s, {"id": "child", "parent": "nobody"})  # checked at COMMIT only
            _INSERT.run(s, entry("with the orphan"))
        with pg.transaction(write=True) as s:
            add.run(s, {"id": "parent", "parent": None})
            outcome["next"] = add.run(s, {"id": "child", "parent": "parent"})

    try:
        in_event_loop(body)
        assert outcome == {"next": 1}
        assert not visible(pg, "with the orphan")
    finally:
        with pg.engine.begin() as c:
            c.execute(text("DROP TABLE hot_deferred"))


def test_on_the_loop_a_connection_lost_before_the_first_statement_is_replaced(pg: Database) -> None:
    outcome: dict[str, object] = {}

    def body() -> None:
        with pg.transaction() as s:
            _READ.first(s, {"wanted": "x"})
            pid = s.connection().connection.driver_connection.info.backend_pid
        with pg.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(exc.DBAPIError) as caught, pg.transaction(write=True) as s:
            _INSERT.run(s, entry("lost"))  # the BEGIN, on a connection that is gone
        outcome["invalidated"] = caught.value.connection_invalidated
        with pg.transaction(write=True) as s:
            _INSERT.run(s, entry("after"))
            outcome["new"] = s.connection().connection.driver_connection.info.backend_pid != pid

    in_event_loop(body)
    assert outcome == {"invalidated": True, "new": True}
    assert visible(pg, "after") and not visible(pg, "lost")


def test_on_the_loop_a_rollback_with_objects_never_flushed_takes_the_statements_too(pg: Database) -> None:
    """An object added but never flushed does not begin the ORM's transaction: the rollback must still end the
    one the prepared statements began, or the next transaction would go on in it and commit them."""
    def body() -> None:
        with pytest.raises(RuntimeError), pg.transaction(write=True) as s:
            _INSERT.run(s, entry("undone"))
            s.add(User(id="u-never", user_principal_name="never@example.com", display_name="N", webauthn_handle=b"n",
                       created_at=NOW))
            raise RuntimeError
        with pg.transaction(write=True) as s:
            _INSERT.run(s, entry("next"))

    in_event_loop(body)
    assert not visible(pg, "undone") and visible(pg, "next")


_SYNCHRONOUS_COMMIT = Prepared(select(func.current_setting("synchronous_commit").label("value")))


@pytest.mark.parametrize("durable", [True, False])
def test_on_the_loop_a_ceremony_commits_without_waiting_for_the_disk_only_when_told(pg: Database,
                                                                                    durable: bool) -> None:
    """`ceremony=True` relaxes synchronous_commit for that transaction only (committed or rolled back), and only
    when the database is told its ceremonies need not be durable; every other transaction waits as before."""
    pg.durable_ceremonies = durable
    seen: list[str] = []

    def body() -> None:
        with pg.transaction(write=True, ceremony=True) as s:
            seen.append(_SYNCHRONOUS_COMMIT.scalar(s, {}))
            _INSERT.run(s, entry("ceremony"))
        with pg.transaction(write=True) as s:
            seen.append(_SYNCHRONOUS_COMMIT.scalar(s, {}))
        with pytest.raises(RuntimeError), pg.transaction(write=True, ceremony=True) as s:
            seen.append(_SYNCHRONOUS_COMMIT.scalar(s, {}))
            raise RuntimeError
        with pg.transaction(write=True) as s:
            seen.append(_SYNCHRONOUS_COMMIT.scalar(s, {}))

    in_event_loop(body)
    relaxed = "on" if durable else "off"
    assert seen == [relaxed, "on", relaxed, "on"]
    assert visible(pg, "ceremony")
