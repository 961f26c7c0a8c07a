"""Registering, renaming and deleting one's own passkeys through the headless API.

A refused registration writes nothing at all: no passkey, no audit record, and the challenge stays
unused.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bench.softauthn import EDDSA, ES256, RS256, SoftAuthenticator
from passgate.core import errors
from passgate.store.db import Database
from passgate.store.tables import Challenge, DirectoryAudit, Passkey
from tests.integration.test_signin_support import (
    ORIGIN,
    enrol,
    error_of,
    issue_tap,
    make_user,
    passkey_sign_in,
    refused_attempt,
    register,
    sign_in_with_new_tap,
    signed_in_as,
    tap_sign_in,
)

GOOGLE_PASSWORD_MANAGER = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"


def passkeys(db: Database) -> list[Passkey]:
    with db.transaction() as session:
        return list(session.scalars(select(Passkey)))


def audits(db: Database) -> list[DirectoryAudit]:
    with db.transaction() as session:
        return list(session.scalars(select(DirectoryAudit).order_by(DirectoryAudit.activity_at)))


def refused_registration(client: Any, db: Database, credential: dict[str, Any], code: Any, **body: Any) -> None:
    refused_attempt(
        db, lambda: client.post("/api/me/passkeys", json={"credential": credential, **body}), code, None
    )


def creation_options(client: Any) -> dict[str, Any]:
    response = client.post("/api/me/passkeys/options")
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()
    return options


@pytest.mark.parametrize(("alg", "name"), [(ES256, "ES256"), (EDDSA, "EdDSA"), (RS256, "RS256")])
def test_register_then_sign_in_with_each_algorithm(client: Any, db: Database, alg: int, name: str) -> None:
    user_id = sign_in_with_new_tap(client, db, "ann@example.com")  # the whole first-day path, pass included
    options = creation_options(client)
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [ES256, EDDSA, RS256]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["user"]["name"] == "ann@example.com" and options["rp"]["id"] == "localhost"
    assert options["extensions"] == {"credProps": True}
    authenticator = SoftAuthenticator()
    credential = authenticator.create(options, ORIGIN, alg=alg)
    response = client.post("/api/me/passkeys", json={"credential": credential, "displayName": f"  {name} key "})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["displayName"] == f"{name} key"
    assert body["credentialId"] == credential["id"]
    assert body["passkeyType"] == "deviceBound" and body["backedUp"] is False
    assert body["attestationFormat"] == "none" and body["attestationLevel"] == "notAttested"
    assert body["aaGuid"] == str(uuid.UUID(bytes=authenticator.aaguid))
    (row,) = passkeys(db)
    assert row.user_id == user_id and row.sign_count == 1
    assert row.transports == ["hybrid", "internal"]
    audit = audits(db)[-1]
    assert audit.activity_display_name == "User registered security info"
    assert audit.initiated_by["user"]["id"] == user_id
    assert client.get("/api/me").json()["passkeys"][0]["id"] == body["id"]
    client.post("/api/signout")
    signed, _ = passkey_sign_in(client, authenticator, "ann@example.com")
    assert signed.status_code == 200, signed.text


def test_a_synced_passkey_is_shown_as_synced_with_its_model(client: Any, db: Database) -> None:
    signed_in_as(client, db, "bea@example.com")
    synced = SoftAuthenticator(be=True, bs=True, aaguid=uuid.UUID(GOOGLE_PASSWORD_MANAGER).bytes)
    response, _ = register(client, synced, name=None)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["passkeyType"] == "synced" and body["backedUp"] is True
    assert body["model"] == "Google Password Manager"
    assert body["displayName"] == "Google Password Manager"  # no name given: the model's


def test_the_options_exclude_passkeys_already_registered(client: Any, db: Database) -> None:
    signed_in_as(client, db, "cid@example.com")
    authenticator = SoftAuthenticator()
    first, credential = register(client, authenticator)
    assert first.status_code == 201
    options = creation_options(client)
    assert [c["id"] for c in options["excludeCredentials"]] == [credential["id"]]
    # An authenticator that ignores the list and makes the same credential again is refused.
    same_id = next(iter(authenticator.credentials))
    again = authenticator.create(options, ORIGIN, ignore_exclude=True, credential_id=same_id)
    refused_registration(client, db, again, errors.CREDENTIAL_ALREADY_REGISTERED)
    assert len(passkeys(db)) == 1


def test_the_same_credential_cannot_be_registered_to_another_user(client: Any, db: Database) -> None:
    _, authenticator, passkey = enrol(client, db, "dee@example.com")
    signed_in_as(client, db, "eli@example.com")
    credential_id = next(iter(authenticator.credentials))
    copy = authenticator.create(creation_options(client), ORIGIN, credential_id=credential_id)
    refused_registration(client, db, copy, errors.CREDENTIAL_ALREADY_REGISTERED)
    assert [p.id for p in passkeys(db)] == [passkey["id"]]


def test_registration_needs_a_session(client: Any, db: Database) -> None:
    refused_attempt(db, lambda: client.post("/api/me/passkeys/options"), errors.SESSION_REQUIRED, None)
    signed_in_as(client, db, "fin@example.com")
    credential = SoftAuthenticator().create(creation_options(client), ORIGIN)
    client.post("/api/signout")
    refused_registration(client, db, credential, errors.SESSION_REQUIRED)


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"uv": False}, errors.USER_VERIFICATION_REQUIRED),
        ({"up": False}, errors.REGISTRATION_INVALID),
        ({"be": False, "bs": True}, errors.REGISTRATION_INVALID),  # backed up but not backup eligible
        ({"rp_id": "evil.localhost"}, errors.REGISTRATION_INVALID),
        ({"cross_origin": True}, errors.CROSS_ORIGIN_NOT_ALLOWED),
        ({"client_data_type": "webauthn.get"}, errors.MALFORMED_CREDENTIAL),
        ({"challenge": b"\x02" * 32}, errors.CHALLENGE_NOT_FOUND),
    ],
    ids=["no-uv", "no-up", "bs-without-be", "rp-id", "cross-origin", "type", "challenge"],
)
def test_a_registration_that_does_not_verify_is_refused(
    client: Any, db: Database, tamper: dict[str, Any], code: Any
) -> None:
    signed_in_as(client, db, "gus@example.com")
    credential = SoftAuthenticator().create(creation_options(client), ORIGIN, **tamper)
    refused_registration(client, db, credential, code)


def test_a_registration_from_another_origin_is_refused(client: Any, db: Database) -> None:
    signed_in_as(client, db, "hoa@example.com")
    credential = SoftAuthenticator().create(creation_options(client), "http://evil.localhost:8443")
    refused_registration(client, db, credential, errors.ORIGIN_NOT_ALLOWED)


def test_a_registration_cannot_be_replayed(client: Any, db: Database) -> None:
    signed_in_as(client, db, "ida@example.com")
    response, credential = register(client, SoftAuthenticator())
    assert response.status_code == 201
    refused_registration(client, db, credential, errors.CHALLENGE_ALREADY_USED)


def test_an_expired_registration_challenge_is_refused(client: Any, db: Database) -> None:
    signed_in_as(client, db, "jay@example.com")
    credential = SoftAuthenticator().create(creation_options(client), ORIGIN)
    with db.transaction() as session:
        for row in session.scalars(select(Challenge)):
            row.expires_at = row.expires_at - timedelta(minutes=6)
    refused_registration(client, db, credential, errors.CHALLENGE_EXPIRED)


def test_a_registration_started_for_another_account_is_refused(client: Any, db: Database) -> None:
    signed_in_as(client, db, "kit@example.com")
    started_for_kit = SoftAuthenticator().create(creation_options(client), ORIGIN)
    client.post("/api/signout")
    signed_in_as(client, db, "lev@example.com")  # same browser, another account
    refused_registration(client, db, started_for_kit, errors.CHALLENGE_NOT_FOUND)


@pytest.mark.parametrize("name", ["", "   ", "x" * 257, 7, ["a"]], ids=["empty", "blank", "long", "int", "list"])
def test_a_bad_display_name_is_refused(client: Any, db: Database, name: Any) -> None:
    signed_in_as(client, db, "mo@example.com")
    credential = SoftAuthenticator().create(creation_options(client), ORIGIN)
    refused_registration(client, db, credential, errors.INVALID_REQUEST, displayName=name)


def test_rename_and_delete_a_passkey(client: Any, db: Database) -> None:
    user_id = make_user(db, "nia@example.com")
    secret = issue_tap(db, user_id)
    assert tap_sign_in(client, "nia@example.com", secret).status_code == 200
    authenticator = SoftAuthenticator()
    response, _ = register(client, authenticator)
    passkey_id = response.json()["id"]
    renamed = client.patch(f"/api/me/passkeys/{passkey_id}", json={"displayName": "Work laptop"})
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Work laptop"
    audit = audits(db)[-1]
    assert audit.activity_display_name == "User updated security info"
    assert audit.target_resources[0]["modifiedProperties"][0]["newValue"] == "Work laptop"
    refused_attempt(
        db, lambda: client.patch(f"/api/me/passkeys/{passkey_id}", json={"displayName": ""}),
        errors.INVALID_REQUEST, None,
    )
    assert client.delete(f"/api/me/passkeys/{passkey_id}").status_code == 204
    assert passkeys(db) == []
    assert audits(db)[-1].activity_display_name == "User deleted security info"
    client.post("/api/signout")
    gone = authenticator.get(
        client.post("/api/signin/passkey/options", json={}).json(), ORIGIN
    )
    error_of(client.post("/api/signin/passkey", json={"credential": gone}), errors.CREDENTIAL_NOT_FOUND)


def test_nobody_renames_or_deletes_the_passkey_of_another(client: Any, db: Database) -> None:
    _, _, theirs = enrol(client, db, "ora@example.com")
    signed_in_as(client, db, "pam@example.com")
    for send in (
        lambda: client.patch(f"/api/me/passkeys/{theirs['id']}", json={"displayName": "mine now"}),
        lambda: client.delete(f"/api/me/passkeys/{theirs['id']}"),
        lambda: client.delete("/api/me/passkeys/not-an-id"),
    ):
        refused_attempt(db, send, errors.NOT_FOUND, None)
