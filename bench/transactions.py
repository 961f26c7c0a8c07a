"""What one database transaction costs in CPU, in process: `python -m bench.transactions [--postgres URL]`.

A sign-in runs four transactions, so their fixed cost counts. Each line runs one small SELECT (the configuration
version read every transaction makes) in a transaction, in a loop, and prints the CPU per transaction
(process time, median and minimum over rounds; the machine may be shared, so compare lines of one run):

- `Database.transaction`: the ORM Session every request uses (store/db.py), the statement `Prepared`;
- `... on an event loop`: the same on a thread running an event loop, as the sign-in's requests run, where
  on PostgreSQL the thread keeps its connection between transactions instead of a pool checkout and checkin,
  and a transaction of prepared statements runs outside SQLAlchemy's transaction machinery (store/prepared.py,
  `begin_hot`);
- `engine.begin`: SQLAlchemy Core's Connection and pool, the statement on the driver's cursor;
- `driver`: one psycopg connection held open, execute and commit (BEGIN, SELECT, COMMIT round trips);
- `driver autocommit`: the same SELECT alone, one round trip.

The gaps between the lines are SQLAlchemy's Session and Connection machinery. The database is a throw-away one
on the given PostgreSQL server (dropped at the end), or a temporary SQLite file with `--sqlite`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import make_url, select

from passgate.store.db import Database
from passgate.store.prepared import Prepared
from passgate.store.tables import ConfigVersion

from .server import ThrowawayDatabase

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
_TABLE = ConfigVersion.__table__
_READ = Prepared(select(_TABLE.c.version).where(_TABLE.c.id == 1))
_SQL = "SELECT version FROM config_version WHERE id = 1"


Case = Callable[[int], None]  # runs its transaction n times


def _times(call: Callable[[], object]) -> Case:
    def run(n: int) -> None:
        for _ in range(n):
            call()

    return run


def _cases(db: Database, url: str) -> dict[str, Case]:
    def orm() -> None:
        with db.transaction() as session:
            _READ.scalar(session, {})

    def core() -> None:
        with db.engine.begin() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            cursor = driver.cursor()  # sqlite3's is no context manager
            try:
                cursor.execute(_SQL)
                cursor.fetchall()
            finally:
                cursor.close()

    cases: dict[str, Case] = {"Database.transaction": _times(orm), "engine.begin": _times(core)}
    if db.hold_seconds > 0:
        cases["... on an event loop"] = on_event_loop(orm)
    if db.engine.dialect.name == "postgresql":
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        held = psycopg.connect(conninfo)
        auto = psycopg.connect(conninfo, autocommit=True)

        def driver() -> None:
            with held.cursor() as cursor:
                cursor.execute(_SQL)
                cursor.fetchall()
            held.commit()

        def driver_autocommit() -> None:
            with auto.cursor() as cursor:
                cursor.execute(_SQL)
                cursor.fetchall()

        cases.update({"driver": _times(driver), "driver autocommit": _times(driver_autocommit)})
    return cases


def on_event_loop(call: Callable[[], object]) -> Case:
    """`call`, run n times in one coroutine on a thread that runs an event loop (as a request handler runs)."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def inside(n: int) -> None:
        for _ in range(n):
            call()

    def run(n: int) -> None:
        asyncio.run_coroutine_threadsafe(inside(n), loop).result(600)

    return run


def measure(cases: dict[str, Case], rounds: int, calls: int) -> dict[str, list[float]]:
    """CPU seconds per call of each case, per round; the cases take turns so that a busy spell hits them all."""
    for case in cases.values():
        case(calls)
    spent: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            start = time.process_time()
            case(calls)
            spent[name].append((time.process_time() - start) / calls)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a PostgreSQL server's admin URL")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=500, help="transactions per case and round")
    args = parser.parse_args()
    throwaway: ThrowawayDatabase | None = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            throwaway = ThrowawayDatabase(args.postgres)
            throwaway.create()
            url = throwaway.url
        db = Database(url)
        try:
            db.migrate()
            spent = measure(_cases(db, url), args.rounds, args.calls)
        finally:
            db.dispose()
            if throwaway is not None:
                throwaway.drop()
    print(f"CPU per transaction running one SELECT ({db.engine.dialect.name}, {args.rounds} rounds of "
          f"{args.calls}):")
    for name, values in spent.items():
        values.sort()
        print(f"  {name:22} median {values[len(values) // 2] * 1e6:7.1f} µs   min {values[0] * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
