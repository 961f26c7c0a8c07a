"""`Database.transaction` reuses each thread's Session between transactions (store/db.py). A reused Session
carries nothing from one transaction to the next (objects, `info`, connection), an error rolls everything back
and leaves the Session as good as new, and two transactions open at once (nested, interleaved on one thread as
coroutines on an event loop, or on several threads) never share a Session. Both databases."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from passgate.store.config_cache import CACHE
from passgate.store.db import Database
from passgate.store.tables import User
from tests.conftest import Where, in_event_loop

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def user(name: str) -> User:
    return User(user_principal_name=f"{name}@example.com", display_name=name, webauthn_handle=name.encode(),
                created_at=NOW)


def count_in(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def count(db: Database) -> int:
    with db.transaction() as session:
        return count_in(session)


def test_a_reused_session_starts_each_transaction_empty(db: Database, where: Where) -> None:
    def body() -> None:
        with db.transaction(write=True) as session:
            session.add(user("ada"))
        with db.transaction() as first:
            ada = first.scalars(select(User)).one()
            first.info["passgate.test"] = [ada]
            assert first.in_transaction() and ada in first
        with db.transaction() as second:
            assert second is first  # the same thread's Session, reused...
            assert list(second.identity_map.values()) == []  # ...but empty
            # What the last transaction kept is gone (the store's own keys for the new one may be there).
            assert "passgate.test" not in second.info and second.info[CACHE] is db.config_cache
            assert inspect(ada).detached and ada.display_name == "ada"  # loaded values stay readable
            again = second.scalars(select(User)).one()
            assert again is not ada and again in second
        assert not second.in_transaction() and list(second.identity_map.values()) == []

    where(body)


def test_an_error_rolls_everything_back_and_the_session_is_reused_clean(db: Database, where: Where) -> None:
    def body() -> None:
        with pytest.raises(RuntimeError, match="boom"), db.transaction(write=True) as failed:
            failed.add(user("bob"))
            failed.flush()
            assert count_in(failed) == 1
            raise RuntimeError("boom")
        assert not failed.in_transaction() and not failed.new and list(failed.identity_map.values()) == []
        assert count(db) == 0
        with db.transaction(write=True) as session:
            assert session is failed
            session.add(user("carol"))
        assert count(db) == 1

    where(body)


def test_a_failed_statement_does_not_spoil_the_next_transaction(db: Database, where: Where) -> None:
    def body() -> None:
        with db.transaction(write=True) as session:
            session.add(user("dan"))
        with pytest.raises(IntegrityError), db.transaction(write=True) as session:
            session.add(user("dan"))  # the same UPN: the flush fails inside the transaction
            session.flush()
        with db.transaction(write=True) as session:
            session.add(user("erin"))
        assert count(db) == 2

    where(body)


def test_transactions_open_at_once_on_one_thread_have_their_own_sessions(db: Database, where: Where) -> None:
    """Nested, or interleaved as two coroutines' transactions are on one event loop thread: each commits or
    rolls back alone."""
    def body() -> None:
        outer_cm = db.transaction(write=True)
        outer = outer_cm.__enter__()
        outer.add(user("fay"))
        outer.flush()
        with db.transaction(write=db.engine.dialect.name != "sqlite") as inner:
            assert inner is not outer
            assert count_in(inner) == 0  # the outer transaction has not committed
        failed_cm = db.transaction()
        failed = failed_cm.__enter__()
        assert failed is not outer and failed is inner  # inner's Session was free again
        failed_cm.__exit__(RuntimeError, RuntimeError("interleaved"), None)  # rolled back alone
        outer_cm.__exit__(None, None, None)
        assert count(db) == 1

    where(body)


def test_threads_never_share_a_session(db: Database) -> None:
    threads = 4
    inside = threading.Barrier(threads, timeout=30)
    seen: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            with db.transaction() as session:  # every thread inside a transaction at the same time
                count_in(session)
                with lock:
                    seen.append(session)
                inside.wait()
            for i in range(5):
                with db.transaction(write=True) as session:
                    session.add(user(f"t{n}-{i}"))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    assert len({id(s) for s in seen}) == threads
    assert count(db) == threads * 5


def test_a_session_used_after_its_transaction_is_left_to_its_user(db: Database, where: Where) -> None:
    def body() -> None:
        with db.transaction() as stale:
            pass
        assert count_in(stale) == 0  # a closed Session begins a transaction of its own when used again
        with db.transaction() as session:
            assert session is not stale
        assert stale.in_transaction()  # not ended under its user's feet
        stale.close()

    where(body)


def backend(session: Session) -> int:
    return int(session.scalar(text("SELECT pg_backend_pid()")) or 0)


def test_an_event_loop_thread_keeps_one_connection_between_its_transactions(pg: Database) -> None:
    pool = pg.engine.pool
    seen: dict[str, object] = {}

    def body() -> None:
        with pg.transaction(write=True) as session:
            session.add(user("gil"))
            first = backend(session)
        assert pool.checkedout() == 1  # kept, not checked in
        with pg.transaction() as session:
            seen["same"] = backend(session) == first and count_in(session) == 1

    in_event_loop(body)
    assert seen == {"same": True}
    with pg.transaction() as session:  # a plain thread checks out and in, as before
        count_in(session)
    pg.dispose()  # the held connection is closed, not left to the collector
    assert pool.checkedout() == 0


def test_coroutines_and_nested_transactions_on_the_loop_get_connections_of_their_own(pg: Database) -> None:
    async def one(name: str) -> int:
        with pg.transaction(write=True) as session:
            session.add(user(name))
            pid = backend(session)
            await asyncio.sleep(0.05)  # the other coroutine's transaction runs meanwhile
            session.flush()
            return pid

    async def both() -> list[int]:
        with pg.transaction(write=True) as outer:
            outer.add(user("outer"))
            outer.flush()
            with pg.transaction() as inner:
                assert backend(inner) != backend(outer)
                assert count_in(inner) == 0  # the outer one has not committed
        return list(await asyncio.gather(one("one"), one("two")))

    pids: list[int] = []

    async def main() -> None:
        pids.extend(await both())

    in_event_loop(lambda: None, main)
    assert len(set(pids)) == 2
    assert count(pg) == 3


def test_a_held_connection_that_died_fails_one_transaction_and_is_replaced(pg: Database) -> None:
    outcome: dict[str, object] = {}

    def body() -> None:
        with pg.transaction() as session:
            dead = backend(session)
        with pg.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
        with pytest.raises(DBAPIError) as caught, pg.transaction() as session:
            count_in(session)
        outcome["invalidated"] = caught.value.connection_invalidated
        with pg.transaction() as session:
            outcome["new"] = backend(session) != dead and count_in(session) == 0

    in_event_loop(body)
    assert outcome == {"invalidated": True, "new": True}


def test_a_connection_is_held_for_a_while_then_given_back(pg: Database) -> None:
    pg.hold_seconds = 0.2
    connections: list[object] = []

    def body() -> None:
        for pause in (0.0, 0.0, 0.3, 0.0):
            time.sleep(pause)
            with pg.transaction() as session:
                connections.append(session.connection())

    in_event_loop(body)
    first, second, third, fourth = connections
    assert first is second and third is fourth and third is not second
    assert first.closed  # given back to the pool, where its recycling applies
