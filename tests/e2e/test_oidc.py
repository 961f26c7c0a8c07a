"""A real OpenID Connect client (Authlib's OAuth2Client) signs in through `passgate serve` in Chromium with a
passkey: discovery, code + PKCE, ID token verified against the JWKS, userinfo, refresh rotation and reuse
detection, SSO to a second app, prompt=login and max_age=0 forcing a new ceremony, and logout."""

from __future__ import annotations

import secrets
import socket
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.integration.oidc_helpers import Receiver, verify_logout_token

from .conftest import DEVICE_BOUND, Browser, Server
from .test_pages import add_passkey, new_user, on_security_info, sign_in_with_tap

pytestmark = pytest.mark.e2e
SCOPE = "openid profile email offline_access"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RelyingParty:
    """Where the browser is sent back to. No server runs there: the request the browser makes is recorded
    (page.route does not see requests reached by a redirect, so requests are watched instead)."""

    def __init__(self, b: Browser) -> None:
        self.b = b
        self.base = f"http://localhost:{_port()}"
        self.callback = f"{self.base}/cb"
        self.bye = f"{self.base}/bye"
        self.seen: list[str] = []
        b.page.on("request", self._capture)

    def _capture(self, request: Any) -> None:
        if request.url.startswith(self.base + "/"):
            self.seen.append(request.url)

    def visit(self, url: str) -> dict[str, str]:
        """Open `url` and wait until the browser comes back here (after whatever sign-in the page does)."""
        before = len(self.seen)
        try:
            self.b.page.goto(url)
        except PlaywrightError as error:  # the navigation ends at the app, where nothing listens
            assert "ERR_CONNECTION_REFUSED" in str(error), error
        for _ in range(150):
            if len(self.seen) > before:
                break
            self.b.page.wait_for_timeout(100)
        assert len(self.seen) > before, f"the browser did not come back to the app (at {self.b.page.url})"
        # Leave Chromium's connection-refused page at once: it reloads such pages by itself after a while (on a
        # loaded machine, before the next step), which would count as a second visit.
        for _ in range(50):
            try:
                self.b.page.goto("about:blank")
                break
            except PlaywrightError as error:  # the error page was still being committed: leave it once it is
                assert "interrupted by another navigation" in str(error), error
        arrived = self.seen[before:]
        assert len(set(arrived)) == 1, f"the browser came back more than once: {arrived}"
        del self.seen[before + 1:]
        return {k: v[0] for k, v in parse_qs(urlsplit(self.seen[-1]).query).items()}


class Ceremonies:
    """Counts passkey sign-ins the browser makes (POST /api/signin/passkey)."""

    def __init__(self, b: Browser) -> None:
        self.count = 0
        b.page.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/signin/passkey"):
            self.count += 1


