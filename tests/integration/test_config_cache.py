"""The per-process configuration cache: two Database objects on one database stand for two worker processes.
A change made through one applies to the very next transaction of the other, whatever the write path (ORM
objects as the Graph API writes them, ORM bulk statements, the CLI in its own process); sign-ins never move
the version; a transaction sees its own changes, and what it has not committed is never kept. Both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, event, select, update

from passgate import conditional_access as ca
from passgate import methods_policy
from passgate.context import RequestContext, utcnow
from passgate.core import access
from passgate.oidc import clients
from passgate.store import registrations
from passgate.store.db import Database
from passgate.store.tables import App, AppSecret, ConfigVersion

from .oidc_helpers import REDIRECT, authorize, exchange, make_app, pkce, redirect_params
from .test_cli import env, run  # noqa: F401  (env: the fixture, the CLI process environment)
from .test_signin_support import enrol, make_user, passkey_sign_in

CTX = RequestContext()
BLOCK_EVERYONE = {"displayName": "Block everyone", "state": "enabled", "grantControls": {
    "operator": "OR", "builtInControls": ["block"]},
    "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}}


@pytest.fixture
def other(db: Database) -> Iterator[Database]:
    """A second worker process on the same database."""
    second = Database(db.url)
    yield second
    second.dispose()


def version(db: Database) -> int:
    with db.transaction() as s:
        return s.scalar(select(ConfigVersion.version)) or 0


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@contextmanager
def version_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times the configuration version is read by a statement of its own (a prepared statement, which
    engine events do not see)."""
    from passgate.store import config_cache

    read = config_cache._READ
    reads: list[int] = []

    class Counting:
        def scalar(self, session: Any, params: Any) -> Any:
            reads.append(1)
            return read.scalar(session, params)

    with monkeypatch.context() as m:
        m.setattr(config_cache, "_READ", Counting())
        yield reads


def reads_of(seen: list[str], table: str) -> int:
    return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s)


def fido2_enabled(db: Database) -> bool:
    with db.transaction() as s:
        return methods_policy.fido2_policy_of(s).enabled


def set_fido2_state(session: Any, state: str) -> None:
    doc = methods_policy.merge_fido2(session, methods_policy.load(session, methods_policy.FIDO2), {"state": state})
    methods_policy.save(session, CTX, methods_policy.FIDO2, doc)


def test_disabling_the_fido2_policy_applies_at_once_in_the_other_process(db: Database, other: Database) -> None:
    assert fido2_enabled(other)
    with statements(other) as seen:
        assert fido2_enabled(other)
    assert reads_of(seen, "settings") == 0  # served from the process's copy
    with db.transaction(write=True) as s:
        set_fido2_state(s, "disabled")
    assert not fido2_enabled(other)
    with db.transaction(write=True) as s:
        set_fido2_state(s, "enabled")
    assert fido2_enabled(other)


def decide(db: Database, user_id: str) -> access.Outcome:
    with db.transaction() as s:
        return ca.evaluate(s, user_id=user_id, now=utcnow(), app_id=access.SIGN_IN_PORTAL_APP_ID,
                           evidence=None).outcome


def test_a_block_policy_applies_at_once_in_the_other_process(db: Database, other: Database) -> None:
    user_id = make_user(db, "ada@example.com")
    assert decide(other, user_id) is access.Outcome.ALLOW
    with statements(other) as seen:
        assert decide(other, user_id) is access.Outcome.ALLOW
    assert reads_of(seen, "conditional_access_policies") == 0
    with db.transaction(write=True) as s:
        policy_id = ca.create_policy(s, CTX, BLOCK_EVERYONE, override=True).id
    assert decide(other, user_id) is access.Outcome.BLOCK
    with db.transaction(write=True) as s:
        ca.update_policy(s, CTX, policy_id, {"state": "disabled"})
    assert decide(other, user_id) is access.Outcome.ALLOW
    with db.transaction(write=True) as s:
        ca.update_policy(s, CTX, policy_id, {"state": "enabled"})
    assert decide(other, user_id) is access.Outcome.BLOCK
    with db.transaction(write=True) as s:
        ca.delete_policy(s, CTX, policy_id)
    assert decide(other, user_id) is access.Outcome.ALLOW


def secret_works(db: Database, client_id: str, secret: str) -> bool:
    with db.transaction() as s:
        app = registrations.by_client_id(s, client_id)
        return app is not None and clients.secret_matches(s, CTX, app, secret)


def test_deleting_an_app_secret_applies_at_once_in_the_other_process(db: Database, other: Database) -> None:
    client_id, secret = make_app(db)
    assert secret_works(other, client_id, secret)
    with statements(other) as seen:
        assert secret_works(other, client_id, secret)
    assert reads_of(seen, "apps") == 0 and reads_of(seen, "app_secrets") == 0
    with db.transaction(write=True) as s:
        s.delete(clients.secret_row(s, secret))
    assert not secret_works(other, client_id, secret)


