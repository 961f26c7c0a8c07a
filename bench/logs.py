"""Sign-in log queries at scale: fill a throw-away PostgreSQL database, time the read API through HTTP.

    python -m bench.logs [--rows 1000000] [--server-url postgresql://postgres@127.0.0.1:5432] [--repeat 40]

Creates a database on the server, migrates it, COPYs `--rows` realistic sign-in entries into it (many users,
apps and IPs over 30 days, about 5% failures with various codes, equal timestamps included), starts a real
`passgate serve` on it, and times filtered GET /v1.0/auditLogs/signIns requests with an app token: by user,
by time range, by error code, by app, combined, a first page and deep pages through @odata.nextLink. Prints
p50/p95 per query kind, the plans PostgreSQL chose (--explain), then stops the server and drops the database.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from passgate.context import RequestContext
from passgate.logs import queries
from passgate.oidc.clients import create_app_registration
from passgate.store.db import Database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
DAYS = 30
FAILURES = (  # (errorCode, failureReason, method), about 5% of entries in all
    (50034, "There is no account with that username.", "Passkey"),
    (50057, "This account is disabled.", "Passkey (device-bound)"),
    (135101, "That Temporary Access Pass is not right.", "Temporary Access Pass"),
    (135010, "This passkey is not registered here, or it was removed.", "Passkey"),
    (135133, "This kind of passkey (synced or device-bound) is not allowed for your account.", "Passkey (synced)"),
    (53003, "Access has been blocked by Conditional Access policies.", "Passkey (synced)"),
    (50053, "Too many wrong attempts; sign-in with a Temporary Access Pass is paused for a while.",
     "Temporary Access Pass"),
)
METHODS = (("Passkey (device-bound)", "YubiKey 5 Series"), ("Passkey (synced)", "iCloud Keychain"),
           ("Passkey (synced)", "Google Password Manager"), ("Temporary Access Pass", None),
           ("Previously satisfied", None))
AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.2903.86", "Windows 10", "Edge 131.0.2903.86"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
     "Safari/605.1.15", "MacOs", "Safari 18.1"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "Ios", "Safari 18.1"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Linux", "Firefox 133.0"),
)
COLUMNS = (
    "id", "created_at", "user_id", "user_principal_name", "user_display_name", "app_id", "app_display_name",
    "ip_address", "user_agent", "correlation_id", "error_code", "failure_reason", "authentication_method",
    "authentication_method_detail", "details", "conditional_access_status", "applied_policies",
    "authentication_details", "authentication_requirement", "is_interactive", "client_app_used",
    "authentication_protocol", "session_id", "resource_id", "resource_display_name", "operating_system",
    "browser",
)


@dataclass(frozen=True)
class Population:
    users: list[tuple[str, str]]  # (id, upn)
    apps: list[tuple[str, str]]  # (appId, displayName)
    start: datetime
    end: datetime


def _copy_value(value: object) -> str:
    """One field in COPY's text format (the values made here hold no tab, newline or backslash)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def rows(count: int, population: Population, seed: int = 7) -> Iterator[str]:
    """`count` COPY lines spread over the population's 30 days; a few share a timestamp exactly."""
    rng = random.Random(seed)
    span = int((population.end - population.start).total_seconds() * 1_000_000)
    ips = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(5000)]
    previous = population.start
    for n in range(count):
        at = previous if n % 50 == 1 else population.start + timedelta(microseconds=rng.randrange(span))
        previous = at
        user_id, upn = rng.choice(population.users)
        app_id, app_name = rng.choice(population.apps)
        agent, system, browser = rng.choice(AGENTS)
        failed = rng.random() < 0.05
        if failed:
            code, reason, method = rng.choice(FAILURES)
            detail = None
        else:
            code, reason = 0, None
            method, detail = rng.choice(METHODS)
        stamp = at.isoformat()
        step = json.dumps([{
            "authenticationMethod": method, "authenticationMethodDetail": detail,
            "authenticationStepDateTime": stamp.replace("+00:00", "Z"),
            "authenticationStepRequirement": "Primary authentication",
            "authenticationStepResultDetail": reason or "Authentication succeeded", "succeeded": not failed,
        }], separators=(",", ":"))
        values = (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)), stamp, user_id, upn, upn.split("@")[0],
            app_id, app_name, rng.choice(ips), agent, str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            code, reason, method, detail, "{}", "failure" if code == 53003 else "notApplied", "[]", step,
            "singleFactorAuthentication", True, "Browser", "none", None, app_id, app_name, system, browser,
        )
        yield "\t".join(_copy_value(v) for v in values) + "\n"