def verify_id_token(token: str, discovery: dict[str, Any], client_id: str, nonce: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"], timeout=30).json())
    decoded = jwt.decode(token, keys, algorithms=discovery["id_token_signing_alg_values_supported"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]}, aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce}, exp={"essential": True}, sub={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


def test_oidc_sign_in_with_a_passkey(server: Server, make_browser: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http://localhost in tests only
    user, tap = new_user(server, "oidc")
    upn = user["userPrincipalName"]
    b = make_browser()
    rp = RelyingParty(b)
    ceremonies = Ceremonies(b)
    b.add_authenticator(DEVICE_BOUND)
    b.goto("/")
    sign_in_with_tap(b.page, upn, tap)
    on_security_info(b)
    add_passkey(b.page, "Laptop")
    # Leave without signing out on the page (its passkey autofill would sign straight back in): a browser
    # without a session cookie, as a new visitor is.
    b.page.goto("about:blank")
    b.context.clear_cookies()

    # App one, registered from a script; app two through Graph with a post-logout URI.
    app1 = server.cli("apps", "add", "--name", "Wiki", "--redirect-uri", rp.callback)
    admin = server.cli("apps", "add", "--name", "e2e app admin", "--permission", "Application.ReadWrite.All")
    admin_token = httpx.post(f"{server.base_url}/oauth2/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": admin["appId"], "client_secret": admin["clientSecret"],
    }).json()["access_token"]
    app2 = server.graph("POST", "/applications", {
        "displayName": "Chat", "web": {"redirectUris": [rp.callback]}, "postLogoutRedirectUris": [rp.bye],
    }, admin_token)
    app2_secret = server.graph("POST", f"/applications/{app2['id']}/addPassword", {}, admin_token)["secretText"]

    discovery = httpx.get(f"{server.base_url}/.well-known/openid-configuration", timeout=30).json()
    assert discovery["issuer"] == server.base_url and discovery["code_challenge_methods_supported"] == ["S256"]

    def client_for(client_id: str, secret: str) -> OAuth2Client:
        return OAuth2Client(client_id, secret, scope=SCOPE, redirect_uri=rp.callback,
                            code_challenge_method="S256", token_endpoint=discovery["token_endpoint"])

    def authorize_url(oauth: OAuth2Client, verifier: str, nonce: str, **extra: str) -> str:
        url, _state = oauth.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier,
                                                     nonce=nonce, **extra)
        return str(url)

    # -- app one: code + PKCE, the passkey ceremony happens in the browser --------------------
    oauth = client_for(app1["appId"], app1["clientSecret"])
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    # No session: the sign-in page, whose passkey autofill request the authenticator answers at once.
    assert "code" in rp.visit(authorize_url(oauth, verifier, nonce))
    assert ceremonies.count == 1 and rp.seen[-1].startswith(rp.callback + "?")
    token = oauth.fetch_token(authorization_response=rp.seen[-1], code_verifier=verifier)
    claims = verify_id_token(token["id_token"], discovery, app1["appId"], nonce)
    assert claims["sub"] == user["id"] and claims["preferred_username"] == upn
    assert claims["amr"] == ["swk", "user", "mfa"] and claims["acr"] == "phr"
    first_auth_time = claims["auth_time"]
    info = oauth.get(discovery["userinfo_endpoint"])
    assert info.status_code == 200 and info.json()["sub"] == user["id"]

    # -- refresh: rotated; the old one coming back revokes the family -------------------------
    old_refresh = token["refresh_token"]
    rotated = oauth.refresh_token(discovery["token_endpoint"], refresh_token=old_refresh)
    assert rotated["refresh_token"] != old_refresh
    reused = httpx.post(discovery["token_endpoint"], timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": old_refresh, "client_id": app1["appId"],
        "client_secret": app1["clientSecret"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    newest = httpx.post(discovery["token_endpoint"], timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": rotated["refresh_token"], "client_id": app1["appId"],
        "client_secret": app1["clientSecret"]})
    assert newest.json()["error"] == "invalid_grant"
    assert oauth.get(discovery["userinfo_endpoint"]).status_code == 401

    # -- SSO: app two signs in from the same session, no second ceremony ----------------------
    oauth2 = client_for(app2["appId"], app2_secret)
    verifier2, nonce2 = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    answer = rp.visit(authorize_url(oauth2, verifier2, nonce2))
    assert "code" in answer and ceremonies.count == 1
    token2 = oauth2.fetch_token(authorization_response=rp.seen[-1], code_verifier=verifier2)
    claims2 = verify_id_token(token2["id_token"], discovery, app2["appId"], nonce2)
    assert claims2["sid"] == claims["sid"] and claims2["auth_time"] == first_auth_time

    # -- prompt=login and max_age=0 each force a new ceremony ---------------------------------
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        count = ceremonies.count
        verifier3, nonce3 = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        assert "code" in rp.visit(authorize_url(oauth2, verifier3, nonce3, **extra))
        assert ceremonies.count == count + 1
        fresh = oauth2.fetch_token(authorization_response=rp.seen[-1], code_verifier=verifier3)
        assert verify_id_token(fresh["id_token"], discovery, app2["appId"], nonce3)["auth_time"] >= first_auth_time

    # -- logout with id_token_hint alone ends the session for every app -----------------------
    bye = rp.visit(discovery["end_session_endpoint"] + "?" + urlencode({
        "id_token_hint": token2["id_token"], "post_logout_redirect_uri": rp.bye, "state": "bye-1"}))
    assert bye == {"state": "bye-1"}
    assert rp.seen[-1] == f"{rp.bye}?state=bye-1"
    verifier4, nonce4 = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    silent = rp.visit(authorize_url(oauth, verifier4, nonce4, prompt="none"))
    assert silent["error"] == "login_required"
    refused = httpx.post(discovery["token_endpoint"], timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": token2["refresh_token"], "client_id": app2["appId"],
        "client_secret": app2_secret})
    assert refused.json()["error"] == "invalid_grant"


