"""Shared fixtures: every database test runs on SQLite and, when PASSGATE_TEST_POSTGRES_URL is set,
on a throw-away database of that PostgreSQL server too."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from passgate.config import Settings, load_settings
from passgate.store import config_cache
from passgate.store.db import Database
from passgate.store.tables import Base, ConfigVersion

POSTGRES_URL = os.environ.get("PASSGATE_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
ORIGIN = "http://localhost:8443"
Where = Callable[[Callable[[], None]], None]

if os.environ.get("CI") and not POSTGRES_URL:
    raise pytest.UsageError("CI must set PASSGATE_TEST_POSTGRES_URL: the PostgreSQL run cannot be left out in CI")


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return f"databases: SQLite and PostgreSQL ({make_url(POSTGRES_URL).render_as_string(hide_password=True)})"
    return "databases: SQLite only; the PostgreSQL run was LEFT OUT (PASSGATE_TEST_POSTGRES_URL is not set)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not POSTGRES_URL:
        terminalreporter.write_line(
            "NOTE: the PostgreSQL run was left out because PASSGATE_TEST_POSTGRES_URL is not set.", yellow=True
        )


def _pg_admin_url() -> str:
    url = make_url(POSTGRES_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session, one per backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "passgate.db"
        url = f"sqlite:///{path}"
        Database(url).migrate()
        yield url
        return
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"passgate_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.migrate()
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_tables(db: Database) -> None:
    """Every table but the configuration version, which moves instead: these Core deletes bypass the ORM
    session that moves it, and a running server (the e2e tests') must drop the configuration it cached."""
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table is not ConfigVersion.__table__:
                conn.execute(table.delete())
        config_cache.bump(conn)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    empty_tables(database)
    yield database
    database.dispose()


def in_event_loop(body: Callable[[], object], main: Callable[[], Coroutine[Any, Any, object]] | None = None) -> None:
    """`body` on a thread of its own running an event loop, as a request handler runs (or the coroutine `main`
    there): on PostgreSQL, transactions keep one connection between them there (Database.hold_seconds)."""
    failed: list[BaseException] = []

    async def inside() -> None:
        body()

    def run() -> None:
        try:
            asyncio.run(main() if main is not None else inside())
        except BaseException as error:  # re-raised by the caller's thread
            failed.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    if failed:
        raise failed[0]


@pytest.fixture(params=["plain thread", "event loop thread"])
def where(request: pytest.FixtureRequest) -> Where:
    """Where a test's transactions run: this thread, or a thread running an event loop."""
    if request.param == "plain thread":
        return lambda body: body()
    return in_event_loop


@pytest.fixture
def pg(db: Database) -> Database:
    """`db` when it is PostgreSQL: for what only its driver does (statements on libpq, connections held)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: about its driver's statements and connections")
    return db


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(database_url=database_url, data_dir=tmp_path, origins=[ORIGIN], rp_id="localhost")


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from passgate.app import create_app

    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN}) as c:
        yield c
