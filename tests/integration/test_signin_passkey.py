"""Passkey sign-in through the headless API: username-first and usernameless, and every refusal.

Each refusal is checked three ways: the stable error in the API body, the same number in the sign-in
log, and nothing else changed (no session, the sign count and the challenge as they were).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bench.softauthn import EDDSA, ES256, RS256, SoftAuthenticator
from passgate.app import create_app
from passgate.config import Settings, load_settings
from passgate.context import utcnow
from passgate.core import errors
from passgate.store.db import Database
from passgate.store.tables import BrowserSession, Challenge, Passkey
from tests.integration.test_signin_support import (
    ORIGIN,
    enrol,
    error_of,
    issue_tap,
    make_user,
    passkey_sign_in,
    refused_attempt,
    register,
    request_options,
    set_enabled,
    sign_in_with_new_tap,
    sign_ins,
)

DEVICE_BOUND = "Passkey (device-bound)"


def stored(db: Database, passkey_id: str) -> Passkey:
    with db.transaction() as session:
        row = session.get(Passkey, passkey_id)
        assert row is not None
        return row


def post(client: Any, credential: dict[str, Any]) -> Any:
    return client.post("/api/signin/passkey", json={"credential": credential})


@pytest.mark.parametrize("alg", [ES256, EDDSA, RS256])
def test_username_first_sign_in(client: Any, db: Database, alg: int) -> None:
    user_id, authenticator, passkey = enrol(client, db, "ann@example.com", alg=alg)
    options = request_options(client, "ANN@example.com")
    assert [c["id"] for c in options["allowCredentials"]] == [passkey["credentialId"]]
    assert options["userVerification"] == "required" and options["rpId"] == "localhost"
    response = post(client, authenticator.get(options, ORIGIN))
    assert response.status_code == 200, response.text
    assert response.json()["userPrincipalName"] == "ann@example.com"
    me = client.get("/api/me").json()
    assert me["id"] == user_id and me["signedInWith"] == "passkey"
    row = stored(db, passkey["id"])
    assert row.sign_count == 2 and row.last_used_at is not None
    log = sign_ins(db)[-1]
    assert (log.error_code, log.user_id, log.authentication_method) == (0, user_id, DEVICE_BOUND)
    # What the entry says of the account and the passkey (read as rows): names, method detail, passkey facts.
    assert (log.user_principal_name, log.user_display_name) == ("ann@example.com", "Ann")
    assert log.authentication_method_detail == f"{row.display_name} ({row.aaguid})" and row.model is None
    assert log.details == {"passkeyId": passkey["id"], "aaGuid": row.aaguid, "passkeyType": "deviceBound",
                           "passkeyProfile": "Default passkey profile"}
    with db.transaction() as session:
        (browser_session,) = session.scalars(select(BrowserSession).where(BrowserSession.method == "passkey"))
        assert browser_session.passkey_id == passkey["id"]


def test_usernameless_sign_in_maps_the_user_handle_to_the_account(client: Any, db: Database) -> None:
    enrol(client, db, "bob@example.com")
    user_id, authenticator, _ = enrol(client, db, "cat@example.com")
    options = request_options(client)
    assert options["allowCredentials"] == []
    credential = authenticator.get(options, ORIGIN)
    assert credential["response"]["userHandle"]
    response = post(client, credential)
    assert response.status_code == 200, response.text
    assert response.json()["userPrincipalName"] == "cat@example.com"
    assert client.get("/api/me").json()["id"] == user_id


def test_a_synced_passkey_signs_in_and_keeps_its_backup_state(client: Any, db: Database) -> None:
    _, authenticator, passkey = enrol(client, db, "dan@example.com", SoftAuthenticator(be=True, bs=False))
    assert passkey["passkeyType"] == "synced" and passkey["backedUp"] is False
    response, _ = passkey_sign_in(client, authenticator, bs=True)
    assert response.status_code == 200, response.text
    assert stored(db, passkey["id"]).backup_state is True
    assert sign_ins(db)[-1].authentication_method == "Passkey (synced)"


def test_an_authenticator_without_a_counter_signs_in_again_and_again(client: Any, db: Database) -> None:
    _, authenticator, passkey = enrol(client, db, "eve@example.com", SoftAuthenticator(counter="zero"))
    for _ in range(3):
        response, _ = passkey_sign_in(client, authenticator, "eve@example.com")
        assert response.status_code == 200, response.text
    assert stored(db, passkey["id"]).sign_count == 0


def test_a_replayed_response_is_refused(client: Any, db: Database) -> None:
    _, authenticator, passkey = enrol(client, db, "fox@example.com")
    response, credential = passkey_sign_in(client, authenticator)
    assert response.status_code == 200
    client.post("/api/signout")
    refused_attempt(db, lambda: post(client, credential), errors.CHALLENGE_ALREADY_USED, "Passkey")
    assert stored(db, passkey["id"]).sign_count == 2


def test_an_expired_challenge_is_refused(client: Any, db: Database) -> None:
    _, authenticator, _ = enrol(client, db, "gil@example.com")
    credential = authenticator.get(request_options(client, "gil@example.com"), ORIGIN)
    with db.transaction() as session:
        for row in session.scalars(select(Challenge).where(Challenge.used_at.is_(None))):
            row.expires_at = row.expires_at - timedelta(seconds=301)
    refused_attempt(db, lambda: post(client, credential), errors.CHALLENGE_EXPIRED, "Passkey")


def test_the_challenge_lifetime_is_the_configured_one(
    client: Any, db: Database, database_url: str, tmp_path: Path
) -> None:
    # Enrolled with the usual lifetime: a one-second registration challenge could expire on a loaded machine.
    _, authenticator, _ = enrol(client, db, "hal@example.com")
    quick = load_settings(
        database_url=database_url, data_dir=tmp_path, origins=[ORIGIN], rp_id="localhost", challenge_seconds=1
    )
    with TestClient(create_app(quick, db), base_url=ORIGIN, headers={"origin": ORIGIN}) as browser:
        options = request_options(browser, "hal@example.com")
        assert options["timeout"] == 1000
        credential = authenticator.get(options, ORIGIN)
        time.sleep(1.1)
        refused_attempt(db, lambda: post(browser, credential), errors.CHALLENGE_EXPIRED, "Passkey")


def test_a_challenge_from_another_browser_or_nowhere_is_refused(
    client: Any, db: Database, settings: Settings
) -> None:
    _, authenticator, _ = enrol(client, db, "ian@example.com")
    credential = authenticator.get(request_options(client), ORIGIN)
    with TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN}) as other:
        request_options(other)  # this browser has its own agent cookie, and its own challenge
        refused_attempt(db, lambda: post(other, credential), errors.CHALLENGE_NOT_FOUND, "Passkey")
    made_up = authenticator.get(request_options(client), ORIGIN, challenge=b"\x01" * 32)
    refused_attempt(db, lambda: post(client, made_up), errors.CHALLENGE_NOT_FOUND, "Passkey")


def test_a_response_for_another_origin_is_refused(client: Any, db: Database) -> None:
    _, authenticator, _ = enrol(client, db, "jan@example.com")
    evil = authenticator.get(request_options(client), "http://evil.localhost:8443")
    refused_attempt(db, lambda: post(client, evil), errors.ORIGIN_NOT_ALLOWED, "Passkey")


def test_a_cross_origin_response_is_refused(client: Any, db: Database) -> None:
    _, authenticator, _ = enrol(client, db, "kai@example.com")
    framed = authenticator.get(request_options(client), ORIGIN, cross_origin=True, top_origin="https://evil.example")
    refused_attempt(db, lambda: post(client, framed), errors.CROSS_ORIGIN_NOT_ALLOWED, "Passkey")


def test_a_response_without_user_verification_is_refused(client: Any, db: Database) -> None:
    _, authenticator, passkey = enrol(client, db, "lou@example.com")
    options = request_options(client)
    refused_attempt(
        db, lambda: post(client, authenticator.get(options, ORIGIN, uv=False)),
        errors.USER_VERIFICATION_REQUIRED, DEVICE_BOUND,
    )
    # A forged response cannot blame the missing check: without a good signature it is just invalid.
    refused_attempt(
        db, lambda: post(client, authenticator.get(options, ORIGIN, uv=False, bad_signature=True)),
        errors.ASSERTION_INVALID, DEVICE_BOUND,
    )
    assert stored(db, passkey["id"]).sign_count == 1


def test_a_cloned_authenticator_is_caught_by_its_counter(client: Any, db: Database) -> None:
    _, authenticator, passkey = enrol(client, db, "mia@example.com")
    original = next(iter(authenticator.credentials.values()))
    clone = original.clone()
    for _ in range(2):
        response, _ = passkey_sign_in(client, authenticator)
        assert response.status_code == 200
        client.post("/api/signout")
    assert stored(db, passkey["id"]).sign_count == 3
    copied = authenticator.get(request_options(client), ORIGIN, credential=clone)  # counter 2 after 3
    log = refused_attempt(db, lambda: post(client, copied), errors.SIGN_COUNT_REGRESSION, DEVICE_BOUND)
    assert log is not None and "2 after 3" in (log.failure_reason or "")
    error = error_of(post(client, authenticator.get(request_options(client), ORIGIN, credential=clone,
                                                     sign_count=3)), errors.SIGN_COUNT_REGRESSION)
    assert "3 after 3" in error["message"]
    # A forger cannot put a clone warning into the passkey's history.
    forged = authenticator.get(request_options(client), ORIGIN, credential=clone, sign_count=1, bad_signature=True)
    refused_attempt(db, lambda: post(client, forged), errors.ASSERTION_INVALID, DEVICE_BOUND)
    assert stored(db, passkey["id"]).sign_count == 3


def test_an_unknown_passkey_is_refused(client: Any, db: Database) -> None:
    enrol(client, db, "ned@example.com")
    stranger = SoftAuthenticator()
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA",
                     "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}, ORIGIN)
    credential = stranger.get(request_options(client), ORIGIN)
    refused_attempt(db, lambda: post(client, credential), errors.CREDENTIAL_NOT_FOUND, "Passkey")


def test_a_disabled_user_cannot_sign_in_with_a_passkey(client: Any, db: Database) -> None:
    user_id, authenticator, passkey = enrol(client, db, "ola@example.com")
    set_enabled(db, user_id, False)
    credential = authenticator.get(request_options(client), ORIGIN)
    log = refused_attempt(db, lambda: post(client, credential), errors.USER_DISABLED, DEVICE_BOUND)
    assert log is not None and log.user_id == user_id
    assert (log.user_principal_name, log.user_display_name) == ("ola@example.com", "Ola")
    assert log.details["passkeyId"] == passkey["id"] and log.authentication_method_detail
    # Username-first, the options already say so, and that refusal is logged too.
    log = refused_attempt(
        db, lambda: client.post("/api/signin/passkey/options", json={"username": "ola@example.com"}),
        errors.USER_DISABLED, "Passkey",
    )
    assert log is not None and log.user_id == user_id
    assert (log.user_principal_name, log.user_display_name) == ("ola@example.com", "Ola")
    assert stored(db, passkey["id"]).sign_count == 1


def test_options_for_an_unknown_username_are_refused_and_logged(client: Any, db: Database) -> None:
    log = refused_attempt(
        db, lambda: client.post("/api/signin/passkey/options", json={"username": "who@example.com"}),
        errors.USER_NOT_FOUND, "Passkey",
    )
    assert log is not None and log.user_principal_name == "who@example.com"


def test_the_passkey_of_another_user_is_refused(client: Any, db: Database) -> None:
    enrol(client, db, "pat@example.com")
    _, theirs, _ = enrol(client, db, "quy@example.com")
    # Username-first for Pat, but Quy's passkey answers.
    options = request_options(client, "pat@example.com")
    credential = theirs.get(options, ORIGIN, credential=next(iter(theirs.credentials)))
    refused_attempt(db, lambda: post(client, credential), errors.USER_HANDLE_MISMATCH, DEVICE_BOUND)
    # Usernameless, with a user handle that is not the passkey owner's.
    other_handle = theirs.get(request_options(client), ORIGIN, user_handle=b"\x00" * 32)
    refused_attempt(db, lambda: post(client, other_handle), errors.USER_HANDLE_MISMATCH, DEVICE_BOUND)


@pytest.mark.parametrize(
    "tamper",
    [
        {"bad_signature": True},
        {"rp_id": "evil.localhost"},  # signed for another RP ID
        {"up": False},  # no user presence
        {"be": True, "bs": True},  # backup eligibility is fixed at creation
        {"client_data_type": "webauthn.create"},
    ],
    ids=["signature", "rp-id", "presence", "backup-eligibility", "type"],
)
def test_a_response_that_does_not_verify_is_refused(client: Any, db: Database, tamper: dict[str, Any]) -> None:
    _, authenticator, passkey = enrol(client, db, "rex@example.com")
    credential = authenticator.get(request_options(client), ORIGIN, **tamper)
    code = errors.MALFORMED_CREDENTIAL if "client_data_type" in tamper else errors.ASSERTION_INVALID
    method = "Passkey" if "client_data_type" in tamper else DEVICE_BOUND
    refused_attempt(db, lambda: post(client, credential), code, method)
    assert stored(db, passkey["id"]).sign_count == 1


def test_after_a_refusal_the_same_challenge_still_works(client: Any, db: Database) -> None:
    _, authenticator, _ = enrol(client, db, "sue@example.com")
    options = request_options(client)
    error_of(post(client, authenticator.get(options, ORIGIN, bad_signature=True)), errors.ASSERTION_INVALID)
    response = post(client, authenticator.get(options, ORIGIN))
    assert response.status_code == 200, response.text


def test_the_first_day_journey(client: Any, db: Database) -> None:
    """A one-time pass, a passkey of each kind, then every way of signing in with each of them."""
    user_id = sign_in_with_new_tap(client, db, "zoe@example.com", once=True)
    authenticators = [*(SoftAuthenticator() for _ in range(3)), SoftAuthenticator(be=True, bs=True)]
    for authenticator, alg in zip(authenticators, [ES256, EDDSA, RS256, ES256], strict=True):
        response, _ = register(client, authenticator, f"key {alg}", alg=alg)
        assert response.status_code == 201, response.text
    listed = client.get("/api/me").json()["passkeys"]
    assert [p["passkeyType"] for p in listed] == ["deviceBound"] * 3 + ["synced"]
    assert client.post("/api/signout").status_code == 200
    for authenticator in authenticators:
        for username in ("zoe@example.com", None):
            response, _ = passkey_sign_in(client, authenticator, username)
            assert response.status_code == 200, response.text
            assert client.get("/api/me").json()["id"] == user_id
            assert client.post("/api/signout").status_code == 200
    log = sign_ins(db)
    assert len(log) == 1 + 2 * len(authenticators)
    assert {entry.error_code for entry in log} == {0}
    assert {entry.user_id for entry in log} == {user_id}


def test_identify_tells_which_methods_the_user_has(client: Any, db: Database) -> None:
    user_id, _, _ = enrol(client, db, "amy@example.com")
    assert client.post("/api/signin/identify", json={"username": "Amy@example.com "}).json() == {
        "username": "amy@example.com", "displayName": "Amy", "methods": ["passkey"]}
    issue_tap(db, user_id)
    assert client.post("/api/signin/identify", json={"username": "amy@example.com"}).json()["methods"] == [
        "passkey", "temporaryAccessPass"]
    issue_tap(db, make_user(db, "ben@example.com"), start=utcnow() + timedelta(hours=1))
    assert client.post("/api/signin/identify", json={"username": "ben@example.com"}).json()["methods"] == []
    # Identify is a look-up, not a sign-in: a refusal there changes and logs nothing.
    refused_attempt(db, lambda: client.post("/api/signin/identify", json={"username": "who@example.com"}),
                    errors.USER_NOT_FOUND, None)
    set_enabled(db, user_id, False)
    refused_attempt(db, lambda: client.post("/api/signin/identify", json={"username": "amy@example.com"}),
                    errors.USER_DISABLED, None)


def test_a_response_without_the_browser_cookie_is_refused_and_logged(client: Any, db: Database) -> None:
    _, authenticator, _ = enrol(client, db, "cal@example.com")
    credential = authenticator.get(request_options(client), ORIGIN)
    client.cookies.clear()
    refused_attempt(db, lambda: post(client, credential), errors.CHALLENGE_NOT_FOUND, "Passkey")
