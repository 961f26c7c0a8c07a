"""OpenID Connect after a password (+ TOTP) sign-in: acr/amr in the ID token, and step-up to a passkey."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp

from passgate.context import RequestContext
from passgate.oidc import grants
from passgate.signin import passwords
from passgate.store.db import Database
from passgate.store.tables import User
from tests.integration.oidc_helpers import (
    authorize,
    claims_of,
    exchange,
    make_app,
    pkce,
    redirect_params,
    tokens,
)
from tests.integration.test_signin_legacy import PASSWORD, SECRET, code_step, password_step, with_app, with_password
from tests.integration.test_signin_support import enrol, passkey_sign_in


def test_discovery_lists_the_acr_order(client: Any) -> None:
    supported = client.get("/.well-known/openid-configuration").json()["acr_values_supported"]
    assert supported == ["urn:passgate:acr:pwd", "urn:passgate:acr:tap", "urn:passgate:acr:mfa", "phr", "phrh"]
    assert [grants.acr_level(a) for a in supported] == [0, 1, 2, 3, 4]


def test_password_and_code_give_mfa_and_password_alone_gives_pwd(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    user_id = with_password(db, "ada@example.com")
    with_app(db, user_id)
    pending = password_step(client, "ada@example.com").json()["pending"]
    assert code_step(client, pending, pyotp.TOTP(SECRET).now()).status_code == 200
    claims = claims_of(client, tokens(client, client_id, secret)["id_token"])
    assert claims["acr"] == "urn:passgate:acr:mfa" and claims["amr"] == ["pwd", "otp", "mfa"]
    # An app asking for mfa is satisfied by this session (SSO) ...
    assert claims_of(client, tokens(client, client_id, secret, acr_values="urn:passgate:acr:mfa")["id_token"])[
        "acr"] == "urn:passgate:acr:mfa"
    # ... and an app asking for a passkey gets a clear refusal: this account has none.
    _, challenge = pkce()
    answer = redirect_params(authorize(client, client_id, challenge, acr_values="phr"))
    assert answer["error"] == "unmet_authentication_requirements"

    client.cookies.clear()
    with_password(db, "bea@example.com")
    assert password_step(client, "bea@example.com").status_code == 200
    claims = claims_of(client, tokens(client, client_id, secret)["id_token"])
    assert claims["acr"] == "urn:passgate:acr:pwd" and claims["amr"] == ["pwd"]
    # mfa is out of reach for a user with only a password.
    answer = redirect_params(authorize(client, client_id, challenge, acr_values="urn:passgate:acr:mfa"))
    assert answer["error"] == "unmet_authentication_requirements"


def test_a_password_session_is_stepped_up_to_a_passkey(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    user_id, authenticator, _ = enrol(client, db, "cy@example.com")
    with_password(db, "helper@example.com")  # turns the Password method on
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        passwords.set_password(session, RequestContext(), user, PASSWORD, self_service=False)
    assert password_step(client, "cy@example.com").status_code == 200
    verifier, challenge = pkce()
    step = authorize(client, client_id, challenge, acr_values="phr")
    assert step.status_code == 303
    query = parse_qs(urlsplit(step.headers["location"]).query)
    assert query["username"] == ["cy@example.com"]
    signed, _ = passkey_sign_in(client, authenticator, "cy@example.com")
    assert signed.status_code == 200, signed.text
    answer = redirect_params(client.get(query["next"][0], follow_redirects=False))
    claims = claims_of(client, exchange(client, client_id, secret, answer["code"], verifier).json()["id_token"])
    assert claims["acr"] == "phr" and claims["amr"] == ["swk", "user", "mfa"]
