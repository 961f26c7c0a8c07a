"""JSON columns written and read through json_codec (store/db.py), on both databases: what goes in comes back
equal (through the ORM and through the log's Core rows), is stored as JSON text the database itself can query
(on SQLite text, not a BLOB), and a string that is not valid Unicode still round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from passgate.logs import queries
from passgate.store.db import Database
from passgate.store.tables import SignIn

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DETAILS: dict[str, Any] = {"upn": "zoë@example.com", "count": 3, "ratio": 0.25, "flags": [True, False, None],
                           "nested": {"key": "🔑", "big": 2**70}}
POLICIES: list[Any] = [{"id": "p1", "displayName": "Ångström", "result": "success"}]
STEPS: list[Any] = [{"authenticationMethod": "Passkey (device-bound)", "succeeded": True}]


def _entry(entry_id: str, details: dict[str, Any]) -> SignIn:
    return SignIn(id=entry_id, created_at=NOW, correlation_id=entry_id, details=details,
                  applied_policies=POLICIES, authentication_details=STEPS)


def test_json_columns_round_trip_and_are_stored_as_queryable_text(db: Database) -> None:
    with db.transaction() as session:
        session.add(_entry("a" * 36, DETAILS))
    with db.transaction() as session:
        loaded = session.get(SignIn, "a" * 36)
        assert loaded is not None
        assert (loaded.details, loaded.applied_policies, loaded.authentication_details) == (DETAILS, POLICIES, STEPS)
        (row,) = queries.sign_ins(session, queries.LogQuery())
        assert (row.details, row.applied_policies, row.authentication_details) == (DETAILS, POLICIES, STEPS)
        if db.engine.dialect.name == "sqlite":
            kind, upn, key = session.execute(text(
                "SELECT typeof(details), json_extract(details, '$.upn'), json_extract(details, '$.nested.key') "
                "FROM sign_ins")).one()
            assert kind == "text"
        else:
            upn, key = session.execute(text(
                "SELECT details->>'upn', details->'nested'->>'key' FROM sign_ins")).one()
        assert (upn, key) == ("zoë@example.com", "🔑")


def test_a_string_that_is_not_valid_unicode_round_trips(db: Database) -> None:
    # What json.loads makes of a request body's "\ud800": the standard library's escape is stored and read back.
    odd = json.loads('{"upn": "a\\ud800b"}')
    with db.transaction() as session:
        session.add(_entry("b" * 36, odd))
    with db.transaction() as session:
        assert session.scalars(select(SignIn.details)).one() == odd
