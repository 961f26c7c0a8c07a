"""Shared steps of the OpenID Connect tests: an app registration, PKCE, authorize, code exchange."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.context import RequestContext
from passgate.oidc import clients
from passgate.store.db import Database

REDIRECT = "http://localhost:9000/cb"
LOGOUT = "http://localhost:9000/bye"


def make_app(db: Database, *, public: bool = False, name: str = "Web app", logout_url: str | None = None,
             backchannel_logout_uri: str | None = None) -> tuple[str, str]:
    """(client_id, client_secret) of an app with one redirect URI; public apps get no secret."""
    with db.transaction() as s:
        new = clients.create_app_registration(
            s, RequestContext(), name, [], web_redirect_uris=[] if public else [REDIRECT],
            public_redirect_uris=[REDIRECT] if public else [], is_public=public, with_secret=not public,
            logout_url=logout_url, backchannel_logout_uri=backchannel_logout_uri,
        )
        new.app.post_logout_redirect_uris = [LOGOUT]
        return new.app.app_id, new.client_secret


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(client: Any, client_id: str, challenge: str | None, **extra: Any) -> Any:
    params: dict[str, Any] = {
        "client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "openid profile email offline_access", "state": "st-1", "nonce": "n-1",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    params = {k: v for k, v in params.items() if v is not None}
    return client.get("/oauth2/authorize", params=params, follow_redirects=False)


def redirect_params(response: Any) -> dict[str, str]:
    assert response.status_code == 302, (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_for(client: Any, client_id: str, challenge: str, **extra: Any) -> str:
    answer = redirect_params(authorize(client, client_id, challenge, **extra))
    assert "code" in answer, answer
    assert answer["state"] == "st-1" and answer["iss"] == "http://localhost:8443"
    return answer["code"]


def exchange(client: Any, client_id: str, secret: str | None, code: str, verifier: str | None) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id}
    if secret:
        form["client_secret"] = secret
    if verifier:
        form["code_verifier"] = verifier
    return client.post("/oauth2/token", data=form)


def refresh(client: Any, client_id: str, secret: str | None, token: str) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    if secret:
        form["client_secret"] = secret
    return client.post("/oauth2/token", data=form)


def tokens(client: Any, client_id: str, secret: str | None, **extra: Any) -> dict[str, Any]:
    verifier, challenge = pkce()
    response = exchange(client, client_id, secret, code_for(client, client_id, challenge, **extra), verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def claims_of(client: Any, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(client.get("/oauth2/jwks").json())
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


class Receiver:
    """A real HTTP server on 127.0.0.1 standing in for an app's logout endpoints: it records every request
    (method, path with query, form body) and answers after `delay` seconds with `status`."""

    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = parse_qs(self.rfile.read(length).decode()) if length else {}
                outer.requests.append((self.command, self.path, body))
                outer.arrived.set()
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/html")
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting (the slow app of a timeout test)

            do_GET = do_POST = _record

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def wait(self, count: int = 1, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, f"{len(self.requests)} of {count} requests arrived"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_logout_token(jwks: dict[str, Any], token: str, issuer: str, client_id: str) -> dict[str, Any]:
    """Back-Channel Logout 1.0 §2.4 checks, as an app makes them, against the published keys."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
        iat={"essential": True}, exp={"essential": True}, jti={"essential": True}, sid={"essential": True},
        sub={"essential": True}, events={"essential": True},
    ).validate(decoded.claims)
    claims = dict(decoded.claims)
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims
    return claims
