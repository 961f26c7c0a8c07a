"""`python -m bench.transactions` runs as its users run it and reports a CPU cost for every case it measures
(the driver's only on PostgreSQL). Speed is never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ..conftest import POSTGRES_URL

TINY = ["--rounds", "2", "--calls", "5"]


def run(*extra: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "bench.transactions", *TINY, *extra],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    found = re.findall(r"^  (\S.*?)\s+median\s+([\d.]+) µs\s+min\s+([\d.]+) µs$", done.stdout, re.MULTILINE)
    return {name: float(median) for name, median, _ in found}


def test_on_sqlite() -> None:
    costs = run("--sqlite")
    assert set(costs) == {"Database.transaction", "engine.begin"}
    assert all(cost > 0 for cost in costs.values())


@pytest.mark.skipif(not POSTGRES_URL, reason="PASSGATE_TEST_POSTGRES_URL is not set")
def test_on_postgresql() -> None:
    costs = run("--postgres", POSTGRES_URL)
    assert set(costs) == {"Database.transaction", "engine.begin", "... on an event loop", "driver",
                          "driver autocommit"}
    assert all(cost > 0 for cost in costs.values())
