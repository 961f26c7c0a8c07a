"""OpenID Connect: authorize -> token -> userinfo -> refresh -> revoke/introspect -> logout, and every refusal."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete, func, select, update

from passgate.context import utcnow
from passgate.oidc.routes import provider_metadata
from passgate.store.db import Database
from passgate.store.tables import AuthorizationCode, OAuthGrant, Passkey, RefreshToken, User

from .oidc_helpers import (
    LOGOUT,
    REDIRECT,
    authorize,
    claims_of,
    code_for,
    exchange,
    make_app,
    pkce,
    redirect_params,
    refresh,
    tokens,
)
from .test_signin_support import enrol, issue_tap, passkey_sign_in, set_enabled, signed_in_as


def counts(db: Database) -> tuple[int, int, int]:
    with db.transaction() as s:
        return (int(s.scalar(select(func.count()).select_from(AuthorizationCode)) or 0),
                int(s.scalar(select(func.count()).select_from(OAuthGrant)) or 0),
                int(s.scalar(select(func.count()).select_from(RefreshToken)) or 0))


def test_discovery_is_valid_and_names_the_endpoints(client: Any, settings: Any) -> None:
    doc = client.get("/.well-known/openid-configuration").json()
    provider_metadata(settings)  # Authlib's validation passes
    assert doc["issuer"] == "http://localhost:8443"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    jwks = client.get("/oauth2/jwks").json()["keys"]
    assert {k["alg"] for k in jwks} == {"ES256", "RS256"} and all("d" not in k for k in jwks)


def test_passkey_sign_in_to_tokens_userinfo_and_claims(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    user_id, authenticator, _ = enrol(client, db, "ada@example.com")
    # No session yet: the browser goes to the sign-in page, which comes back here.
    verifier, challenge = pkce()
    first = authorize(client, client_id, challenge)
    assert first.status_code == 303
    target = urlsplit(first.headers["location"])
    assert target.path == "/signin"
    back = parse_qs(target.query)["next"][0]
    assert back.startswith("/oauth2/authorize?") and "passgate_fresh=" in back
    signed, _ = passkey_sign_in(client, authenticator)
    assert signed.status_code == 200, signed.text
    answer = redirect_params(client.get(back, follow_redirects=False))
    response = exchange(client, client_id, secret, answer["code"], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer" and body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    idt = claims_of(client, body["id_token"])
    assert idt["sub"] == user_id and idt["aud"] == client_id and idt["nonce"] == "n-1"
    assert idt["amr"] == ["swk", "user", "mfa"] and idt["acr"] == "phr"
    assert idt["preferred_username"] == "ada@example.com" and idt["sid"] and idt["auth_time"] <= idt["iat"]
    access = claims_of(client, body["access_token"])
    assert access["client_id"] == client_id and access["exp"] - access["iat"] == 3600
    info = client.get("/oauth2/userinfo", headers={"authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == user_id
    assert info.json()["preferred_username"] == "ada@example.com"
    # SSO: a second app gets a code at once from the same session, with the same sid.
    other_id, other_secret = make_app(db, name="Second app")
    second = tokens(client, other_id, other_secret)
    assert claims_of(client, second["id_token"])["sid"] == idt["sid"]


def test_attested_device_bound_passkey_gives_hwk_and_phrh(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    _, authenticator, passkey = enrol(client, db, "grace@example.com")
    with db.transaction() as s:
        s.execute(update(Passkey).where(Passkey.id == passkey["id"]).values(attestation_level="attested"))
    assert passkey_sign_in(client, authenticator)[0].status_code == 200
    idt = claims_of(client, tokens(client, client_id, secret, acr_values="phrh")["id_token"])
    assert idt["amr"] == ["hwk", "user", "mfa"] and idt["acr"] == "phrh"


def test_tap_session_tokens_say_so_and_never_outlive_the_pass(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    signed_in_as(client, db, "tap@example.com")  # a pass session that ends in 60 minutes
    body = tokens(client, client_id, secret)
    idt = claims_of(client, body["id_token"])
    assert idt["amr"] == ["otp"] and idt["acr"] == "urn:passgate:acr:tap"
    with db.transaction() as s:
        family = s.scalars(select(OAuthGrant)).one()
        end = int(family.expires_at.timestamp())
        assert family.expires_at <= utcnow() + timedelta(minutes=61)
    assert claims_of(client, body["access_token"])["exp"] <= end
    refreshed = refresh(client, client_id, secret, body["refresh_token"]).json()
    assert claims_of(client, refreshed["access_token"])["exp"] <= end


def test_refusals_before_the_redirect_uri_is_trusted_never_redirect(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    _, challenge = pkce()
    cases = [
        (authorize(client, client_id, challenge, redirect_uri="http://localhost:9000/cb/"), "RedirectUriMismatch"),
        (authorize(client, client_id, challenge, redirect_uri="http://evil.example/cb"), "RedirectUriMismatch"),
        (authorize(client, "no-such-app", challenge), "UnauthorizedClient_AppNotFound"),
        (authorize(client, client_id, challenge, redirect_uri=None), "AuthorizeRequestInvalid"),
    ]
    for response, name in cases:
        assert response.status_code == 400 and "location" not in response.headers
        assert name in response.text and "owner" in response.text
    assert counts(db) == (0, 0, 0)


def test_refusals_at_the_redirect_uri_issue_nothing(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    signed_in_as(client, db, "ann@example.com")
    _, challenge = pkce()
    cases = [
        (authorize(client, client_id, None), "invalid_request", "PKCE"),
        (authorize(client, client_id, challenge, code_challenge_method="plain"), "invalid_request", "S256"),
        (authorize(client, client_id, challenge, nonce=None), "invalid_request", "nonce"),
        (authorize(client, client_id, challenge, response_type="token"), "unsupported_response_type", ""),
        (authorize(client, client_id, challenge, scope="openid admin"), "invalid_scope", ""),
        (authorize(client, client_id, challenge, max_age="soon"), "invalid_request", "max_age"),
    ]
    for response, error, words in cases:
        answer = redirect_params(response)
        assert answer["error"] == error and words in answer["error_description"] and answer["state"] == "st-1"
        assert "code" not in answer
    assert counts(db) == (0, 0, 0)


def test_prompt_none_without_a_session_is_login_required(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    _, challenge = pkce()
    answer = redirect_params(authorize(client, client_id, challenge, prompt="none"))
    assert answer["error"] == "login_required"
    assert counts(db) == (0, 0, 0)


def test_prompt_login_and_max_age_send_a_signed_in_browser_to_sign_in_again(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    signed_in_as(client, db, "bob@example.com")
    _, challenge = pkce()
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        response = authorize(client, client_id, challenge, **extra)
        assert response.status_code == 303 and response.headers["location"].startswith("/signin?next=")
        back = parse_qs(urlsplit(response.headers["location"]).query)["next"][0]
        assert "passgate_fresh=" in back
        # Coming back without a new sign-in does not satisfy the request.
        again = client.get(back, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"].startswith("/signin?next=")
    # prompt=none with a session too old for max_age: login_required, not a redirect to sign in.
    answer = redirect_params(authorize(client, client_id, challenge, prompt="none", max_age="0"))
    assert answer["error"] == "login_required"
    assert counts(db) == (0, 0, 0)


def test_acr_values_step_up_and_unmet_requirements(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    _, authenticator, _ = enrol(client, db, "eve@example.com")
    signed_in_as(client, db, "tapper@example.com")  # pass session, no passkey at all
    _, challenge = pkce()
    answer = redirect_params(authorize(client, client_id, challenge, acr_values="phr"))
    assert answer["error"] == "unmet_authentication_requirements"
    assert counts(db) == (0, 0, 0)
    # A user with a (synced-or-unattested) passkey asks for phr from a pass session: stepped up by sign-in.
    client.cookies.clear()
    assert passkey_sign_in(client, authenticator)[0].status_code == 200
    body = tokens(client, client_id, secret, acr_values="phr")
    assert claims_of(client, body["id_token"])["acr"] == "phr"
    # phrh needs an attested device-bound passkey, which this user has not: a clear error, nothing issued.
    before = counts(db)
    answer = redirect_params(authorize(client, client_id, challenge, acr_values="phrh"))
    assert answer["error"] == "unmet_authentication_requirements" and "phrh" in answer["error_description"]
    assert counts(db) == before


def test_token_refusals(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    signed_in_as(client, db, "carl@example.com")
    verifier, challenge = pkce()
    code = code_for(client, client_id, challenge)
    wrong_secret = exchange(client, client_id, "nope", code, verifier)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    no_verifier = exchange(client, client_id, secret, code, None)
    assert no_verifier.json()["error"] == "invalid_request"
    wrong = exchange(client, client_id, secret, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert counts(db)[1:] == (0, 0)
    # The code still works once with the right verifier; a replay fails and revokes what it issued.
    good = exchange(client, client_id, secret, code, verifier)
    assert good.status_code == 200, good.text
    replay = exchange(client, client_id, secret, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    access = good.json()["access_token"]
    assert client.get("/oauth2/userinfo", headers={"authorization": f"Bearer {access}"}).status_code == 401
    assert refresh(client, client_id, secret, good.json()["refresh_token"]).json()["error"] == "invalid_grant"
    # An expired code.
    code = code_for(client, client_id, challenge)
    with db.transaction() as s:
        s.execute(update(AuthorizationCode).where(AuthorizationCode.used_at.is_(None))
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = exchange(client, client_id, secret, code, verifier)
    assert expired.json()["error"] == "invalid_grant" and "expired" in expired.json()["error_description"]
    # A confidential app's code cannot be redeemed without the secret.
    code = code_for(client, client_id, challenge)
    assert exchange(client, client_id, None, code, verifier).json()["error"] == "invalid_client"


def test_a_code_gives_no_tokens_once_its_account_is_disabled_or_deleted(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    user_id = signed_in_as(client, db, "hal@example.com")
    with db.transaction() as s:
        s.execute(update(User).where(User.id == user_id).values(mail="hal@mail.example.com"))
    verifier, challenge = pkce()
    code = code_for(client, client_id, challenge)
    set_enabled(db, user_id, False)
    refused = exchange(client, client_id, secret, code, verifier)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant",
                              "error_description": "The account that signed in is not enabled."}
    assert counts(db)[1:] == (0, 0)
    # The refusal did not use the code: enabled again, it gives tokens with the account's claims.
    set_enabled(db, user_id, True)
    good = exchange(client, client_id, secret, code, verifier)
    assert good.status_code == 200, good.text
    idt = claims_of(client, good.json()["id_token"])
    assert (idt["sub"], idt["name"], idt["preferred_username"], idt["email"]) == (
        user_id, "Hal", "hal@example.com", "hal@mail.example.com")
    # A deleted account's codes go with it.
    code = code_for(client, client_id, challenge)
    with db.transaction() as s:
        s.execute(delete(User).where(User.id == user_id))
    gone = exchange(client, client_id, secret, code, verifier)
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
    assert counts(db) == (0, 0, 0)  # its family went with it too, and the exchange issued nothing


def test_public_client_uses_pkce_without_a_secret(client: Any, db: Database) -> None:
    client_id, _ = make_app(db, public=True)
    signed_in_as(client, db, "pub@example.com")
    body = tokens(client, client_id, None)
    assert body["id_token"] and body["refresh_token"]
    assert refresh(client, client_id, None, body["refresh_token"]).status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_family(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    signed_in_as(client, db, "dan@example.com")
    first = tokens(client, client_id, secret)
    second = refresh(client, client_id, secret, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    third = refresh(client, client_id, secret, rotated["refresh_token"])
    assert third.status_code == 200
    latest = third.json()
    # The first token comes back: the whole family ends, the newest refresh and access tokens included.
    reused = refresh(client, client_id, secret, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert refresh(client, client_id, secret, latest["refresh_token"]).json()["error"] == "invalid_grant"
    bearer = {"authorization": f"Bearer {latest['access_token']}"}
    assert client.get("/oauth2/userinfo", headers=bearer).status_code == 401
    with db.transaction() as s:
        assert s.scalars(select(OAuthGrant.revoked_reason)).one() == "refreshTokenReused"
        stored = list(s.scalars(select(RefreshToken.token_hash)))
    assert first["refresh_token"] not in stored and all(len(h) == 64 for h in stored)
    # Another app cannot use this app's refresh token.
    other_id, other_secret = make_app(db, name="Other")
    fresh = tokens(client, client_id, secret)
    assert refresh(client, other_id, other_secret, fresh["refresh_token"]).json()["error"] == "invalid_grant"



def test_another_apps_use_of_a_refresh_token_leaves_it_unused(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    other_id, other_secret = make_app(db, name="Other")
    signed_in_as(client, db, "dee@example.com")
    first = tokens(client, client_id, secret)
    refused = refresh(client, other_id, other_secret, first["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert refused.json()["error_description"] == "Unknown refresh token."
    # Neither used nor revoked: the app it was issued to still refreshes with it.
    assert refresh(client, client_id, secret, first["refresh_token"]).status_code == 200
    with db.transaction() as s:
        assert s.scalars(select(OAuthGrant.revoked_reason)).one() is None

def test_revocation_and_introspection(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    signed_in_as(client, db, "fay@example.com")
    body = tokens(client, client_id, secret)
    auth = {"client_id": client_id, "client_secret": secret}
    seen = client.post("/oauth2/introspect", data={**auth, "token": body["access_token"]}).json()
    assert seen["active"] is True and seen["client_id"] == client_id and seen["acr"] == "urn:passgate:acr:tap"
    seen = client.post("/oauth2/introspect", data={**auth, "token": body["refresh_token"]}).json()
    assert seen["active"] is True and seen["token_type"] == "refresh_token"
    assert client.post("/oauth2/introspect", data={**auth, "token": "garbage"}).json() == {"active": False}
    assert client.post("/oauth2/introspect", data={"client_id": client_id, "client_secret": "x",
                                                   "token": body["access_token"]}).status_code == 401
    other_id, other_secret = make_app(db, name="Other")
    foreign = client.post("/oauth2/introspect", data={"client_id": other_id, "client_secret": other_secret,
                                                      "token": body["access_token"]})
    assert foreign.json() == {"active": False}
    assert client.post("/oauth2/revoke", data={**auth, "token": "unknown"}).status_code == 200
    assert client.post("/oauth2/revoke", data={**auth, "token": body["refresh_token"]}).status_code == 200
    assert client.post("/oauth2/introspect", data={**auth, "token": body["access_token"]}).json() == {"active": False}
    assert refresh(client, client_id, secret, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_logout_with_id_token_hint_alone_ends_the_session_for_every_app(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    signed_in_as(client, db, "gil@example.com")
    body = tokens(client, client_id, secret)
    other_id, other_secret = make_app(db, name="Other")
    other = tokens(client, other_id, other_secret)
    bye = client.get("/oauth2/logout", params={"id_token_hint": body["id_token"], "post_logout_redirect_uri": LOGOUT,
                                               "state": "s9"}, follow_redirects=False)
    assert bye.status_code == 302 and bye.headers["location"] == f"{LOGOUT}?state=s9"
    # The session is gone for both apps: no silent sign-in, no refresh.
    _, challenge = pkce()
    assert redirect_params(authorize(client, other_id, challenge, prompt="none"))["error"] == "login_required"
    assert refresh(client, other_id, other_secret, other["refresh_token"]).json()["error"] == "invalid_grant"
    # An unregistered post-logout URI is refused on a page.
    refused = client.get("/oauth2/logout", params={"client_id": client_id, "post_logout_redirect_uri": REDIRECT},
                         follow_redirects=False)
    assert refused.status_code == 400 and "location" not in refused.headers


def test_form_post_response_mode(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    signed_in_as(client, db, "hal@example.com")
    _, challenge = pkce()
    page = authorize(client, client_id, challenge, response_mode="form_post")
    assert page.status_code == 200 and f'action="{REDIRECT}"' in page.text
    assert 'name="code"' in page.text and 'value="st-1"' in page.text


def test_login_hint_fills_the_username_and_a_different_user_must_sign_in(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    signed_in_as(client, db, "ivy@example.com")
    _, challenge = pkce()
    response = authorize(client, client_id, challenge, login_hint="jon@example.com")
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["username"] == ["jon@example.com"] and query["next"][0].startswith("/oauth2/authorize?")
    assert "code" in redirect_params(authorize(client, client_id, challenge, login_hint="IVY@example.com"))


def test_repeated_parameters_are_refused(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    signed_in_as(client, db, "kim@example.com")
    twice = client.get(f"/oauth2/authorize?client_id={client_id}&redirect_uri={REDIRECT}&redirect_uri={REDIRECT}",
                       follow_redirects=False)
    assert twice.status_code == 400 and "location" not in twice.headers
    _, challenge = pkce()
    answer = redirect_params(client.get(
        "/oauth2/authorize", follow_redirects=False,
        params=[("client_id", client_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid"),
                ("nonce", "n"), ("code_challenge", challenge), ("code_challenge", challenge),
                ("code_challenge_method", "S256")]))
    assert answer["error"] == "invalid_request" and "code_challenge" in answer["error_description"]


def test_signing_out_on_the_page_ends_what_apps_got_from_the_session(client: Any, db: Database) -> None:
    client_id, secret = make_app(db)
    signed_in_as(client, db, "lea@example.com")
    body = tokens(client, client_id, secret)
    assert client.post("/api/signout").status_code == 200
    assert refresh(client, client_id, secret, body["refresh_token"]).json()["error"] == "invalid_grant"
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    assert client.get("/oauth2/userinfo", headers=bearer).status_code == 401


def test_each_app_sign_in_is_in_the_sign_in_log(client: Any, db: Database) -> None:
    from passgate.store.tables import SignIn

    client_id, secret = make_app(db, name="Logged app")
    user_id = signed_in_as(client, db, "mo@example.com")
    tokens(client, client_id, secret)
    with db.transaction() as s:
        entry = s.scalars(select(SignIn).where(SignIn.app_id == client_id)).one()
    assert entry.user_id == user_id and entry.app_display_name == "Logged app" and entry.error_code == 0
    assert entry.authentication_method == "Temporary Access Pass" and entry.details["acr"] == "urn:passgate:acr:tap"


def test_a_stale_sign_in_marker_does_not_satisfy_prompt_login(client: Any, db: Database) -> None:
    client_id, _ = make_app(db)
    signed_in_as(client, db, "ned@example.com")
    _, challenge = pkce()
    stale = str(int((utcnow() - timedelta(hours=1)).timestamp() * 1000))
    response = authorize(client, client_id, challenge, prompt="login", passgate_fresh=stale)
    assert response.status_code == 303 and response.headers["location"].startswith("/signin?next=")


def test_step_up_from_a_pass_session_by_a_passkey_ceremony(client: Any, db: Database) -> None:
    from passgate.context import RequestContext
    from passgate.signin import sessions
    from passgate.store.tables import User

    client_id, secret = make_app(db)
    user_id, authenticator, _ = enrol(client, db, "pat@example.com")
    with db.transaction() as s:
        user = s.get(User, user_id)
        assert user is not None
        token = sessions.start(s, RequestContext(), user, "temporaryAccessPass", ["otp"],
                               utcnow() + timedelta(hours=1)).token
    client.cookies.set(sessions.COOKIE, token)
    verifier, challenge = pkce()
    # Without acr_values the pass session is enough (SSO) ...
    assert claims_of(client, tokens(client, client_id, secret)["id_token"])["acr"] == "urn:passgate:acr:tap"
    # ... with acr_values=phr the browser is sent to sign in again, as the same user, with a passkey.
    step = authorize(client, client_id, challenge, acr_values="phr")
    assert step.status_code == 303
    query = parse_qs(urlsplit(step.headers["location"]).query)
    assert query["username"] == ["pat@example.com"]
    assert "code" not in redirect_params(authorize(client, client_id, challenge, acr_values="phr", prompt="none"))
    signed, _ = passkey_sign_in(client, authenticator, "pat@example.com")
    assert signed.status_code == 200, signed.text
    answer = redirect_params(client.get(query["next"][0], follow_redirects=False))
    body = exchange(client, client_id, secret, answer["code"], verifier).json()
    claims = claims_of(client, body["id_token"])
    assert claims["acr"] == "phr" and claims["amr"] == ["swk", "user", "mfa"]


def _back_and_marker(response: Any) -> tuple[str, str]:
    assert response.status_code == 303 and response.headers["location"].startswith("/signin?next="), response.text
    back = parse_qs(urlsplit(response.headers["location"]).query)["next"][0]
    return back, parse_qs(urlsplit(back).query)["passgate_fresh"][0]


def test_a_sign_in_for_an_authorize_request_answers_it_at_once(client: Any, db: Database) -> None:
    """The sign-in page sends its way back (`next`): the answer sends the browser straight to the app with its
    code, exactly as following `next` would have (the marker is used, the app's sign-in is logged once)."""
    from passgate.store.tables import SignIn

    client_id, secret = make_app(db, name="Straight app")
    user_id, authenticator, _ = enrol(client, db, "sal@example.com")
    verifier, challenge = pkce()
    back, marker = _back_and_marker(authorize(client, client_id, challenge, prompt="login"))
    signed, _ = passkey_sign_in(client, authenticator, "sal@example.com", {"authorization": marker, "next": back})
    assert signed.status_code == 200, signed.text
    where = signed.json()["redirect"]
    assert where.startswith(REDIRECT + "?"), where
    answer = {k: v[0] for k, v in parse_qs(urlsplit(where).query).items()}
    assert answer["state"] == "st-1" and answer["iss"] == "http://localhost:8443"
    body = exchange(client, client_id, secret, answer["code"], verifier).json()
    assert claims_of(client, body["id_token"])["sub"] == user_id
    with db.transaction() as s:
        logged = s.scalars(select(SignIn).where(SignIn.app_id == client_id)).all()
    # The ceremony (Conditional Access ran for this app) and the app's sign-in with the code, once.
    assert sorted((e.details.get("protocol", ""), e.error_code, e.user_id) for e in logged) == \
        [("", 0, user_id), ("oidc", 0, user_id)]
    # The marker was used by that answer: following `next` again is no fresh sign-in for prompt=login.
    again = client.get(back, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/signin?")


def test_a_refusal_of_the_answered_request_keeps_the_sign_in(client: Any, db: Database) -> None:
    """The authorize request answered with a sign-in can still be refused (here: the app asks for a passkey's
    strength and the user signed in with a pass). The sign-in stands, the app gets its OAuth error at once, the
    refusal is logged beside the sign-in, and the marker has served its one answer."""
    from passgate.signin import sessions
    from passgate.store.tables import SignIn

    client_id, _ = make_app(db, name="Strong app")
    user_id, _, _ = enrol(client, db, "uma@example.com")  # a passkey: phishing-resistant is within reach
    secret = issue_tap(db, user_id, once=False)
    _, challenge = pkce()
    back, marker = _back_and_marker(authorize(client, client_id, challenge, acr_values="phr"))
    signed = client.post("/api/signin/tap", json={"username": "uma@example.com", "temporaryAccessPass": secret,
                                                  "authorization": marker, "next": back})
    assert signed.status_code == 200, signed.text
    assert sessions.COOKIE + "=" in signed.headers["set-cookie"]  # signed in
    where = signed.json()["redirect"]
    assert where.startswith(REDIRECT + "?"), where
    answer = {k: v[0] for k, v in parse_qs(urlsplit(where).query).items()}
    assert answer["error"] == "unmet_authentication_requirements" and answer["state"] == "st-1"
    assert "code" not in answer and counts(db)[0] == 0
    with db.transaction() as s:
        logged = sorted((e.details.get("protocol", ""), e.error_code) for e in s.scalars(select(SignIn).where(
            SignIn.app_id == client_id, SignIn.user_id == user_id)))
    assert logged[0] == ("", 0) and logged[1][0] == "oidc" and logged[1][1] != 0 and len(logged) == 2
    # Following the way back is no fresh sign-in any more: the step-up to a passkey is asked for.
    again = client.get(back, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/signin?")


def test_a_way_back_that_is_not_answered_here_is_left_to_the_browser(client: Any, db: Database) -> None:
    from passgate.store.tables import SignIn

    client_id, _ = make_app(db)
    _, authenticator, _ = enrol(client, db, "tod@example.com")
    _, challenge = pkce()
    form_post, _ = _back_and_marker(authorize(client, client_id, challenge, response_mode="form_post"))
    unknown_app = form_post.replace(client_id, "no-such-app").replace("response_mode=form_post", "")
    cases = [
        ("/mysecurityinfo", "/mysecurityinfo"),
        ("//evil.example/x", "/mysecurityinfo"),
        ("https://evil.example/x", "/mysecurityinfo"),
        (form_post, form_post),  # a form_post answer is a page the browser loads from the authorize endpoint
        (unknown_app, unknown_app),  # Passgate's error page explains it when the browser gets there
    ]
    for back, expected in cases:
        signed, _ = passkey_sign_in(client, authenticator, "tod@example.com", {"next": back})
        assert signed.status_code == 200, signed.text
        assert signed.json()["redirect"] == expected
    assert counts(db) == (0, 0, 0)
    with db.transaction() as s:
        # Only the five passkey sign-ins: nothing was logged for the requests left to the browser.
        assert [e.error_code for e in s.scalars(select(SignIn))] == [0] * 5


def test_the_fresh_sign_in_marker_is_bound_on_the_server(client: Any, db: Database) -> None:
    """Only a marker this server stored, for this browser and app, followed by a new sign-in, satisfies
    prompt=login, and only once: a forged, foreign, replayed or other app's marker proves nothing."""
    from passgate.signin import sessions

    client_id, secret = make_app(db)
    other_id, _ = make_app(db, name="Other")
    signed_in_as(client, db, "quinn@example.com")
    verifier, challenge = pkce()
    back, marker = _back_and_marker(authorize(client, client_id, challenge, prompt="login"))
    agent = client.cookies.get(sessions.AGENT_COOKIE)
    assert agent and marker not in agent and len(marker) >= 43
    # A forged marker (what the client-side timestamp allowed) does not satisfy prompt=login.
    assert _back_and_marker(client.get(back.replace(marker, "A" * 43), follow_redirects=False))
    signed_in_as(client, db, "quinn2@example.com")  # a new sign-in in this browser, after the marker
    # Another browser (another agent cookie) cannot use this browser's marker ...
    def agent_cookie(value: str) -> None:
        client.cookies.delete(sessions.AGENT_COOKIE)
        client.cookies.set(sessions.AGENT_COOKIE, value)

    agent_cookie("another-browser")
    _back_and_marker(client.get(back, follow_redirects=False))
    agent_cookie(agent)
    # ... nor can another app's request.
    foreign = authorize(client, other_id, challenge, prompt="login", passgate_fresh=marker)
    _back_and_marker(foreign)
    # The browser that got it, after its new sign-in: the code, once.
    answer = redirect_params(client.get(back, follow_redirects=False))
    assert exchange(client, client_id, secret, answer["code"], verifier).status_code == 200
    _back_and_marker(client.get(back, follow_redirects=False))  # replayed: sign in again
    # A marker whose pending authorization has expired (an old bookmark) proves nothing either.
    from passgate.store.tables import PendingAuthorization

    back, marker = _back_and_marker(authorize(client, client_id, challenge, prompt="login"))
    signed_in_as(client, db, "quinn3@example.com")
    with db.transaction() as s:
        s.execute(update(PendingAuthorization).values(expires_at=utcnow() - timedelta(seconds=1)))
    _back_and_marker(client.get(back, follow_redirects=False))


def test_a_browser_without_an_agent_cookie_gets_one_with_its_marker(client: Any, db: Database) -> None:
    from passgate.signin import sessions

    client_id, _ = make_app(db)
    _, challenge = pkce()
    response = authorize(client, client_id, challenge)
    _back_and_marker(response)
    assert sessions.AGENT_COOKIE in response.headers["set-cookie"]


def test_refused_authorize_requests_are_in_the_sign_in_log(client: Any, db: Database) -> None:
    from passgate.core import errors
    from passgate.store.tables import SignIn

    client_id, _ = make_app(db, name="Logged app")
    user_id = signed_in_as(client, db, "rae@example.com")
    _, challenge = pkce()
    headers = {"user-agent": "refusal-test/1.0"}
    cases = [
        ({"client_id": "not-registered"}, errors.APP_NOT_FOUND, None),
        ({"redirect_uri": "http://localhost:9000/other"}, errors.REDIRECT_URI_MISMATCH, "Logged app"),
        ({"code_challenge": None}, errors.PKCE_REQUIRED, "Logged app"),
        ({"scope": "openid admin"}, errors.INVALID_SCOPE, "Logged app"),
        ({"acr_values": "phrh"}, errors.AUTHENTICATION_STRENGTH_UNREACHABLE, "Logged app"),
    ]
    for extra, code, app_name in cases:
        correlation = str(uuid.uuid4())
        params = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
                  "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
        response = client.get("/oauth2/authorize", params={k: v for k, v in params.items() if v is not None},
                              headers={**headers, "client-request-id": correlation}, follow_redirects=False)
        assert response.status_code in (302, 400, 404), response.status_code
        with db.transaction() as s:
            entry = s.scalars(select(SignIn).where(SignIn.correlation_id == correlation)).one()
        assert entry.error_code == code.number, (code.name, entry.error_code, entry.failure_reason)
        assert entry.app_display_name == app_name and entry.user_id == user_id
        assert entry.app_id == (client_id if app_name else None)
        assert entry.user_agent == "refusal-test/1.0" and entry.ip_address and entry.details["protocol"] == "oidc"
    assert counts(db) == (0, 0, 0)


def test_app_tokens_introspect_while_the_app_lives(client: Any, db: Database) -> None:
    from passgate.context import RequestContext
    from passgate.oidc import clients
    from passgate.oidc import tokens as app_tokens
    from passgate.store.tables import App

    with db.transaction() as s:
        robot = clients.create_app_registration(s, RequestContext(), "Robot", ["User.Read.All"])
        admin = clients.create_app_registration(s, RequestContext(), "App admin", ["Application.ReadWrite.All"])
        bystander = clients.create_app_registration(s, RequestContext(), "Bystander", ["User.Read.All"])
        robot_id, robot_secret = robot.app.app_id, robot.client_secret
        admin_auth = {"client_id": admin.app.app_id, "client_secret": admin.client_secret}
        bystander_auth = {"client_id": bystander.app.app_id, "client_secret": bystander.client_secret}
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": robot_id,
                                               "client_secret": robot_secret}).json()["access_token"]
    own = client.post("/oauth2/introspect", data={"client_id": robot_id, "client_secret": robot_secret,
                                                  "token": token}).json()
    assert own["active"] is True and own["client_id"] == robot_id and own["roles"] == ["User.Read.All"]
    assert own["exp"] > own["iat"] and own["aud"] == "http://localhost:8443/graph" and own["token_type"] == "Bearer"
    assert client.post("/oauth2/introspect", data={**admin_auth, "token": token}).json()["active"] is True
    assert client.post("/oauth2/introspect", data={**bystander_auth, "token": token}).json() == {"active": False}
    # Expired: inactive (no leeway).
    services = client.app.state.services
    with db.transaction() as s:
        app = s.scalar(select(App).where(App.app_id == robot_id))
        assert app is not None
        old = app_tokens.app_access_token(services.keys.ring(RequestContext()), services.settings, app,
                                          utcnow() - timedelta(hours=2), 60)
    assert client.post("/oauth2/introspect", data={**admin_auth, "token": old}).json() == {"active": False}
    # The app is deleted: its tokens are no longer active.
    with db.transaction() as s:
        s.delete(s.scalar(select(App).where(App.app_id == robot_id)))
    assert client.post("/oauth2/introspect", data={**admin_auth, "token": token}).json() == {"active": False}
