"""What a sign-in asks of PostgreSQL: statements, transactions and round trips per complete OIDC sign-in,
counted by PostgreSQL itself, so the figures are exact and do not move with the machine's load.

    python -m bench.census                  # a short run: 20 users, concurrency 2, 3 s
    python -m bench.census --log FILE       # PostgreSQL's log, if not Debian's default for the running cluster

It makes a login role `passgate_census` whose statements PostgreSQL logs (`log_statement = all`, set on that
role only, so nothing else on the server is logged), runs `python -m bench` as that role (dropped afterwards),
and reads the log lines its throw-away database got. The sign-in steps lie between the first pending
authorization stored (the first sign-in's authorize request) and the first refresh-token claim (the refresh step
that follows them); each sign-in stores exactly one pending authorization, which is the count divided by.

Needs a superuser on the PostgreSQL server (to make the role) and read access to its log file.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROLE = "passgate_census"
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Debian's log_line_prefix '%m [%p] %q%u@%d ': time, pid, user@database, then the message.
_LINE = re.compile(r"^\S+ \S+ \S+ \[\d+\] " + ROLE + r"@(passgate_bench_\w+) LOG:  (?:statement|execute [^:]*): (.*)$")
_FIRST_SIGN_IN = "INSERT oauth_pending_authorizations"
_REFRESH = "UPDATE oauth_refresh_tokens"


def kind(sql: str) -> str:
    """A statement's verb and table ("INSERT sign_ins"), or the command (BEGIN, COMMIT)."""
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb == "INSERT" and len(words) > 2:
        return f"INSERT {words[2]}"
    if verb in ("UPDATE", "DELETE") and len(words) > 2:
        return f"{verb} {words[1] if verb == 'UPDATE' else words[2]}"
    return verb  # a SELECT's table is on a later line of the log


def census(kinds: list[str]) -> tuple[int, Counter[str]]:
    """Sign-ins, and statements of each kind, in the sign-in steps of one run's statements (in log order)."""
    first = kinds.index(_FIRST_SIGN_IN)
    end = kinds.index(_REFRESH, first)
    begin = max(i for i in range(first + 1) if kinds[i] == "BEGIN")  # the first sign-in's transaction
    end = max(i for i in range(end + 1) if kinds[i] == "BEGIN")  # the refresh's transaction is not counted
    window = kinds[begin:end]
    return window.count(_FIRST_SIGN_IN), Counter(window)


def read_run(log: Path, offset: int) -> list[str]:
    kinds: list[str] = []
    with log.open("rb") as f:
        f.seek(offset)
        for raw in f:
            found = _LINE.match(raw.decode("utf-8", "replace").rstrip("\n"))
            if found:
                kinds.append(kind(found.group(2)))
    return kinds


def default_log(admin: str) -> Path:
    engine = create_engine(admin)
    with engine.connect() as conn:
        version = str(conn.execute(text("SHOW server_version_num")).scalar())
    engine.dispose()
    return Path(f"/var/log/postgresql/postgresql-{int(version) // 10000}-main.log")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.census", description=__doc__.split("\n\n")[0])
    p.add_argument("--admin", default=DEFAULT_ADMIN, help="a superuser's URL on the PostgreSQL server")
    p.add_argument("--log", type=Path, help="PostgreSQL's log file (default: Debian's for the server's version)")
    p.add_argument("bench_args", nargs="*", help="more options for python -m bench (after --)")
    args = p.parse_args()
    log = args.log or default_log(args.admin)
    offset = log.stat().st_size
    url = make_url(args.admin).set(username=ROLE, password=None).render_as_string(hide_password=False)
    command = [sys.executable, "-m", "bench", "--users", "20", "--steps", "2", "--duration", "3", "--warmup", "1",
               "--floor-seconds", "0.2", *args.bench_args, "--postgres", url]
    engine = create_engine(args.admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {ROLE}"))
        conn.execute(text(f"CREATE ROLE {ROLE} LOGIN SUPERUSER"))
        conn.execute(text(f"ALTER ROLE {ROLE} SET log_statement = 'all'"))
    try:
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, env=os.environ)
    finally:
        with engine.connect() as conn:  # the role can do anything: it does not outlive the run
            conn.execute(text(f"DROP ROLE IF EXISTS {ROLE}"))
        engine.dispose()
    signins, counts = census(read_run(log, offset))
    if not signins:
        raise SystemExit("no sign-in found in the log")
    total = sum(counts.values())
    commands = counts["BEGIN"] + counts["COMMIT"]
    print(f"\nPer complete sign-in ({signins} sign-ins counted): {total / signins:.2f} round trips = "
          f"{(total - commands) / signins:.2f} statements + {counts['BEGIN'] / signins:.2f} transactions "
          f"(BEGIN and COMMIT)")
    for name, n in counts.most_common():
        print(f"  {n / signins:6.2f}  {name}")


if __name__ == "__main__":
    main()
