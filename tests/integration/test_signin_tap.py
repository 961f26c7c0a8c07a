"""Sign-in with a Temporary Access Pass through the headless API: the session it gives, and every refusal.

Each refusal is checked three ways: the stable error in the API body, the same number in the sign-in
log, and nothing else changed (no session, the one-time pass still unused, ...).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from passgate.app import create_app
from passgate.config import Settings
from passgate.context import utcnow
from passgate.core import errors
from passgate.core.errors import ErrorCode
from passgate.signin import taps
from passgate.store.db import Database
from passgate.store.tables import BrowserSession, Setting, SignIn, TemporaryAccessPass
from tests.integration.test_signin_support import (
    ORIGIN,
    error_of,
    issue_tap,
    make_user,
    minutes,
    set_enabled,
    sign_ins,
    snapshot,
    tap_sign_in,
)


def refused(client: Any, db: Database, upn: str, secret: str, code: ErrorCode) -> dict[str, Any]:
    """Post the pass, expect `code`, one new log entry with its number, and no other change."""
    before, logged = snapshot(db), len(sign_ins(db))
    error = error_of(tap_sign_in(client, upn, secret), code)
    assert snapshot(db) == before
    log = sign_ins(db)
    assert len(log) == logged + 1
    assert log[-1].error_code == code.number
    assert log[-1].authentication_method == "Temporary Access Pass"
    assert log[-1].user_principal_name == upn.lower()
    assert "passgate_session" not in client.cookies
    return error


def the_pass(db: Database, user_id: str) -> TemporaryAccessPass:
    with db.transaction() as session:
        row = session.scalar(select(TemporaryAccessPass).where(TemporaryAccessPass.user_id == user_id))
        assert row is not None
        return row


def sessions_of(db: Database, user_id: str) -> list[BrowserSession]:
    with db.transaction() as session:
        return list(session.scalars(select(BrowserSession).where(BrowserSession.user_id == user_id)))


def test_a_pass_signs_in_and_the_session_ends_with_the_pass(client: Any, db: Database) -> None:
    user_id = make_user(db, "ada@example.com")
    secret = issue_tap(db, user_id, lifetime=60)
    response = tap_sign_in(client, "Ada@Example.com", f"  {secret} ")
    assert response.status_code == 200, response.text
    assert response.json()["userPrincipalName"] == "ada@example.com"
    me = client.get("/api/me").json()
    assert me["signedInWith"] == "temporaryAccessPass"
    (row,) = sessions_of(db, user_id)
    expiry = taps.expiry(the_pass(db, user_id))
    # The usual session is 8 hours; this one ends when the pass does.
    assert row.expires_at == expiry
    assert row.method == "temporaryAccessPass" and row.amr == ["otp"]
    assert the_pass(db, user_id).used_at is None  # a multi-use pass stays usable
    (log,) = sign_ins(db)
    assert log.error_code == 0 and log.user_id == user_id
    assert log.authentication_method == "Temporary Access Pass"
    assert log.details["isUsableOnce"] is False


def test_a_pass_that_started_earlier_leaves_only_its_remaining_time(client: Any, db: Database) -> None:
    user_id = make_user(db, "bo@example.com")
    secret = issue_tap(db, user_id, now=utcnow() - minutes(50), lifetime=60)
    before = utcnow()
    assert tap_sign_in(client, "bo@example.com", secret).status_code == 200
    (row,) = sessions_of(db, user_id)
    assert row.expires_at == taps.expiry(the_pass(db, user_id))
    assert row.expires_at <= before + minutes(10)
    assert "passgate_session" in client.cookies


def test_a_one_time_pass_leaves_ten_minutes_and_cannot_be_used_again(client: Any, db: Database) -> None:
    user_id = make_user(db, "cy@example.com")
    secret = issue_tap(db, user_id, lifetime=480, once=True)
    before = utcnow()
    assert tap_sign_in(client, "cy@example.com", secret).status_code == 200
    after = utcnow()
    (row,) = sessions_of(db, user_id)
    assert before + minutes(10) <= row.expires_at <= after + minutes(10)
    assert row.expires_at <= taps.expiry(the_pass(db, user_id))
    used = the_pass(db, user_id).used_at
    assert used is not None
    client.post("/api/signout")
    refused(client, db, "cy@example.com", secret, errors.TAP_ALREADY_USED)
    assert the_pass(db, user_id).used_at == used


def test_an_expired_pass_is_refused(client: Any, db: Database) -> None:
    user_id = make_user(db, "di@example.com")
    secret = issue_tap(db, user_id, now=utcnow() - minutes(61), lifetime=60, once=True)
    refused(client, db, "di@example.com", secret, errors.TAP_EXPIRED)
    assert the_pass(db, user_id).used_at is None


def test_a_pass_that_has_not_started_is_refused(client: Any, db: Database) -> None:
    user_id = make_user(db, "ed@example.com")
    secret = issue_tap(db, user_id, start=utcnow() + minutes(30), once=True)
    refused(client, db, "ed@example.com", secret, errors.TAP_NOT_YET_VALID)


def test_the_pass_of_another_user_is_refused(client: Any, db: Database) -> None:
    make_user(db, "fay@example.com")
    issue_tap(db, make_user(db, "fay-pass@example.com"))
    other = issue_tap(db, make_user(db, "gus@example.com"), once=True)
    refused(client, db, "fay@example.com", other, errors.TAP_INVALID)
    # A user without any pass gets the same answer: nothing tells which is the case.
    make_user(db, "hal@example.com")
    refused(client, db, "hal@example.com", other, errors.TAP_INVALID)


def test_unknown_and_disabled_users_are_refused(client: Any, db: Database) -> None:
    refused(client, db, "nobody@example.com", "ABCDEFGH", errors.USER_NOT_FOUND)
    user_id = make_user(db, "ivy@example.com", enabled=False)
    secret = issue_tap(db, user_id, once=True)
    refused(client, db, "ivy@example.com", secret, errors.USER_DISABLED)
    assert the_pass(db, user_id).used_at is None


def test_a_multi_use_pass_is_refused_once_policy_allows_only_one_time_passes(client: Any, db: Database) -> None:
    user_id = make_user(db, "jo@example.com")
    secret = issue_tap(db, user_id, once=False)
    with db.transaction() as session:
        session.add(Setting(name="TemporaryAccessPass", value={"state": "enabled", "isUsableOnce": True}))
    refused(client, db, "jo@example.com", secret, errors.TAP_DISABLED_BY_POLICY)
    # The right pass refused by policy is not a wrong guess: it does not count towards the lock-out.
    for _ in range(6):
        error_of(tap_sign_in(client, "jo@example.com", secret), errors.TAP_DISABLED_BY_POLICY)


def test_a_disabled_pass_method_refuses_every_pass(client: Any, db: Database) -> None:
    user_id = make_user(db, "kim@example.com")
    secret = issue_tap(db, user_id, once=True)
    with db.transaction() as session:
        session.add(Setting(name="TemporaryAccessPass", value={"state": "disabled"}))
    refused(client, db, "kim@example.com", secret, errors.TAP_DISABLED_BY_POLICY)


def test_wrong_passes_lock_the_user_out_and_the_right_one_is_refused_too(
    client: Any, db: Database, settings: Settings
) -> None:
    assert settings.tap_failures_per_user == 5
    user_id = make_user(db, "lea@example.com")
    secret = issue_tap(db, user_id, once=True)
    for _ in range(settings.tap_failures_per_user):
        refused(client, db, "lea@example.com", "WRONGPASS", errors.TAP_INVALID)
    refused(client, db, "lea@example.com", secret, errors.TOO_MANY_ATTEMPTS)
    assert the_pass(db, user_id).used_at is None
    # The limit is the user's, wherever the next attempt comes from.
    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN},
                    client=("198.51.100.7", 4000)) as elsewhere:
        refused(elsewhere, db, "lea@example.com", secret, errors.TOO_MANY_ATTEMPTS)
    # Another user on the same client is not affected (5 failures are far from the 20 per client).
    other = make_user(db, "max@example.com")
    assert tap_sign_in(client, "max@example.com", issue_tap(db, other)).status_code == 200


def test_the_lock_out_ends_with_the_window(client: Any, db: Database, settings: Settings) -> None:
    user_id = make_user(db, "ned@example.com")
    secret = issue_tap(db, user_id)
    for _ in range(settings.tap_failures_per_user):
        error_of(tap_sign_in(client, "ned@example.com", "WRONGPASS"), errors.TAP_INVALID)
    error_of(tap_sign_in(client, "ned@example.com", secret), errors.TOO_MANY_ATTEMPTS)
    # Move the failures out of the window, as if 15 minutes had passed.
    with db.transaction() as session:
        for entry in session.scalars(select(SignIn)):
            entry.created_at = entry.created_at - timedelta(minutes=settings.tap_failure_window_minutes + 1)
    assert tap_sign_in(client, "ned@example.com", secret).status_code == 200


def test_many_users_failing_from_one_client_lock_that_client_out(
    client: Any, db: Database, settings: Settings
) -> None:
    assert settings.tap_failures_per_ip == 20
    failures = 0
    for n in range(5):  # four wrong passes each: no single user reaches the per-user limit
        issue_tap(db, make_user(db, f"user{n}@example.com"))
        for _ in range(4):
            refused(client, db, f"user{n}@example.com", "WRONGPASS", errors.TAP_INVALID)
            failures += 1
    assert failures == settings.tap_failures_per_ip
    victim = make_user(db, "olga@example.com")
    secret = issue_tap(db, victim, once=True)
    refused(client, db, "olga@example.com", secret, errors.TOO_MANY_ATTEMPTS)
    refused(client, db, "nobody@example.com", "WRONGPASS", errors.TOO_MANY_ATTEMPTS)
    assert the_pass(db, victim).used_at is None
    # The same user from another client is fine: the limit was the client's, not hers.
    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN},
                    client=("198.51.100.8", 4000)) as elsewhere:
        assert tap_sign_in(elsewhere, "olga@example.com", secret).status_code == 200


def test_unknown_usernames_count_towards_the_client_limit(client: Any, db: Database, settings: Settings) -> None:
    for n in range(settings.tap_failures_per_ip):
        refused(client, db, f"ghost{n}@example.com", "WRONGPASS", errors.USER_NOT_FOUND)
    user_id = make_user(db, "pia@example.com")
    refused(client, db, "pia@example.com", issue_tap(db, user_id), errors.TOO_MANY_ATTEMPTS)


def test_the_session_cookie_lasts_no_longer_than_the_pass(client: Any, db: Database) -> None:
    user_id = make_user(db, "quin@example.com")
    secret = issue_tap(db, user_id, lifetime=480, once=True)
    response = tap_sign_in(client, "quin@example.com", secret)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("passgate_session="))
    max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
    assert 0 < max_age <= 600
    assert "httponly" in cookie.lower()


def test_sign_out_ends_the_session(client: Any, db: Database) -> None:
    user_id = make_user(db, "rae@example.com")
    assert tap_sign_in(client, "rae@example.com", issue_tap(db, user_id)).status_code == 200
    token = client.cookies.get("passgate_session")
    assert client.get("/api/me").status_code == 200
    assert client.post("/api/signout").status_code == 200
    (row,) = sessions_of(db, user_id)
    assert row.ended_at is not None
    client.cookies.set("passgate_session", token)  # even a kept cookie no longer works
    error_of(client.get("/api/me"), errors.SESSION_REQUIRED)


def test_a_disabled_user_loses_the_session(client: Any, db: Database) -> None:
    user_id = make_user(db, "sal@example.com")
    assert tap_sign_in(client, "sal@example.com", issue_tap(db, user_id)).status_code == 200
    set_enabled(db, user_id, False)
    error_of(client.get("/api/me"), errors.SESSION_REQUIRED)