def fill(url: str, count: int, population: Population) -> float:
    """COPY `count` entries into sign_ins; returns the seconds it took (ANALYZE included)."""
    import psycopg

    began = time.perf_counter()
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY sign_ins ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for n, line in enumerate(rows(count, population), 1):
                buffer.write(line)
                if n % 20_000 == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        conn.execute("ANALYZE sign_ins")
    return time.perf_counter() - began


def fill_sqlite(url: str, count: int, population: Population) -> float:
    """The same entries into a SQLite file, in SQLAlchemy's SQLite time format (compared as text)."""
    import sqlite3

    began = time.perf_counter()
    conn = sqlite3.connect(make_url(url).database or "")
    marks = ", ".join("?" for _ in COLUMNS)
    insert = f"INSERT INTO sign_ins ({', '.join(COLUMNS)}) VALUES ({marks})"
    batch: list[list[object]] = []
    for line in rows(count, population):
        values: list[object] = [None if v == "\\N" else v for v in line.rstrip("\n").split("\t")]
        values[1] = datetime.fromisoformat(str(values[1])).strftime("%Y-%m-%d %H:%M:%S.%f")
        values[COLUMNS.index("error_code")] = int(str(values[COLUMNS.index("error_code")]))
        values[COLUMNS.index("is_interactive")] = 1
        batch.append(values)
        if len(batch) == 20_000:
            conn.executemany(insert, batch)
            batch = []
    conn.executemany(insert, batch)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - began


