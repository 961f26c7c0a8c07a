"""Sign-in with a password, then a TOTP code, through the headless API; what each session proved.

Refusals are checked three ways, as for passes: the stable error, the same number in the sign-in log,
and nothing else changed.
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passgate import methods_policy
from passgate.app import create_app
from passgate.config import Settings
from passgate.context import RequestContext, utcnow
from passgate.core import errors
from passgate.core.values import MethodMode
from passgate.signin import passwords, sessions
from passgate.store.db import Database
from passgate.store.tables import BrowserSession, SoftwareOathMethod, User
from tests.integration.test_signin_support import (
    ORIGIN,
    enrol,
    error_of,
    issue_tap,
    make_user,
    passkey_sign_in,
    refused_attempt,
    sign_ins,
    tap_sign_in,
)

PASSWORD = "correct horse battery staple"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def configure(db: Database, config_id: str, state: str = "enabled", **more: Any) -> None:
    with db.transaction() as session:
        doc = {**methods_policy.load(session, config_id), "state": state, **more}
        methods_policy.save(session, RequestContext(), config_id, doc)


def with_password(db: Database, upn: str, password: str = PASSWORD) -> str:
    configure(db, methods_policy.PASSWORD)
    user_id = make_user(db, upn)
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        passwords.set_password(session, RequestContext(), user, password, self_service=False)
    return user_id


def with_app(db: Database, user_id: str, secret: str = SECRET) -> None:
    configure(db, methods_policy.SOFTWARE_OATH)
    with db.transaction() as session:
        session.add(SoftwareOathMethod(user_id=user_id, secret=secret, display_name="Phone", created_at=utcnow()))


def password_step(client: Any, upn: str, password: str = PASSWORD) -> Any:
    return client.post("/api/signin/password", json={"username": upn, "password": password})


def code_step(client: Any, pending: str, code: str) -> Any:
    return client.post("/api/signin/code", json={"pending": pending, "code": code})


def the_session(db: Database, user_id: str) -> BrowserSession:
    with db.transaction() as session:
        (row,) = session.scalars(select(BrowserSession).where(BrowserSession.user_id == user_id))
        return row


def evidence(db: Database, user_id: str) -> Any:
    with db.transaction() as session:
        row = session.scalar(select(BrowserSession).where(BrowserSession.user_id == user_id)
                             .order_by(BrowserSession.auth_time.desc()))
        assert row is not None
        return sessions.evidence_of(session, row)


def test_password_alone_gives_a_single_factor_session(client: Any, db: Database) -> None:
    user_id = with_password(db, "ada@example.com")
    assert "password" in client.post("/api/signin/identify", json={"username": "ada@example.com"}).json()["methods"]
    answer = password_step(client, "Ada@Example.com")
    assert answer.status_code == 200, answer.text
    assert answer.json()["userPrincipalName"] == "ada@example.com" and "pending" not in answer.json()
    row = the_session(db, user_id)
    assert (row.method, row.amr, row.auth_methods) == ("password", ["pwd"], ["password"])
    proved = evidence(db, user_id)
    assert proved.methods == frozenset({MethodMode.PASSWORD}) and proved.passkey is None
    assert proved.auth_time == row.auth_time
    (log,) = [e for e in sign_ins(db) if e.authentication_method == "Password"]
    assert (log.error_code, log.user_id) == (0, user_id)
    assert client.get("/api/me").json()["authMethods"] == ["password"]


def test_password_then_code_in_the_same_sign_in(client: Any, db: Database) -> None:
    user_id = with_password(db, "bob@example.com")
    with_app(db, user_id)
    first = password_step(client, "bob@example.com")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["secondFactor"] == "softwareOath" and body["pending"]
    assert "passgate_session" not in client.cookies  # not a session yet
    interrupted = sign_ins(db)[-1]
    assert (interrupted.error_code, interrupted.authentication_method) == (
        errors.VERIFICATION_CODE_REQUIRED.number, "Password")
    # A wrong code is refused and logged; the pending step stays usable.
    wrong = f"{(int(pyotp.TOTP(SECRET).now()) + 1) % 1_000_000:06d}"
    refused_attempt(db, lambda: code_step(client, body["pending"], wrong), errors.VERIFICATION_CODE_INVALID,
                    "OATH verification code")
    second = code_step(client, body["pending"], pyotp.TOTP(SECRET).now())
    assert second.status_code == 200, second.text
    row = the_session(db, user_id)
    assert (row.method, row.amr, row.auth_methods) == ("password", ["pwd", "otp", "mfa"], ["password", "softwareOath"])
    assert evidence(db, user_id).methods == frozenset({MethodMode.PASSWORD, MethodMode.SOFTWARE_OATH})
    log = sign_ins(db)[-1]
    assert (log.error_code, log.authentication_method, log.user_id) == (0, "OATH verification code", user_id)
    # The pending step was used up.
    error_of(code_step(client, body["pending"], pyotp.TOTP(SECRET).now()), errors.PENDING_SIGN_IN_NOT_FOUND)


def test_a_used_code_cannot_be_replayed(client: Any, db: Database) -> None:
    user_id = with_password(db, "cy@example.com")
    with_app(db, user_id)
    code = pyotp.TOTP(SECRET).now()
    assert code_step(client, password_step(client, "cy@example.com").json()["pending"], code).status_code == 200
    client.post("/api/signout")
    pending = password_step(client, "cy@example.com").json()["pending"]
    refused_attempt(db, lambda: code_step(client, pending, code), errors.VERIFICATION_CODE_ALREADY_USED,
                    "OATH verification code")
    with db.transaction() as session:
        (method,) = session.scalars(select(SoftwareOathMethod))
        assert method.last_counter is not None and method.last_used_at is not None


def test_the_pending_step_belongs_to_the_browser_that_started_it(client: Any, db: Database, settings: Settings) -> None:
    user_id = with_password(db, "dee@example.com")
    with_app(db, user_id)
    pending = password_step(client, "dee@example.com").json()["pending"]
    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN}) as other:
        refused_attempt(db, lambda: code_step(other, pending, pyotp.TOTP(SECRET).now()),
                        errors.PENDING_SIGN_IN_NOT_FOUND, "OATH verification code")
    refused_attempt(db, lambda: code_step(client, "not-a-token!", "123456"), errors.PENDING_SIGN_IN_NOT_FOUND,
                    "OATH verification code")


def test_wrong_password_and_unknown_user_are_refused_and_logged(client: Any, db: Database) -> None:
    user_id = with_password(db, "eve@example.com")
    entry = refused_attempt(db, lambda: password_step(client, "eve@example.com", "wrong password here"),
                            errors.INVALID_USERNAME_OR_PASSWORD, "Password")
    assert entry is not None and entry.user_id == user_id
    refused_attempt(db, lambda: password_step(client, "nobody@example.com"), errors.USER_NOT_FOUND, "Password")
    # A user without a password gets the same answer as a wrong one.
    make_user(db, "fay@example.com")
    refused_attempt(db, lambda: password_step(client, "fay@example.com"), errors.INVALID_USERNAME_OR_PASSWORD,
                    "Password")
    error_of(client.post("/api/signin/password", json={"username": "eve@example.com", "password": ""}),
             errors.INVALID_REQUEST)


def test_disabled_methods_are_refused(client: Any, db: Database) -> None:
    user_id = with_password(db, "gus@example.com")
    with_app(db, user_id)
    configure(db, methods_policy.PASSWORD, "disabled")
    assert "password" not in client.post("/api/signin/identify", json={"username": "gus@example.com"}).json()["methods"]
    refused_attempt(db, lambda: password_step(client, "gus@example.com"), errors.PASSWORD_NOT_ENABLED_FOR_USER,
                    "Password")
    # With Password on and SoftwareOath off, the authenticator app is not asked for.
    configure(db, methods_policy.PASSWORD)
    pending = password_step(client, "gus@example.com").json()["pending"]
    configure(db, methods_policy.SOFTWARE_OATH, "disabled")
    refused_attempt(db, lambda: code_step(client, pending, pyotp.TOTP(SECRET).now()),
                    errors.SOFTWARE_OATH_NOT_ENABLED_FOR_USER, "OATH verification code")
    answer = password_step(client, "gus@example.com")
    assert answer.status_code == 200 and "pending" not in answer.json()
    assert evidence(db, user_id).methods == frozenset({MethodMode.PASSWORD})


def test_an_excluded_user_cannot_use_a_password(client: Any, db: Database) -> None:
    user_id = with_password(db, "hal@example.com")
    configure(db, methods_policy.PASSWORD, excludeTargets=[{"targetType": "user", "id": user_id}])
    refused_attempt(db, lambda: password_step(client, "hal@example.com"), errors.PASSWORD_NOT_ENABLED_FOR_USER,
                    "Password")


def test_wrong_passwords_lock_the_user_out(client: Any, db: Database, settings: Settings) -> None:
    with_password(db, "ivy@example.com")
    for _ in range(settings.tap_failures_per_user):
        refused_attempt(db, lambda: password_step(client, "ivy@example.com", "wrong password here"),
                        errors.INVALID_USERNAME_OR_PASSWORD, "Password")
    refused_attempt(db, lambda: password_step(client, "ivy@example.com"), errors.TOO_MANY_WRONG_SECRETS, "Password")
    # Wrong passwords do not count against passes: those have their own counter.
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.user_principal_name == "ivy@example.com"))
        assert user is not None
        user_id = user.id
    assert tap_sign_in(client, "ivy@example.com", issue_tap(db, user_id)).status_code == 200


def test_wrong_codes_lock_the_user_out(client: Any, db: Database, settings: Settings) -> None:
    user_id = with_password(db, "jo@example.com")
    with_app(db, user_id)
    pending = password_step(client, "jo@example.com").json()["pending"]
    wrong = f"{(int(pyotp.TOTP(SECRET).now()) + 7) % 1_000_000:06d}"
    for _ in range(settings.tap_failures_per_user):
        error_of(code_step(client, pending, wrong), errors.VERIFICATION_CODE_INVALID)
    refused_attempt(db, lambda: code_step(client, pending, pyotp.TOTP(SECRET).now()), errors.TOO_MANY_WRONG_SECRETS,
                    "OATH verification code")


def test_wrong_passwords_from_one_client_lock_that_client_out(db: Database, settings: Settings) -> None:
    strict = settings.model_copy(update={"tap_failures_per_ip": 3})
    with_password(db, "kai@example.com")
    with_password(db, "lou@example.com")
    with TestClient(create_app(strict, db), base_url=ORIGIN, headers={"origin": ORIGIN},
                    client=("198.51.100.9", 4000)) as client:
        for upn in ("kai@example.com", "lou@example.com", "nobody@example.com"):
            password_step(client, upn, "wrong password here")
        refused_attempt(db, lambda: password_step(client, "lou@example.com"), errors.TOO_MANY_WRONG_SECRETS,
                        "Password")
    with TestClient(create_app(strict, db), base_url=ORIGIN, headers={"origin": ORIGIN},
                    client=("198.51.100.10", 4000)) as elsewhere:
        assert password_step(elsewhere, "lou@example.com").status_code == 200


@pytest.mark.parametrize("once", [True, False])
def test_evidence_of_a_pass_session(client: Any, db: Database, once: bool) -> None:
    user_id = make_user(db, "max@example.com")
    assert tap_sign_in(client, "max@example.com", issue_tap(db, user_id, once=once)).status_code == 200
    mode = MethodMode.TAP_ONE_TIME if once else MethodMode.TAP_MULTI_USE
    assert evidence(db, user_id).methods == frozenset({mode})
    assert the_session(db, user_id).auth_methods == [mode.value]


def test_evidence_of_a_passkey_session(client: Any, db: Database) -> None:
    user_id, authenticator, passkey = enrol(client, db, "ned@example.com")
    answer, _ = passkey_sign_in(client, authenticator)
    assert answer.status_code == 200, answer.text
    proved = evidence(db, user_id)
    assert proved.methods == frozenset({MethodMode.FIDO2})
    assert proved.passkey is not None and proved.passkey.aaguid == passkey["aaGuid"]
    assert proved.passkey.attested is (passkey["attestationLevel"] == "attested")
    assert proved.passkey.device_bound is (passkey["passkeyType"] == "deviceBound")



@pytest.mark.parametrize(("path", "body"), [
    ("/api/signin/password", {"username": "ora@example.com"}),
    ("/api/signin/password", {"username": "ora@example.com", "password": 12345678901234}),
    ("/api/signin/password", {"username": "ora@example.com", "password": "x" * 1025}),
    ("/api/signin/password", {"username": "ora@example.com", "password": "bad\x00password"}),
    ("/api/signin/password", {"password": PASSWORD}),
    ("/api/signin/code", {"pending": "abc"}),
    ("/api/signin/code", {"pending": "abc\x00", "code": "123456"}),
    ("/api/signin/code", {"pending": ["abc"], "code": "123456"}),
])
def test_malformed_requests_are_refused_and_change_nothing(client: Any, db: Database, path: str,
                                                           body: dict[str, Any]) -> None:
    with_password(db, "ora@example.com")
    refused_attempt(db, lambda: client.post(path, json=body), errors.INVALID_REQUEST, None)
    refused_attempt(db, lambda: client.post(path, content=b"{not json", headers={"content-type": "application/json"}),
                    errors.MALFORMED_JSON, None)


def test_codes_that_are_not_six_ascii_digits_are_wrong_codes(client: Any, db: Database) -> None:
    user_id = with_password(db, "pat@example.com")
    with_app(db, user_id)
    pending = password_step(client, "pat@example.com").json()["pending"]
    right = pyotp.TOTP(SECRET).now()
    for code in ("".join(chr(0xFF10 + int(d)) for d in right), right[:5], right + "0", "abcdef"):
        refused_attempt(db, lambda code=code: code_step(client, pending, code), errors.VERIFICATION_CODE_INVALID,
                        "OATH verification code")
    assert code_step(client, pending, f" {right[:3]} {right[3:]} ").status_code == 200
