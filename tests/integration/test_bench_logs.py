"""bench/logs.py's machinery at a tiny scale: fill, serve, query, explain, drop (no timing is asserted)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import logs
from tests.conftest import POSTGRES_URL


def test_rows_are_valid_copy_lines_with_about_five_percent_failures() -> None:
    people = logs.population(50, 3, datetime(2026, 3, 1, tzinfo=UTC))
    lines = list(logs.rows(4000, people))
    fields = [line.rstrip("\n").split("\t") for line in lines]
    assert all(len(f) == len(logs.COLUMNS) for f in fields)
    codes = [int(f[logs.COLUMNS.index("error_code")]) for f in fields]
    assert 0.03 < sum(c != 0 for c in codes) / len(codes) < 0.07 and len(set(codes)) > 3
    times = [f[1] for f in fields]
    assert len(set(times)) < len(times)  # some entries share a timestamp
    assert len(set(f[0] for f in fields)) == len(fields)


@pytest.mark.skipif(not POSTGRES_URL, reason="the benchmark runs on PostgreSQL only")
def test_a_tiny_run_completes_and_drops_its_database() -> None:
    server = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
    printed: list[str] = []
    results = logs.run(2000, server, repeat=2, top=50, explain=True, out=printed.append)
    kinds = [r.kind for r in results]
    assert "by user (userId)" in kinds and "failures (errorCode ne 0)" in kinds
    assert any(k.startswith("nextLink pages") for k in kinds)
    assert all(len(r.timings) >= 1 for r in results)
    assert any("ix_sign_ins_" in line for line in printed)  # the plans name the log indexes
    name = printed[0].split()[1]
    assert name.startswith("passgate_bench_logs_")
    admin = create_engine(make_url(server).set(drivername="postgresql+psycopg"))
    with admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar() == 0
    admin.dispose()


def test_a_tiny_sqlite_run_completes() -> None:
    printed: list[str] = []
    results = logs.run(2000, "", repeat=2, top=50, explain=False, out=printed.append, sqlite=True)
    by_kind = {r.kind: r for r in results}
    assert by_kind["first page, no filter"].rows == [50, 50]
    assert sum(by_kind["failures (errorCode ne 0)"].rows) > 0
    assert any(k.startswith("nextLink pages") for k in by_kind)
