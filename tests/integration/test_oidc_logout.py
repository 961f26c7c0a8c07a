"""OpenID Connect logout: front-channel frames and back-channel logout tokens sent to a real HTTP receiver,
the confirmation of /oauth2/logout without id_token_hint, and what apps are (and are not) told."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from passgate.store.db import Database

from .oidc_helpers import (
    LOGOUT,
    Receiver,
    authorize,
    claims_of,
    make_app,
    pkce,
    redirect_params,
    tokens,
    verify_logout_token,
)
from .test_signin_support import signed_in_as

ISSUER = "http://localhost:8443"


def live(client: Any, client_id: str) -> bool:
    """Whether the browser's session still signs it in silently."""
    _, challenge = pkce()
    return "code" in redirect_params(authorize(client, client_id, challenge, prompt="none"))


def test_discovery_advertises_front_and_back_channel_logout(client: Any) -> None:
    doc = client.get("/.well-known/openid-configuration").json()
    for name in ("frontchannel_logout_supported", "frontchannel_logout_session_supported",
                 "backchannel_logout_supported", "backchannel_logout_session_supported"):
        assert doc[name] is True, name


def test_logout_frames_front_channel_apps_and_posts_signed_logout_tokens(client: Any, db: Database) -> None:
    with Receiver() as app_server:
        wiki_id, wiki_secret = make_app(db, name="Wiki", logout_url=app_server.url("/fc?tenant=1"),
                                        backchannel_logout_uri=app_server.url("/bc"))
        chat_id, chat_secret = make_app(db, name="Chat", backchannel_logout_uri=app_server.url("/bc-chat"))
        # Registered for logout, but never signed in from this session: not told.
        idle_id, _ = make_app(db, name="Idle", logout_url=app_server.url("/fc-idle"),
                              backchannel_logout_uri=app_server.url("/bc-idle"))
        user_id = signed_in_as(client, db, "una@example.com")
        wiki = tokens(client, wiki_id, wiki_secret)
        tokens(client, chat_id, chat_secret)
        sid = claims_of(client, wiki["id_token"])["sid"]

        bye = client.get("/oauth2/logout", follow_redirects=False, params={
            "id_token_hint": wiki["id_token"], "post_logout_redirect_uri": LOGOUT, "state": "s1"})
        # Front-channel: the signed-out page frames the app's logout URI with iss and sid, then continues.
        assert bye.status_code == 200, bye.text
        assert f'href="{LOGOUT}?state=s1"' in bye.text and "data-auto-continue" in bye.text
        frame = bye.text.split('<iframe class="logout-frame" src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        query = parse_qs(urlsplit(frame).query)
        assert frame.startswith(app_server.url("/fc?")) and query == {"tenant": ["1"], "iss": [ISSUER], "sid": [sid]}
        assert bye.text.count("<iframe") == 1
        csp = bye.headers["content-security-policy"]
        assert f"frame-src {app_server.base};" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self';" in csp
        # Back-channel: one signed logout token per app that got a code from the session.
        app_server.wait(2)
        posted = {path: body for method, path, body in app_server.requests if method == "POST"}
        assert set(posted) == {"/bc", "/bc-chat"}
        jwks = client.get("/oauth2/jwks").json()
        for path, audience in (("/bc", wiki_id), ("/bc-chat", chat_id)):
            claims = verify_logout_token(jwks, posted[path]["logout_token"][0], ISSUER, audience)
            assert claims["sid"] == sid and claims["sub"] == user_id and claims["exp"] - claims["iat"] <= 120
        assert not any(path.startswith(("/fc", "/bc-idle")) for _, path, _ in app_server.requests)
        assert not live(client, idle_id)
        # A second sign-out of the same (ended) session tells nobody again.
        before = len(app_server.requests)
        again = client.get("/oauth2/logout", params={"id_token_hint": wiki["id_token"]}, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/"
        time.sleep(0.2)
        assert len(app_server.requests) == before


def test_a_slow_or_broken_back_channel_neither_holds_up_nor_undoes_the_sign_out(
        client: Any, db: Database, caplog: Any) -> None:
    with Receiver(delay=5.0) as slow, Receiver(status=500) as broken:
        slow_id, slow_secret = make_app(db, name="Slow", backchannel_logout_uri=slow.url("/bc"))
        broken_id, broken_secret = make_app(db, name="Broken", backchannel_logout_uri=broken.url("/bc"))
        signed_in_as(client, db, "vic@example.com")
        slow_tokens = tokens(client, slow_id, slow_secret)
        tokens(client, broken_id, broken_secret)
        caplog.set_level(logging.WARNING, logger="passgate.oidc.logout")
        started = time.monotonic()
        bye = client.get("/oauth2/logout", params={"id_token_hint": slow_tokens["id_token"]}, follow_redirects=False)
        elapsed = time.monotonic() - started
        assert bye.status_code == 303 and elapsed < 4.5, elapsed
        assert not live(client, slow_id) and not live(client, broken_id)
        text = caplog.text
        assert f"app {slow_id}" in text and "TimeoutError" in text
        assert f"app {broken_id}" in text and "HTTP 500" in text
        token = slow.requests[0][2]["logout_token"][0]
        assert token not in text


def test_headless_sign_out_tells_the_apps_too(client: Any, db: Database) -> None:
    with Receiver() as app_server:
        app_id, secret = make_app(db, logout_url=app_server.url("/fc"), backchannel_logout_uri=app_server.url("/bc"))
        signed_in_as(client, db, "wes@example.com")
        sid = claims_of(client, tokens(client, app_id, secret)["id_token"])["sid"]
        answer = client.post("/api/signout")
        assert answer.status_code == 200
        [front] = answer.json()["frontChannelLogoutUris"]
        assert parse_qs(urlsplit(front).query) == {"iss": [ISSUER], "sid": [sid]}
        app_server.wait(1)
        method, path, body = app_server.requests[0]
        assert (method, path) == ("POST", "/bc")
        claims = verify_logout_token(client.get("/oauth2/jwks").json(), body["logout_token"][0], ISSUER, app_id)
        assert claims["sid"] == sid


def test_logout_without_id_token_hint_asks_first_and_needs_a_same_origin_post(client: Any, db: Database) -> None:
    app_id, _ = make_app(db, name="Portal")
    signed_in_as(client, db, "xia@example.com")
    params = {"client_id": app_id, "post_logout_redirect_uri": LOGOUT, "state": "s2"}
    asked = client.get("/oauth2/logout", params=params, follow_redirects=False)
    assert asked.status_code == 200 and "Sign out?" in asked.text and "Portal" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and f'value="{LOGOUT}"' in asked.text
    # The form may lead only here and to the app's registered post-logout URI.
    assert "form-action 'self' http://localhost:9000;" in asked.headers["content-security-policy"]
    assert live(client, app_id)
    # A confirmation posted from another site (a link or form elsewhere) only asks again.
    forged = client.post("/oauth2/logout", data={**params, "confirm": "yes"}, follow_redirects=False,
                         headers={"origin": "https://evil.example"})
    assert forged.status_code == 200 and "Sign out?" in forged.text
    cross_site = client.post("/oauth2/logout", data={**params, "confirm": "yes"}, follow_redirects=False,
                             headers={"origin": "", "sec-fetch-site": "cross-site"})
    assert cross_site.status_code == 200 and "Sign out?" in cross_site.text
    assert client.post("/oauth2/logout", data=params, follow_redirects=False).status_code == 200  # no confirm
    assert live(client, app_id)
    # An unregistered return address is refused before anything happens.
    refused = client.get("/oauth2/logout", params={**params, "post_logout_redirect_uri": "http://localhost:9000/x"},
                         follow_redirects=False)
    assert refused.status_code == 400 and "900028" in refused.text and live(client, app_id)
    # Confirmed on Passgate's own page: signed out, back to the app.
    done = client.post("/oauth2/logout", data={**params, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 302 and done.headers["location"] == f"{LOGOUT}?state=s2"
    assert not live(client, app_id)


def test_sign_out_button_posts_to_logout_and_lands_on_sign_in(client: Any, db: Database) -> None:
    app_id, _ = make_app(db)
    signed_in_as(client, db, "yan@example.com")
    page = client.get("/mysecurityinfo")
    assert '<form method="post" action="/oauth2/logout"' in page.text
    done = client.post("/oauth2/logout", data={"confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert not live(client, app_id)
