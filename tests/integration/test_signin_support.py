"""Helpers shared by the sign-in and registration tests (no tests here).

Everything goes through the headless API with the `client` fixture, and through services for the
set-up an administrator would do (users, passes). `snapshot` reads every table but the sign-in log,
so a test can prove that a refused request changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bench.softauthn import SoftAuthenticator
from passgate import directory
from passgate.context import RequestContext, utcnow
from passgate.core.errors import ErrorCode
from passgate.signin import sessions, taps
from passgate.store.db import Database
from passgate.store.tables import Base, SignIn, User

ORIGIN = "http://localhost:8443"


def make_user(db: Database, upn: str, *, enabled: bool = True) -> str:
    with db.transaction() as session:
        user = directory.create_user(
            session, RequestContext(), {"userPrincipalName": upn, "displayName": upn.split("@")[0].title()}
        )
        user.account_enabled = enabled
        return user.id


def set_enabled(db: Database, user_id: str, enabled: bool) -> None:
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.account_enabled = enabled


def issue_tap(
    db: Database,
    user_id: str,
    *,
    now: datetime | None = None,
    start: datetime | None = None,
    lifetime: int | None = None,
    once: bool | None = None,
) -> str:
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        return taps.issue(session, RequestContext(now=now or utcnow()), user, start, lifetime, once).secret


def error_of(response: Any, code: ErrorCode) -> dict[str, Any]:
    """Assert the stable error: status, name and number, and a message a person can read."""
    assert response.status_code == code.status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code.name, error
    assert error["innerError"]["passgateCode"] == code.number
    assert isinstance(error["message"], str) and error["message"]
    body: dict[str, Any] = error
    return body


def sign_ins(db: Database) -> list[SignIn]:
    with db.transaction() as session:
        return list(session.scalars(select(SignIn).order_by(SignIn.created_at)))


def snapshot(db: Database, *, skip: tuple[str, ...] = ("sign_ins",)) -> dict[str, list[str]]:
    """Every row of every table (but `skip`), in a form that compares equal when nothing changed."""
    out: dict[str, list[str]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in skip:
                out[table.name] = sorted(repr(tuple(row)) for row in conn.execute(table.select()))
    return out


def tap_sign_in(client: Any, upn: str, secret: str) -> Any:
    return client.post("/api/signin/tap", json={"username": upn, "temporaryAccessPass": secret})


def sign_in_with_new_tap(client: Any, db: Database, upn: str, **tap: Any) -> str:
    """Make the user, give them a pass and sign in with it; returns the user id."""
    user_id = make_user(db, upn)
    response = tap_sign_in(client, upn, issue_tap(db, user_id, **tap))
    assert response.status_code == 200, response.text
    return user_id


def signed_in_as(client: Any, db: Database, upn: str) -> str:
    """Make the user and give the client a session as a pass sign-in would, without the pass: for tests about
    what comes after signing in (a pass costs two argon2 computations, most of a test's time)."""
    user_id = make_user(db, upn)
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        token = sessions.start(session, RequestContext(), user, "temporaryAccessPass", ["otp"],
                               utcnow() + minutes(60)).token
    client.cookies.set(sessions.COOKIE, token)
    return user_id


def register(
    client: Any, authenticator: SoftAuthenticator, name: str | None = "My key", **create: Any
) -> tuple[Any, dict[str, Any]]:
    """Registration options, the authenticator's answer, and the API's response to it."""
    options = client.post("/api/me/passkeys/options")
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json(), ORIGIN, **create)
    body: dict[str, Any] = {"credential": credential}
    if name is not None:
        body["displayName"] = name
    return client.post("/api/me/passkeys", json=body), credential


def request_options(client: Any, username: str | None = None) -> dict[str, Any]:
    response = client.post("/api/signin/passkey/options", json={} if username is None else {"username": username})
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()
    return options


def passkey_sign_in(
    client: Any, authenticator: SoftAuthenticator, username: str | None = None,
    extra: dict[str, Any] | None = None, **get: Any
) -> tuple[Any, dict[str, Any]]:
    """The sign-in page's two calls; `extra` goes into the assertion's body (`authorization`, `next`)."""
    credential = authenticator.get(request_options(client, username), get.pop("origin", ORIGIN), **get)
    return client.post("/api/signin/passkey", json={"credential": credential, **(extra or {})}), credential


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def refused_attempt(db: Database, send: Callable[[], Any], code: ErrorCode, method: str | None) -> SignIn | None:
    """Send a request that must be refused with `code` and change nothing but the sign-in log.

    With `method`, exactly one log entry is added, carrying the code's number and that method;
    with None, nothing at all may be written (a step that is not a sign-in attempt)."""
    before, logged = snapshot(db), len(sign_ins(db))
    error_of(send(), code)
    assert snapshot(db) == before, "a refused request changed stored data"
    log = sign_ins(db)
    if method is None:
        assert len(log) == logged
        return None
    assert len(log) == logged + 1
    assert (log[-1].error_code, log[-1].authentication_method) == (code.number, method)
    return log[-1]


def enrol(
    client: Any, db: Database, upn: str, authenticator: SoftAuthenticator | None = None, **create: Any
) -> tuple[str, SoftAuthenticator, dict[str, Any]]:
    """A user who signed in, registered one passkey and signed out again."""
    user_id = signed_in_as(client, db, upn)
    authenticator = authenticator or SoftAuthenticator()
    response, _ = register(client, authenticator, **create)
    assert response.status_code == 201, response.text
    assert client.post("/api/signout").status_code == 200
    passkey: dict[str, Any] = response.json()
    return user_id, authenticator, passkey
