"""Racing requests: a one-time pass, a passkey response and a new credential each count once, however many
arrive together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bench.softauthn import SoftAuthenticator
from passgate.app import create_app
from passgate.config import Settings
from passgate.core import errors
from passgate.store.db import Database
from passgate.store.tables import BrowserSession, Passkey
from tests.integration.test_signin_support import ORIGIN, enrol, issue_tap, make_user, request_options, signed_in_as

RACERS = 4


def race(settings: Settings, db: Database, send: Callable[[Any], Any], cookies: Any = None) -> list[Any]:
    """Send from RACERS clients at once; returns their responses."""
    app = create_app(settings, db)
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(n: int) -> None:
        with TestClient(app, base_url=ORIGIN, headers={"origin": ORIGIN}, cookies=cookies,
                        raise_server_exceptions=False) as client:
            barrier.wait()
            results[n] = send(client)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def sessions_count(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(BrowserSession)) or 0)


def test_a_one_time_pass_signs_in_once(settings: Settings, db: Database) -> None:
    secret = issue_tap(db, make_user(db, "ann@example.com"), once=True)
    responses = race(settings, db, lambda c: c.post(
        "/api/signin/tap", json={"username": "ann@example.com", "temporaryAccessPass": secret}))
    assert sorted(r.status_code for r in responses) == [200] + [400] * (RACERS - 1), [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 400} == {errors.TAP_ALREADY_USED.name}
    assert sessions_count(db) == 1


def test_a_passkey_response_signs_in_once(client: Any, settings: Settings, db: Database) -> None:
    _, authenticator, _ = enrol(client, db, "bob@example.com")
    credential = authenticator.get(request_options(client), ORIGIN)
    before = sessions_count(db)
    responses = race(settings, db, lambda c: c.post("/api/signin/passkey", json={"credential": credential}),
                     cookies=dict(client.cookies))
    assert sorted(r.status_code for r in responses) == [200] + [400] * (RACERS - 1), [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 400} == {
        errors.CHALLENGE_ALREADY_USED.name}
    assert sessions_count(db) == before + 1


def test_one_credential_registers_once(settings: Settings, db: Database) -> None:
    """Two accounts post the same new credential at once (each for its own challenge): one gets it."""
    app = create_app(settings, db)
    authenticator = SoftAuthenticator()
    credential_id = b"\x07" * 32
    clients, credentials = [], []
    for n in range(2):
        client = TestClient(app, base_url=ORIGIN, headers={"origin": ORIGIN}, raise_server_exceptions=False)
        signed_in_as(client, db, f"racer{n}@example.com")
        options = client.post("/api/me/passkeys/options").json()
        credentials.append(authenticator.create(options, ORIGIN, credential_id=credential_id))
        clients.append(client)
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(n: int) -> None:
        barrier.wait()
        results[n] = clients[n].post("/api/me/passkeys", json={"credential": credentials[n]})

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Passkey)) == 1


def test_a_code_and_a_refresh_token_give_tokens_once(client: Any, settings: Settings, db: Database) -> None:
    """Racing exchanges of one code, then racing uses of one refresh token: one of each gets tokens."""
    from sqlalchemy import update

    from passgate.store.tables import OAuthGrant
    from tests.integration.oidc_helpers import REDIRECT, code_for, make_app, pkce

    client_id, secret = make_app(db)
    signed_in_as(client, db, "cora@example.com")
    verifier, challenge = pkce()
    code = code_for(client, client_id, challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
            "client_secret": secret, "code_verifier": verifier}
    responses = race(settings, db, lambda c: c.post("/oauth2/token", data=form))
    assert sorted(r.status_code for r in responses) == [200] + [400] * (RACERS - 1), [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OAuthGrant)) == 1
        # A loser that came after the winner was a replay and revoked the family: live again for the next race.
        session.execute(update(OAuthGrant).values(revoked_at=None, revoked_reason=None))
    token = next(r for r in responses if r.status_code == 200).json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, "client_secret": secret}
    responses = race(settings, db, lambda c: c.post("/oauth2/token", data=form))
    assert sorted(r.status_code for r in responses) == [200] + [400] * (RACERS - 1), [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


def test_a_sign_in_marker_serves_once(client: Any, settings: Settings, db: Database) -> None:
    """Racing returns from the sign-in page with one pending authorization (prompt=login): one gets a code, the
    others are sent to sign in again."""
    from urllib.parse import parse_qs, urlsplit

    from tests.integration.oidc_helpers import authorize, make_app, pkce

    client_id, _ = make_app(db)
    signed_in_as(client, db, "dora@example.com")
    _, challenge = pkce()
    first = authorize(client, client_id, challenge, prompt="login")
    back = parse_qs(urlsplit(first.headers["location"]).query)["next"][0]
    signed_in_as(client, db, "dora2@example.com")  # a new sign-in in this browser, after the marker
    responses = race(settings, db, lambda c: c.get(back, follow_redirects=False), cookies=dict(client.cookies))
    assert sorted(r.status_code for r in responses) == [302] + [303] * (RACERS - 1), [r.text for r in responses]
    assert all(r.headers["location"].startswith("/signin?") for r in responses if r.status_code == 303)


def test_racing_wrong_passes_are_all_counted(settings: Settings, db: Database) -> None:
    """Refusals of a guessable secret are logged before the next guess counts: with one failure left before the
    limit, racing wrong guesses get one wrong-pass answer and the rest are locked out (SQLite's write lock
    serialises them; on PostgreSQL guesses that arrive together may each still see the same count)."""
    make_user(db, "rob@example.com")
    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN}) as client:
        for _ in range(settings.tap_failures_per_user - 1):
            client.post("/api/signin/tap", json={"username": "rob@example.com", "temporaryAccessPass": "WRONGPASS"})
    responses = race(settings, db, lambda c: c.post(
        "/api/signin/tap", json={"username": "rob@example.com", "temporaryAccessPass": "WRONGPASS"}))
    codes = sorted(r.json()["error"]["code"] for r in responses)
    if db.engine.dialect.name == "sqlite":
        assert codes == sorted([errors.TAP_INVALID.name] + [errors.TOO_MANY_ATTEMPTS.name] * (RACERS - 1))
    else:
        assert set(codes) <= {errors.TAP_INVALID.name, errors.TOO_MANY_ATTEMPTS.name}
