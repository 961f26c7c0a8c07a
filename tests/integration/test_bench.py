"""The load benchmark's machinery, end to end at tiny scale: a real `passgate serve`, real HTTP, Graph
provisioning, complete OIDC passkey sign-ins with verified ID tokens, refreshes. Speed is never asserted
here (the benchmark measures it); only that everything it counts really happened, without errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import POSTGRES_URL

TINY = ["--users", "5", "--steps", "1,2", "--duration", "1.5", "--warmup", "0.5", "--floor-seconds", "0.05",
        "--provision-concurrency", "2"]


SIGN_IN_STEPS = {"authorize", "options", "assertion", "token"}


def check(report: dict[str, Any], steps: set[str] = SIGN_IN_STEPS) -> None:
    assert report["registration"]["completed"] == 5 and report["registration"]["errors"] == 0
    for step in [*report["signin_steps"], report["signin_at_70_percent"]]:
        assert step["errors"] == 0, step["error_samples"]
        assert step["completed"] > 0 and step["verified_id_tokens"] == step["completed"]
        assert set(step["latency_ms"]) == steps
    assert report["http_floor"]["errors"] == 0 and report["http_floor"]["completed"] > 0
    assert report["refresh"]["errors"] == 0 and report["refresh"]["completed"] > 0
    assert report["summary"]["errors"] == 0 and report["summary"]["server_cpu_ms_per_signin"] > 0
    assert report["rss_mb_per_worker"] and report["floor"]["es256_verify_s"] > 0


def run(tmp_path: Path, *extra: str) -> dict[str, Any]:
    """The benchmark as its users run it, a command of its own (its event loop is not pytest's)."""
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "bench", *TINY, *extra, "--json", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def test_bench_runs_end_to_end_on_sqlite(tmp_path: Path) -> None:
    check(run(tmp_path, "--sqlite"))


def test_bench_follows_the_way_back_like_a_page_that_does_not_send_it(tmp_path: Path) -> None:
    # Browsers on the shared kept connections too: the other way the generator can drive the server.
    check(run(tmp_path, "--sqlite", "--follow-next", "--reuse-connections"), SIGN_IN_STEPS | {"authorize_code"})


@pytest.mark.skipif(not POSTGRES_URL, reason="PASSGATE_TEST_POSTGRES_URL is not set")
def test_bench_runs_end_to_end_on_postgresql_with_two_workers(tmp_path: Path) -> None:
    check(run(tmp_path, "--postgres", POSTGRES_URL, "--workers", "2"))
