"""Engine and sessions: one synchronous session and transaction per request."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from .. import json_codec
from .config_cache import CACHE, ConfigCache
from .prepared import begin_hot, end_hot

MIGRATIONS = Path(__file__).parent / "migrations"
# How long an event loop's thread keeps one pooled connection between its transactions (see Database.transaction):
# then it goes back to the pool, where the hourly recycling applies, and the next transaction takes one again.
HOLD_SECONDS = 60.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_serializer=json_codec.dumps_text, json_deserializer=json_codec.loads, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it is one more round trip for every transaction (eight per OIDC sign-in). After a
    # PostgreSQL restart the first statement on a dead connection fails instead; SQLAlchemy then marks the
    # whole pool stale, so one request per worker gets an error and the next ones reconnect. Connections
    # are also renewed hourly, so that none outlives a server-side idle or lifetime limit for long.
    kwargs.setdefault("pool_recycle", 3600)
    if make_url(url).get_driver_name() == "psycopg":
        # psycopg's own statement preparing stays off: after a rollback it sends DEALLOCATE ALL, which would also
        # drop the statements store/prepared.py prepares itself (the hot ones, prepared once per connection).
        kwargs["connect_args"] = {"prepare_threshold": None, **kwargs.get("connect_args", {})}
    return create_engine(url, json_serializer=json_codec.dumps, json_deserializer=json_codec.loads, **kwargs)


class Database:
    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        # Each Database stands for one process: its sessions share one configuration cache.
        self.config_cache = ConfigCache()
        self._info = {CACHE: self.config_cache}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=self._info)
        # Each thread's Session between two of its transactions. A closed Session is as good as a new one (no
        # objects, no connection, no transaction), and building one for every transaction was a seventh of the
        # CPU of a small one (bench/transactions.py). A Session in use is not here: a transaction opened inside
        # another one, or by another coroutine on the same event loop thread, gets its own.
        self._idle = threading.local()
        self._sqlite = self.engine.dialect.name == "sqlite"
        # On PostgreSQL, an event loop's thread (where the sign-in's requests run their transactions, one after
        # the other) keeps a pooled connection between its transactions, for HOLD_SECONDS at most: a checkout
        # and a checkin of the pool cost about 35 µs of CPU per transaction (bench/transactions.py). The
        # connections held are closed by dispose(); one whose thread ends goes back to the pool when collected.
        self.hold_seconds = 0.0 if self._sqlite else HOLD_SECONDS
        self._held: weakref.WeakSet[Connection] = weakref.WeakSet()
        # False: a sign-in ceremony's transaction (`ceremony=True`) commits on PostgreSQL without waiting for its
        # WAL to be flushed (the app sets it from its settings, durable_sign_ins).
        self.durable_ceremonies = True

    @contextmanager
    def transaction(self, write: bool = False, ceremony: bool = False) -> Iterator[Session]:
        """One transaction. `write=True` on SQLite takes the write lock first: a transaction that has
        already read cannot wait for it (SQLite answers "database is locked" at once when another
        connection wrote meanwhile), so concurrent writers would otherwise fail. `ceremony=True` marks a sign-in
        ceremony's transaction, which may commit without waiting for the disk (`durable_ceremonies`): on
        PostgreSQL, where the transaction runs on an event loop's held connection and its first statement is a
        prepared one (the sign-in's requests); elsewhere it commits as any other."""
        idle = self._idle
        session = self._take_held(idle) if self.hold_seconds > 0 else None
        held = session is not None
        if session is None:
            session = getattr(idle, "session", None)
            if session is None or session.in_transaction():  # in use again after its transaction ended: not ours
                session = self.sessions()
            else:
                idle.session = None
        try:
            connection = session.bind if held else None
            relaxed = ceremony and not self.durable_ceremonies
            if isinstance(connection, Connection) and begin_hot(session, connection, relaxed):
                try:
                    yield session
                    end_hot(session, connection, commit=True)
                except BaseException:
                    end_hot(session, connection, commit=False)  # after a failed commit too: nothing stays open
                    raise
            else:
                with session.begin():
                    if write and self._sqlite:
                        session.execute(text("BEGIN IMMEDIATE"))
                    yield session
        finally:
            # Objects are detached and the connection is back in the pool (or kept, held), as when a Session is
            # closed for good; what the transaction kept in `info` goes too. If closing fails, the Session is not
            # reused.
            session.close()
            info = session.info
            info.clear()
            info.update(self._info)
            if held:
                idle.held = session
            else:
                idle.session = session

    def _take_held(self, idle: threading.local) -> Session | None:
        """This thread's Session on its held connection, when the thread runs an event loop and the Session is
        free (not in a transaction of another coroutine or an outer one); a held connection too old, closed or
        invalidated is given back and another one taken."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        session: Session | bool | None = getattr(idle, "held", None)
        if session is False:  # in use
            return None
        if isinstance(session, Session):
            idle.held = None
            if session.in_transaction():  # used again after its transaction ended: left to its user
                return self._take_held(idle)
            connection = session.bind
            assert isinstance(connection, Connection)
            if not (connection.closed or connection.invalidated) and \
                    time.monotonic() - idle.held_since < self.hold_seconds:
                idle.held = False
                return session
            connection.close()
        connection = self.engine.connect()
        self._held.add(connection)
        idle.held, idle.held_since = False, time.monotonic()
        return self.sessions(bind=connection)

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        for connection in list(self._held):
            connection.close()
        self.engine.dispose()
