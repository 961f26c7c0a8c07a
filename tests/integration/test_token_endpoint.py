"""POST /oauth2/token with the client-credentials grant, as automation scripts call it."""

from __future__ import annotations

import base64
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.context import RequestContext
from passgate.oidc import clients
from passgate.store.db import Database


def _app(db: Database, *permissions: str) -> clients.NewApp:
    with db.transaction() as s:
        return clients.create_app_registration(s, RequestContext(), "automation", list(permissions))


def test_secret_in_form_or_basic_gives_a_signed_token_with_roles(client: Any, db: Database) -> None:
    new = _app(db, "User.ReadWrite.All", "AuditLog.Read.All")
    posted = client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": new.app.app_id, "client_secret": new.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    })
    assert posted.status_code == 200, posted.text
    body = posted.json()
    assert body["expires_in"] == 3600 and "refresh_token" not in body
    basic = base64.b64encode(f"{new.app.app_id}:{new.client_secret}".encode()).decode()
    by_basic = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                           headers={"authorization": f"Basic {basic}"})
    assert by_basic.status_code == 200, by_basic.text

    keys = KeySet.import_key_set(client.get("/oauth2/jwks").json())
    token = jwt.decode(body["access_token"], keys, algorithms=["ES256"])
    assert token.header["alg"] == "ES256"
    claims = token.claims
    assert claims["appid"] == new.app.app_id
    assert sorted(claims["roles"]) == ["AuditLog.Read.All", "User.ReadWrite.All"]
    assert claims["exp"] - claims["iat"] == 3600


def test_refusals_issue_nothing(client: Any, db: Database) -> None:
    new = _app(db, "User.ReadWrite.All")
    cases = [
        ({"grant_type": "client_credentials", "client_id": new.app.app_id, "client_secret": "wrong"}, 401,
         "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "nobody", "client_secret": new.client_secret}, 401,
         "invalid_client"),
        ({"grant_type": "client_credentials"}, 401, "invalid_client"),
        ({"grant_type": "password", "client_id": new.app.app_id, "client_secret": new.client_secret}, 400,
         "unsupported_grant_type"),
        ({}, 400, "unsupported_grant_type"),
    ]
    for form, status, error in cases:
        answer = client.post("/oauth2/token", data=form)
        # RFC 6749 §5.2: invalid_client is 401 when the client tried to authenticate, else 400 is allowed.
        assert answer.status_code in ((400, 401) if error == "invalid_client" else (status,)), (form, answer.text)
        assert answer.json()["error"] == error
        assert "access_token" not in answer.json()


def test_secrets_are_stored_hashed(db: Database) -> None:
    from sqlalchemy import select

    from passgate.store.tables import AppSecret

    new = _app(db)
    with db.transaction() as s:
        stored = list(s.scalars(select(AppSecret.secret_hash)))
    assert len(stored) == 1 and new.client_secret not in stored[0] and len(stored[0]) == 64