def test_a_bulk_delete_of_secrets_applies_at_once_in_the_other_process(db: Database, other: Database) -> None:
    client_id, secret = make_app(db)
    assert secret_works(other, client_id, secret)
    with db.transaction(write=True) as s:
        s.execute(delete(AppSecret))
    assert not secret_works(other, client_id, secret)


def redirect_uris(db: Database, client_id: str) -> list[str]:
    with db.transaction() as s:
        app = registrations.by_client_id(s, client_id)
        return clients.redirect_uris(app) if app is not None else []


def test_changing_redirect_uris_applies_at_once_in_the_other_process(db: Database, other: Database) -> None:
    client_id, _ = make_app(db)
    assert redirect_uris(other, client_id) == [REDIRECT]
    with db.transaction(write=True) as s:  # as Graph's PATCH /applications does: the row itself
        row = s.scalar(select(App).where(App.app_id == client_id))
        assert row is not None
        row.web_redirect_uris = ["https://app.example.com/cb"]
    assert redirect_uris(other, client_id) == ["https://app.example.com/cb"]
    with db.transaction(write=True) as s:  # an ORM bulk UPDATE skips the flush
        s.execute(update(App).where(App.app_id == client_id).values(web_redirect_uris=["https://b.example.com/cb"]))
    assert redirect_uris(other, client_id) == ["https://b.example.com/cb"]
    with db.transaction(write=True) as s:
        row = s.scalar(select(App).where(App.app_id == client_id))
        s.delete(row)
    assert redirect_uris(other, client_id) == []


def test_the_cli_moves_the_version_from_its_own_process(other: Database, request: pytest.FixtureRequest) -> None:
    cli_env = request.getfixturevalue("env")
    assert fido2_enabled(other)
    before = version(other)
    new = json.loads(run(cli_env, "apps", "add", "--name", "cli app", "--permission", "User.Read.All",
                         "--json").stdout)
    assert version(other) > before
    with other.transaction() as s:
        app = registrations.by_client_id(s, new["appId"])
        assert app is not None and app.display_name == "cli app"


def test_a_transaction_sees_its_own_change_and_never_leaves_it_behind(db: Database) -> None:
    assert fido2_enabled(db)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), db.transaction(write=True) as s:
        assert methods_policy.fido2_policy_of(s).enabled
        set_fido2_state(s, "disabled")
        assert not methods_policy.fido2_policy_of(s).enabled  # before any flush, and after
        s.flush()
        assert not methods_policy.fido2_policy_of(s).enabled
        raise Undo
    assert fido2_enabled(db)


def test_sign_ins_read_the_copy_and_never_move_the_version(client: Any, db: Database,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    client_id, secret = make_app(db)
    _, authenticator, _ = enrol(client, db, "ada@example.com")

    def sign_in() -> None:
        client.cookies.clear()
        verifier, challenge = pkce()
        first = authorize(client, client_id, challenge)
        back = parse_qs(urlsplit(first.headers["location"]).query)["next"][0]
        signed, _ = passkey_sign_in(client, authenticator)
        assert signed.status_code == 200, signed.text
        code = redirect_params(client.get(back, follow_redirects=False))["code"]
        assert exchange(client, client_id, secret, code, verifier).status_code == 200

    sign_in()
    before = version(db)
    with statements(db) as seen, version_reads(monkeypatch) as reads:
        sign_in()
    assert version(db) == before
    # The configuration version is read once per transaction, by a statement of its own only where no earlier
    # statement brought it: the two authorize requests; the assertion's challenge claim and the code exchange's
    # code read bring it along.
    assert len(reads) == 2
    for table in ("settings", "apps", "app_secrets", "conditional_access_policies", "authentication_strengths",
                  "named_locations"):
        assert reads_of(seen, table) == 0, table


def test_the_version_a_first_statement_brings_decides_like_a_read_of_its_own(db: Database, other: Database,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A challenge claim carries the configuration version: a change made by the other process between the
    challenge and its use applies to the claim's transaction, without a statement of its own to read it."""
    from passgate.passkeys import challenges

    ctx = RequestContext()
    assert fido2_enabled(other)  # the other process's copy, loaded under the current version
    with other.transaction(write=True) as s:
        value = challenges.issue(s, ctx, "browser", "test", 60)
    with db.transaction(write=True) as s:
        set_fido2_state(s, "disabled")
    with statements(other) as seen, version_reads(monkeypatch) as reads, other.transaction(write=True) as s:
        assert challenges.consume(s, ctx, "browser", "test", value).challenge == value
        assert not methods_policy.fido2_policy_of(s).enabled
    assert reads == []
    assert reads_of(seen, "settings") >= 1  # loaded afresh under the new version


def test_a_core_write_moves_the_version_when_told(db: Database) -> None:
    from passgate.store import config_cache

    before = version(db)
    with db.engine.begin() as conn:
        config_cache.bump(conn)
    assert version(db) == before + 1
