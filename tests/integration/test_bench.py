"""The load benchmark's machinery, end to end at tiny scale: a real `passgate serve`, real HTTP, Graph
provisioning, complete OIDC passkey sign-ins with verified ID tokens, refreshes. Speed is never asserted
here (the benchmark measures it); only that everything it counts really happened, without errors."""

from __future__ import annotations

from typing import Any

import pytest

from bench.__main__ import main

from ..conftest import POSTGRES_URL

TINY = ["--users", "5", "--steps", "1,2", "--duration", "1.5", "--warmup", "0.5", "--floor-seconds", "0.05",
        "--provision-concurrency", "2"]


def check(report: dict[str, Any]) -> None:
    assert report["registration"]["completed"] == 5 and report["registration"]["errors"] == 0
    for step in [*report["signin_steps"], report["signin_at_70_percent"]]:
        assert step["errors"] == 0, step["error_samples"]
        assert step["completed"] > 0 and step["verified_id_tokens"] == step["completed"]
        assert set(step["latency_ms"]) == {"authorize", "options", "assertion", "authorize_code", "token"}
    assert report["http_floor"]["errors"] == 0 and report["http_floor"]["completed"] > 0
    assert report["refresh"]["errors"] == 0 and report["refresh"]["completed"] > 0
    assert report["summary"]["errors"] == 0 and report["summary"]["server_cpu_ms_per_signin"] > 0
    assert report["rss_mb_per_worker"] and report["floor"]["es256_verify_s"] > 0


def test_bench_runs_end_to_end_on_sqlite() -> None:
    check(main([*TINY, "--sqlite"]))


@pytest.mark.skipif(not POSTGRES_URL, reason="PASSGATE_TEST_POSTGRES_URL is not set")
def test_bench_runs_end_to_end_on_postgresql_with_two_workers() -> None:
    check(main([*TINY, "--postgres", POSTGRES_URL, "--workers", "2"]))