def population(users: int, apps: int, now: datetime) -> Population:
    rng = random.Random(11)
    return Population(
        users=[(str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"user{n}@contoso.example")
               for n in range(users)],
        apps=[(str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"App {n}") for n in range(apps)],
        start=now - timedelta(days=DAYS), end=now,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    """A real `passgate serve` on the benchmark database, up and answering."""
    env = {**os.environ, "PASSGATE_DATABASE_URL": url, "PASSGATE_DATA_DIR": data_dir,
           "PASSGATE_ORIGINS": f"http://localhost:{port}"}
    process = subprocess.Popen([sys.executable, "-m", "passgate", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"passgate serve stopped: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("passgate serve did not answer within 60 seconds")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Result:
    kind: str
    timings: list[float]
    rows: list[int]

    def line(self) -> str:
        ms = [t * 1000 for t in self.timings]
        return (f"{self.kind:<34} {len(ms):>5} {statistics.median(ms):>9.1f} {percentile(ms, 0.95):>9.1f} "
                f"{statistics.mean(self.rows):>9.0f}")


@contextmanager
def _postgres(server: str, out: Callable[[str], None]) -> Iterator[str]:
    """A new database on the server, dropped afterwards whatever happens."""
    admin_url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"passgate_bench_logs_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    out(f"database {name} on {make_url(server).render_as_string(hide_password=True)}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _sqlite(out: Callable[[str], None]) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        out(f"database {directory}/bench.db (SQLite)")
        yield f"sqlite:///{directory}/bench.db"


def run(
    rows_wanted: int, server: str, repeat: int, top: int, explain: bool, out: Callable[[str], None],
    sqlite: bool = False,
) -> list[Result]:
    process: subprocess.Popen[bytes] | None = None
    with _sqlite(out) if sqlite else _postgres(server, out) as url:
        try:
            db = Database(url)
            db.migrate()
            with db.transaction(write=True) as session:
                app = create_app_registration(session, RequestContext(), "log reader", ["AuditLog.Read.All"])
                app_id, secret = app.app.app_id, app.client_secret
            db.dispose()
            now = datetime.now(UTC).replace(microsecond=0)
            people = population(max(10, rows_wanted // 100), max(3, min(200, rows_wanted // 5000)), now)
            out(f"filling {rows_wanted:,} sign-ins ({len(people.users):,} users, {len(people.apps)} apps, "
                f"{DAYS} days)")
            took = (fill_sqlite if sqlite else fill)(url, rows_wanted, people)
            out(f"  took {took:.1f} s (bulk insert + ANALYZE)")
            port = _free_port()
            with tempfile.TemporaryDirectory() as data_dir:
                process = serve(url, port, data_dir)
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    token = http.post("/oauth2/token", data={
                        "grant_type": "client_credentials", "client_id": app_id, "client_secret": secret,
                    }).json()["access_token"]
                    http.headers["Authorization"] = f"Bearer {token}"
                    return _time_queries(http, people, repeat, top, url if explain and not sqlite else None, out)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def _time_queries(http: httpx.Client, people: Population, repeat: int, top: int, explain_url: str | None,
                  out: Callable[[str], None]) -> list[Result]:
    rng = random.Random(3)

    def window(hours: int = 1) -> str:
        start = people.start + timedelta(seconds=rng.randrange(int((people.end - people.start).total_seconds())))
        return (f"createdDateTime ge {start.strftime('%Y-%m-%dT%H:%M:%SZ')} and createdDateTime lt "
                f"{(start + timedelta(hours=hours)).strftime('%Y-%m-%dT%H:%M:%SZ')}")

    kinds: dict[str, Callable[[], str]] = {
        "first page, no filter": lambda: "",
        "by user (userId)": lambda: f"userId eq '{rng.choice(people.users)[0]}'",
        "by user (userPrincipalName)": lambda: f"userPrincipalName eq '{rng.choice(people.users)[1]}'",
        "by app (appId)": lambda: f"appId eq '{rng.choice(people.apps)[0]}'",
        "by time range (1 hour)": window,
        "by error code (eq 50057)": lambda: "status/errorCode eq 50057",
        "failures (errorCode ne 0)": lambda: "status/errorCode ne 0",
        "combined (app, failures, 1 day)": lambda: f"appId eq '{rng.choice(people.apps)[0]}' and "
                                                  f"status/errorCode ne 0 and {window(24)}",
        "combined (user, time, errorCode 0)": lambda: f"userId eq '{rng.choice(people.users)[0]}' and "
                                                     f"createdDateTime ge {people.start.strftime('%Y-%m-%dT%H:%M:%SZ')}"
                                                     " and status/errorCode eq 0",
    }

    def url_of(filter_text: str, order: str = "desc", page: int | None = top) -> str:
        query = f"/v1.0/auditLogs/signIns?$orderby=createdDateTime%20{order}" + (f"&$top={page}" if page else "")
        return query + (f"&$filter={quote(filter_text)}" if filter_text else "")

    def timed(url: str) -> tuple[float, dict[str, object]]:
        began = time.perf_counter()
        answer = http.get(url)
        elapsed = time.perf_counter() - began
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:300]}")
        return elapsed, answer.json()

    results = []
    for _ in range(3):  # warm-up: connections, caches, the token's keys
        timed(url_of(""))
    for kind, make in kinds.items():
        timings, counts = [], []
        for _ in range(repeat):
            elapsed, body = timed(url_of(make()))
            timings.append(elapsed)
            counts.append(len(body["value"]))  # type: ignore[arg-type]
        results.append(Result(kind, timings, counts))
    timings, counts = [], []
    for _ in range(max(1, repeat // 4)):  # Graph's default page size: the serialising cost of 1,000 entries
        elapsed, body = timed(url_of("", page=None))
        timings.append(elapsed)
        counts.append(len(body["value"]))  # type: ignore[arg-type]
    results.append(Result("first page, default $top (1000)", timings, counts))
    # Deep pages: follow @odata.nextLink page after page, from the newest entry and from the oldest.
    for order in ("desc", "asc"):
        timings, counts = [], []
        link: str | None = url_of("", order)
        pages = 0
        while link is not None and pages < repeat * 5:
            elapsed, body = timed(link)
            pages += 1
            if pages > repeat * 4:  # only pages well past the first are counted
                timings.append(elapsed)
                counts.append(len(body["value"]))  # type: ignore[arg-type]
            link = body.get("@odata.nextLink")  # type: ignore[assignment]
        if timings:
            results.append(Result(f"nextLink pages {repeat * 4 + 1}-{pages} ({order})", timings, counts))
    if explain_url is not None:
        _explain(explain_url, people, out)
    return results


def _explain(url: str, people: Population, out: Callable[[str], None]) -> None:
    """The plans PostgreSQL picks for the statements the API runs (EXPLAIN ANALYZE, literal values)."""
    user = people.users[0][0]
    app = people.apps[0][0]
    middle = people.start + (people.end - people.start) / 2
    cases = {
        "by user": (queries.Comparison("user_id", "eq", user),),
        "by app": (queries.Comparison("app_id", "eq", app),),
        "by time range": (queries.Comparison("created_at", "ge", middle),
                          queries.Comparison("created_at", "lt", middle + timedelta(hours=1))),
        "failures": (queries.Comparison("error_code", "ne", 0),),
        "by error code": (queries.Comparison("error_code", "eq", 50057),),
    }
    engine = create_engine(url)
    with engine.connect() as conn:
        deep = conn.execute(text("SELECT created_at, id FROM sign_ins ORDER BY created_at DESC, id DESC "
                                 "OFFSET :n LIMIT 1"), {"n": 100_000 if people.users else 0}).first()
        for name, where in cases.items():
            statement = queries.sign_ins_statement(queries.LogQuery(where=where, top=100))
            _plan(conn, name, statement, out)
        if deep is not None:
            after = queries.Position(deep[0], deep[1], True)
            _plan(conn, "deep page (after row 100,000)", queries.sign_ins_statement(
                queries.LogQuery(top=100, after=after)), out)
    engine.dispose()


def _plan(conn: object, name: str, statement: object, out: Callable[[str], None]) -> None:
    compiled = statement.compile(dialect=postgresql.dialect(),  # type: ignore[attr-defined]
                                 compile_kwargs={"literal_binds": True})
    plan = conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}")).scalars().all()  # type: ignore[attr-defined]
    out(f"-- {name}")
    for line in plan:
        out(f"   {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sign-in entries to fill (default 1,000,000)")
    parser.add_argument("--server-url", default=os.environ.get("PASSGATE_BENCH_POSTGRES_URL", DEFAULT_SERVER),
                        help="PostgreSQL server to create the throw-away database on")
    parser.add_argument("--repeat", type=int, default=40, help="requests per query kind (default 40)")
    parser.add_argument("--top", type=int, default=100, help="$top of every request (default 100)")
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL's plans for the main queries")
    parser.add_argument("--sqlite", action="store_true", help="use a temporary SQLite file instead of PostgreSQL")
    args = parser.parse_args(argv)
    results = run(args.rows, args.server_url, args.repeat, args.top, args.explain, print, sqlite=args.sqlite)
    print(f"\n{'query kind':<34} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'rows':>9}")
    for result in results:
        print(result.line())


if __name__ == "__main__":
    main()
