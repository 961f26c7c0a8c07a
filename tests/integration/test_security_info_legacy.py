"""Security info for password and authenticator apps: the headless API behind the page, and the page itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from passgate import methods_policy
from passgate.app import create_app
from passgate.context import utcnow
from passgate.core import errors
from passgate.signin import passwords
from passgate.store.db import Database
from passgate.store.tables import BrowserSession, DirectoryAudit, Password, SoftwareOathMethod
from tests.integration.test_signin_legacy import PASSWORD, configure, password_step, with_password
from tests.integration.test_signin_support import ORIGIN, error_of, sign_ins, signed_in_as, snapshot


def age_session(db: Database, user_id: str, minutes: int) -> None:
    with db.transaction() as session:
        for row in session.scalars(select(BrowserSession).where(BrowserSession.user_id == user_id)):
            row.auth_time = row.auth_time - timedelta(minutes=minutes)


def refused(db: Database, response: Any, code: errors.ErrorCode) -> None:
    before = snapshot(db)
    error_of(response, code)
    assert snapshot(db) == before


def test_set_and_change_a_password(client: Any, db: Database) -> None:
    user_id = signed_in_as(client, db, "ada@example.com")
    refused(db, client.post("/api/me/password", json={"newPassword": PASSWORD}), errors.PASSWORD_NOT_ENABLED_FOR_USER)
    configure(db, methods_policy.PASSWORD)
    assert client.get("/api/me").json()["passwordAllowed"] is True
    refused(db, client.post("/api/me/password", json={"newPassword": "short"}), errors.PASSWORD_TOO_WEAK)
    # A fresh sign-in may set the first password without a current one.
    assert client.post("/api/me/password", json={"newPassword": PASSWORD}).status_code == 204
    me = client.get("/api/me").json()
    assert me["password"]["id"] == "28c10230-6103-485e-b985-444c60001490"
    (audit,) = [a for a in _audits(db) if a.activity_display_name == "User registered security info"]
    assert PASSWORD not in str(audit.target_resources)
    # Later, changing it needs the current one.
    age_session(db, user_id, 11)
    refused(db, client.post("/api/me/password", json={"newPassword": "another fine passphrase"}),
            errors.CURRENT_PASSWORD_REQUIRED)
    refused(db, client.post("/api/me/password", json={"newPassword": "another fine passphrase",
                                                      "currentPassword": "not the password"}),
            errors.INVALID_USERNAME_OR_PASSWORD)
    # A wrong current password is a wrong guess like any other: logged, and counted towards the lock-out.
    log = sign_ins(db)[-1]
    assert (log.error_code, log.authentication_method, log.user_id) == (
        errors.INVALID_USERNAME_OR_PASSWORD.number, "Password", user_id)
    assert client.post("/api/me/password", json={"newPassword": "another fine passphrase",
                                                 "currentPassword": PASSWORD}).status_code == 204
    with db.transaction() as session:
        row = session.get(Password, user_id)
        assert passwords.matches(row, "another fine passphrase") and not passwords.matches(row, PASSWORD)
    assert any(a.activity_display_name == "User updated security info" for a in _audits(db))


def _audits(db: Database) -> list[DirectoryAudit]:
    with db.transaction() as session:
        return list(session.scalars(select(DirectoryAudit)))


def test_add_an_authenticator_app_by_its_qr_code(client: Any, db: Database) -> None:
    signed_in_as(client, db, "bob@example.com")
    refused(db, client.post("/api/me/softwareoath/options"), errors.SOFTWARE_OATH_NOT_ENABLED_FOR_USER)
    configure(db, methods_policy.SOFTWARE_OATH)
    setup = client.post("/api/me/softwareoath/options").json()
    assert setup["qrCode"].startswith("data:image/svg+xml") and setup["uri"].startswith("otpauth://totp/")
    assert f"secret={setup['secret']}" in setup["uri"] and len(setup["secret"]) == 32
    totp = pyotp.TOTP(setup["secret"])
    wrong = f"{(int(totp.now()) + 5) % 1_000_000:06d}"
    body = {"secret": setup["secret"], "code": wrong, "displayName": "My phone"}
    refused(db, client.post("/api/me/softwareoath", json=body), errors.VERIFICATION_CODE_INVALID)
    refused(db, client.post("/api/me/softwareoath", json={**body, "secret": "A" * 32, "code": totp.now()}),
            errors.AUTHENTICATOR_SETUP_EXPIRED)
    added = client.post("/api/me/softwareoath", json={**body, "code": totp.now()})
    assert added.status_code == 201, added.text
    assert added.json()["displayName"] == "My phone" and "secret" not in added.json()
    # The seed was used up: the same set-up cannot be confirmed twice.
    refused(db, client.post("/api/me/softwareoath", json={**body, "code": totp.now()}),
            errors.AUTHENTICATOR_SETUP_EXPIRED)
    me = client.get("/api/me").json()
    (app,) = me["softwareOathMethods"]
    assert setup["secret"] not in str(me)
    with db.transaction() as session:
        stored = session.scalar(select(SoftwareOathMethod))
        assert stored is not None and stored.last_counter is not None  # the confirming code is used up
    page = client.get("/mysecurityinfo")
    assert "My phone" in page.text and setup["secret"] not in page.text
    # Deleting it, only while the policy allows the method.
    configure(db, methods_policy.SOFTWARE_OATH, "disabled")
    refused(db, client.delete(f"/api/me/softwareoath/{app['id']}"), errors.SOFTWARE_OATH_NOT_ENABLED_FOR_USER)
    configure(db, methods_policy.SOFTWARE_OATH)
    refused(db, client.delete("/api/me/softwareoath/00000000-0000-0000-0000-000000000000"), errors.NOT_FOUND)
    assert client.delete(f"/api/me/softwareoath/{app['id']}").status_code == 204
    assert client.get("/api/me").json()["softwareOathMethods"] == []
    assert any(a.activity_display_name == "User deleted security info" for a in _audits(db))


def test_an_enrolment_belongs_to_the_browser_and_user_that_started_it(client: Any, db: Database,
                                                                     settings: Any) -> None:
    configure(db, methods_policy.SOFTWARE_OATH)
    signed_in_as(client, db, "cy@example.com")
    setup = client.post("/api/me/softwareoath/options").json()
    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN}) as other:
        signed_in_as(other, db, "dee@example.com")
        code = pyotp.TOTP(setup["secret"]).now()
        refused(db, other.post("/api/me/softwareoath", json={"secret": setup["secret"], "code": code}),
                errors.AUTHENTICATOR_SETUP_EXPIRED)


def test_the_page_shows_legacy_methods_only_when_the_policy_allows(client: Any, db: Database) -> None:
    signed_in_as(client, db, "eve@example.com")
    page = client.get("/mysecurityinfo").text
    assert 'id="oath-start"' not in page and 'id="password-form"' not in page
    user_id = with_password(db, "fay@example.com")
    configure(db, methods_policy.SOFTWARE_OATH)
    client.cookies.clear()
    assert password_step(client, "fay@example.com").status_code == 200
    page = client.get("/mysecurityinfo").text
    assert 'id="oath-start"' in page and 'id="password-form"' in page and 'id="password-method"' in page
    assert "Signed in with</dt><dd id=\"signed-in-with\">Password" in page
    with db.transaction() as session:
        session.add(SoftwareOathMethod(user_id=user_id, secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                                       display_name="Work phone", created_at=utcnow()))
    assert 'data-action="delete-oath"' in client.get("/mysecurityinfo").text


def test_guessing_the_current_password_locks_out(client: Any, db: Database, settings: Any) -> None:
    user_id = signed_in_as(client, db, "gil@example.com")
    configure(db, methods_policy.PASSWORD)
    assert client.post("/api/me/password", json={"newPassword": PASSWORD}).status_code == 204
    age_session(db, user_id, 11)
    change = {"newPassword": "another fine passphrase"}
    for _ in range(settings.tap_failures_per_user):
        error_of(client.post("/api/me/password", json={**change, "currentPassword": "a wrong guess"}),
                 errors.INVALID_USERNAME_OR_PASSWORD)
    refused(db, client.post("/api/me/password", json={**change, "currentPassword": PASSWORD}),
            errors.TOO_MANY_WRONG_SECRETS)
