"""Hook: filtered sign-in log queries (by user, by time range, by error code) at 1,000,000 rows.

Owned by the sign-in log work (the `/auditLogs/signIns` read API); the benchmark calls `run` after the
sign-in and refresh phases, against the same server and database, and prints what it returns. Until
that work lands, it measures nothing and says so.
"""

from __future__ import annotations

from typing import Any

ROWS = 1_000_000


def run(base_url: str, database_url: str, graph_token: str) -> dict[str, Any] | None:
    """Fill the log to ROWS rows and time the filtered queries; returns {query name: seconds} or None."""
    return None
