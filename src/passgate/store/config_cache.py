"""The configuration every sign-in reads (methods policy, Conditional Access, app registrations and their
secrets), kept in each process and checked against one version number in the database.

Every write to a configuration table moves `config_version.version` in the writer's own transaction: a Session
event does it, so no write path can forget it. A reader reads the version once per transaction and uses its
process's copy only when that copy was loaded under the same version; otherwise it loads afresh. An
administrator's change therefore applies to the very next transaction in every worker, for one small SELECT per
transaction instead of the configuration's own queries.

Cached values are immutable (the core's frozen values, tuples) or detached copies nobody mutates: a process
shares them between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import Connection, event, select, update
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from .prepared import Prepared
from .tables import (
    App,
    AppSecret,
    AuthenticationStrength,
    ConditionalAccessPolicy,
    ConfigVersion,
    NamedLocation,
    Setting,
)

T = TypeVar("T")

# What the cache holds is read from these tables only; a write to any of them moves the version.
CONFIG_CLASSES: tuple[type[Any], ...] = (App, AppSecret, AuthenticationStrength, ConditionalAccessPolicy,
                                         NamedLocation, Setting)

# Executed on the session's Connection: plain Core, no ORM events, no autoflush.
_VERSION_TABLE = ConfigVersion.__table__
_READ = Prepared(select(_VERSION_TABLE.c.version).where(_VERSION_TABLE.c.id == 1))
# The version as a column of another statement (a transaction's first, as a rule): see `seen`.
VERSION = select(_VERSION_TABLE.c.version).where(_VERSION_TABLE.c.id == 1).scalar_subquery().label("config_version")
_BUMP = update(ConfigVersion).where(ConfigVersion.id == 1).values(version=ConfigVersion.version + 1)

# session.info keys. The cache comes with every session of a Database (its sessionmaker's info); the other two
# belong to the current transaction and are dropped when it ends.
CACHE = "passgate.config_cache"
_VERSION = "passgate.config_version"
_WRITTEN = "passgate.config_written"


class ConfigCache:
    """One process's copy of one database's configuration: the values loaded under one version."""

    def __init__(self) -> None:
        # One tuple, swapped whole: a thread never sees a version with another version's values.
        self._loaded: tuple[int, dict[Hashable, Any]] = (-1, {})

    def get(self, version: int, key: Hashable, load: Callable[[], T]) -> T:
        loaded_version, values = self._loaded
        if loaded_version == version and key in values:
            value: T = values[key]
            return value
        value = load()
        if value is None:
            # Not kept: keys can come from requests (a client_id nobody registered), and a miss is an error path.
            return value
        if loaded_version == version:
            values[key] = value
        elif version > loaded_version:
            # A transaction still on an older version never replaces a newer copy.
            self._loaded = (version, {key: value})
        return value


def cached(session: Session, key: Hashable, load: Callable[[Session], T]) -> T:
    """The configuration value `key`: this process's copy if it was loaded under the version this transaction
    sees, else `load(session)`, kept under that version. The version is read before loading, so a change
    committed meanwhile can only make a copy newer than its version, never older.

    A transaction that changed configuration (flushed or not) always loads: it must see its own change, and
    what it sees must not be kept for others before it commits."""
    cache: ConfigCache | None = session.info.get(CACHE)
    if cache is None or session.info.get(_WRITTEN) or _config_pending(session):
        return load(session)
    if _VERSION not in session.info:
        session.info[_VERSION] = _READ.scalar(session, {})
    version: int | None = session.info[_VERSION]
    if version is None:  # no version row: nothing can tell a copy is current
        return load(session)
    return cache.get(version, key, lambda: load(session))


def seen(session: Session, version: int | None) -> None:
    """The version this transaction sees, read by one of its own statements (`VERSION` among its columns) rather
    than by a statement of its own: one round trip less. Only a transaction's first statement should carry it, so
    that the version is read before anything the cache keeps is loaded."""
    session.info.setdefault(_VERSION, version)


def bump(connection: Connection) -> None:
    """Move the version: for writes to the configuration tables that bypass the ORM session (Core, text)."""
    connection.execute(_BUMP)


def _config_pending(session: Session) -> bool:
    return any(isinstance(o, CONFIG_CLASSES) for o in chain(session.new, session.dirty, session.deleted))


def _bump_session(session: Session) -> None:
    bump(session.connection())
    session.info[_WRITTEN] = True


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _context: Any, _instances: Any) -> None:
    # Once per flush that writes configuration: a savepoint rolled back may have taken an earlier bump with it.
    if _config_pending(session):
        _bump_session(session)


@event.listens_for(Session, "do_orm_execute")
def _on_orm_execute(state: ORMExecuteState) -> None:
    """ORM-enabled bulk statements (`update(App)`, `delete(AppSecret)`, `insert(Setting)`) skip the flush."""
    if state.is_select:
        return
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete or state.is_insert) and mapper is not None \
            and issubclass(mapper.class_, CONFIG_CLASSES):
        _bump_session(state.session)


@event.listens_for(Session, "after_transaction_end")
def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_VERSION, None)
        session.info.pop(_WRITTEN, None)