def test_sign_out_tells_apps_in_frames_and_by_back_channel_and_asks_without_a_hint(
        server: Server, make_browser: Any, monkeypatch: Any) -> None:
    """Signing out on the Security info page frames the app's front-channel logout URI (iss, sid) on the
    signed-out page and POSTs it a logout token; /oauth2/logout without id_token_hint asks first, and after the
    confirmation the page frames the apps, then continues to the app."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    discovery = httpx.get(f"{server.base_url}/.well-known/openid-configuration", timeout=30).json()
    assert discovery["frontchannel_logout_session_supported"] and discovery["backchannel_logout_session_supported"]
    with Receiver() as app_server:
        b = make_browser()
        rp = RelyingParty(b)
        app = server.cli("apps", "add", "--name", "Front", "--redirect-uri", rp.callback,
                         "--logout-url", app_server.url("/fc"), "--backchannel-logout-uri", app_server.url("/bc"))
        oauth = OAuth2Client(app["appId"], app["clientSecret"], scope=SCOPE, redirect_uri=rp.callback,
                             code_challenge_method="S256", token_endpoint=discovery["token_endpoint"])

        def sign_in_to_the_app(upn: str, tap: str) -> str:
            b.goto("/")
            sign_in_with_tap(b.page, upn, tap)
            on_security_info(b)
            verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
            url, _ = oauth.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier,
                                                   nonce=nonce)
            assert "code" in rp.visit(str(url))  # SSO from the page's session, no ceremony
            token = oauth.fetch_token(authorization_response=rp.seen[-1], code_verifier=verifier)
            return str(verify_id_token(token["id_token"], discovery, app["appId"], nonce)["sid"])

        def told(sid: str, since: int) -> None:
            """The frame's GET and the logout token's POST arrived (in either order) after request `since`."""
            for _ in range(100):
                got = app_server.requests[since:]
                frames = [path for method, path, _ in got if method == "GET" and "sid=" in path]
                posts = [(path, body) for method, path, body in got if method == "POST"]
                if frames and posts:
                    break
                b.page.wait_for_timeout(100)
            assert len(frames) == 1 and len(posts) == 1, got
            front = urlsplit(frames[0])
            assert front.path == "/fc" and parse_qs(front.query) == {"iss": [server.base_url], "sid": [sid]}
            assert posts[0][0] == "/bc"
            jwks = httpx.get(discovery["jwks_uri"], timeout=30).json()
            claims = verify_logout_token(jwks, posts[0][1]["logout_token"][0], server.base_url, app["appId"])
            assert claims["sid"] == sid

        # -- the Sign out button on Security info ------------------------------------------------
        user, tap = new_user(server, "frontchannel")
        sid = sign_in_to_the_app(user["userPrincipalName"], tap)
        b.goto("/mysecurityinfo")
        b.page.get_by_role("button", name="Sign out").click()
        expect(b.page.get_by_role("heading", name="You are signed out")).to_be_visible()
        told(sid, 0)
        expect(b.page.get_by_role("link", name="Sign in again")).to_be_visible()

        # -- /oauth2/logout without id_token_hint: a confirmation page, then frames, then the app -------
        user2, tap2 = new_user(server, "confirm")
        sid2 = sign_in_to_the_app(user2["userPrincipalName"], tap2)
        back = app_server.url("/fc")
        b.page.goto(discovery["end_session_endpoint"] + "?" + urlencode({
            "client_id": app["appId"], "post_logout_redirect_uri": back, "state": "s-2"}))
        expect(b.page.get_by_role("heading", name="Sign out?")).to_be_visible()
        assert len(app_server.requests) == 2  # nothing happened yet
        b.page.get_by_role("button", name="Sign out").click()
        expect(b.page).to_have_url(f"{back}?state=s-2")
        told(sid2, 2)
        silent = rp.visit(oauth.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48),
            nonce="n", prompt="none")[0])
        assert silent["error"] == "login_required"
