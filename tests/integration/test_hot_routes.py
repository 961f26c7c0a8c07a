"""The sign-in's four hot routes are served ahead of FastAPI's stack (web/hot.py) and answer exactly as FastAPI
answered them: the same app with its hot-route table emptied is the reference, request for request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from passgate.app import create_app
from passgate.config import Settings, load_settings
from passgate.store.db import Database
from tests.integration.oidc_helpers import REDIRECT, make_app, pkce
from tests.integration.test_signin_support import enrol, passkey_sign_in

ORIGIN = "http://localhost:8443"
REQUEST_ID = "0b6c1a52-7d1e-4c55-9a57-1d2f3a4b5c6d"  # fixed, so that error bodies can be compared whole


@pytest.fixture
def pair(settings: Settings, db: Database) -> Iterator[tuple[TestClient, TestClient]]:
    hot, plain = create_app(settings, db), create_app(settings, db)
    plain.hot_routes.clear()
    headers = {"origin": ORIGIN, "client-request-id": REQUEST_ID}
    with TestClient(hot, base_url=ORIGIN, headers=headers) as a, \
            TestClient(plain, base_url=ORIGIN, headers=headers) as b:
        yield a, b


_DATE = re.compile(rb'"date":"[0-9T:-]+"')  # an error's time, to the second


def _same(hot: Any, plain: Any) -> None:
    assert hot.status_code == plain.status_code, (hot.text, plain.text)
    assert _DATE.sub(b"", hot.content) == _DATE.sub(b"", plain.content)
    assert hot.headers.multi_items() == plain.headers.multi_items()


def _cookie_shape(response: Any) -> list[tuple[str, str]]:
    """Each Set-Cookie's name and attributes; the value is random."""
    out = []
    for value in response.headers.get_list("set-cookie"):
        name_value, _, attributes = value.partition(";")
        out.append((name_value.split("=")[0], attributes))
    return out


ERRORS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/signin/passkey/options", {"content": b"not json"}),
    ("POST", "/api/signin/passkey/options", {"json": {"username": 5}}),
    ("POST", "/api/signin/passkey/options", {"json": {}, "headers": {"origin": "http://evil.localhost:8443"}}),
    ("POST", "/api/signin/passkey", {"content": b"[1"}),
    ("POST", "/api/signin/passkey", {"json": {"credential": {"id": "x"}}}),
    ("POST", "/oauth2/token", {"data": {"grant_type": "nope"}}),
    ("POST", "/oauth2/token", {}),
    ("POST", "/oauth2/token", {"data": {"grant_type": "authorization_code", "code": "x", "client_id": "y"}}),
    ("GET", "/oauth2/authorize", {"params": {"client_id": "nobody", "redirect_uri": REDIRECT}}),
    ("GET", "/oauth2/authorize", {"params": {"client_id": "nobody"}, "headers": {"accept": "text/html"}}),
    ("POST", "/oauth2/authorize", {"data": {"client_id": "nobody"}}),
    # Not hot: other methods, a trailing slash, HEAD, an unknown path under a hot prefix.
    ("PUT", "/oauth2/token", {}),
    ("GET", "/oauth2/token", {}),
    ("POST", "/oauth2/token/", {"data": {"grant_type": "nope"}}),
    ("HEAD", "/oauth2/authorize", {}),
    ("GET", "/api/signin/passkey/options", {}),
    ("POST", "/api/signin/passkey/optionsx", {"json": {}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ERRORS)
def test_refusals_are_answered_as_fastapi_answered_them(pair: tuple[TestClient, TestClient], method: str, path: str,
                                                       kwargs: dict[str, Any]) -> None:
    hot, plain = pair
    _same(hot.request(method, path, follow_redirects=False, **kwargs),
          plain.request(method, path, follow_redirects=False, **kwargs))


def test_an_authorize_redirect_is_answered_as_before(pair: tuple[TestClient, TestClient], db: Database) -> None:
    client_id, _ = make_app(db)
    _, challenge = pkce()
    params = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
              "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"}
    hot, plain = pair
    a = hot.get("/oauth2/authorize", params=params, follow_redirects=False)
    b = plain.get("/oauth2/authorize", params=params, follow_redirects=False)
    assert a.status_code == b.status_code == 303
    assert [k for k, _ in a.headers.multi_items()] == [k for k, _ in b.headers.multi_items()]
    assert _cookie_shape(a) == _cookie_shape(b) and _cookie_shape(a)
    assert a.headers["location"].split("passgate_fresh")[0] == b.headers["location"].split("passgate_fresh")[0]
    # An error for the app (no PKCE) goes to the app, the same way.
    del params["code_challenge"], params["code_challenge_method"]
    _same(hot.get("/oauth2/authorize", params=params, follow_redirects=False),
          plain.get("/oauth2/authorize", params=params, follow_redirects=False))


def test_passkey_options_answer_as_before(pair: tuple[TestClient, TestClient]) -> None:
    hot, plain = pair
    a = hot.post("/api/signin/passkey/options", json={})
    b = plain.post("/api/signin/passkey/options", json={})
    assert a.status_code == b.status_code == 200
    assert [k for k, _ in a.headers.multi_items()] == [k for k, _ in b.headers.multi_items()]
    assert a.headers["content-type"] == "application/json"
    assert _cookie_shape(a) == _cookie_shape(b) and _cookie_shape(a)  # the agent cookie the challenge is bound to
    shape = {k: type(v) for k, v in a.json().items()}
    assert shape == {k: type(v) for k, v in b.json().items()} and "challenge" in shape


def test_a_passkey_sign_in_is_answered_as_before(pair: tuple[TestClient, TestClient], db: Database) -> None:
    _, authenticator, _ = enrol(pair[0], db, "ada@example.com")
    a, b = (passkey_sign_in(client, authenticator, "ada@example.com")[0] for client in pair)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content == b'{"userPrincipalName":"ada@example.com","redirect":"/mysecurityinfo"}'
    assert [k for k, _ in a.headers.multi_items()] == [k for k, _ in b.headers.multi_items()]
    assert _cookie_shape(a) == _cookie_shape(b) and _cookie_shape(a)  # the session cookie


@pytest.mark.parametrize("path", ["/oauth2/jwks", "/.well-known/jwks.json"])
def test_the_signing_keys_are_answered_as_before(pair: tuple[TestClient, TestClient], path: str) -> None:
    hot, plain = pair
    a, b = hot.get(path), plain.get(path)
    assert a.status_code == 200 and a.json()["keys"]
    _same(a, b)


def test_hot_requests_skip_fastapi_stack(settings: Settings, db: Database) -> None:
    seen: list[str] = []

    class Witness:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(f"{scope['method']} {scope['path']}")
            await self.app(scope, receive, send)

    app = create_app(settings, db)
    app.add_middleware(Witness)
    with TestClient(app, base_url=ORIGIN, headers={"origin": ORIGIN}) as client:
        assert client.post("/oauth2/token", data={"grant_type": "nope"}).status_code == 400
        assert client.post("/api/signin/passkey/options", json={}).status_code == 200
        assert client.get("/oauth2/jwks").status_code == 200
        assert client.put("/oauth2/token").status_code == 405
    assert seen == ["PUT /oauth2/token"]


@pytest.fixture
def broken(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two apps (hot routes, and none) on a database without tables: every query fails unexpectedly."""
    url = f"sqlite:///{tmp_path}/no-tables.db"
    settings = load_settings(database_url=url, data_dir=tmp_path, origins=[ORIGIN], rp_id="localhost")
    db = Database(url)
    hot, plain = create_app(settings, db), create_app(settings, db)
    plain.hot_routes.clear()
    yield hot, plain
    db.dispose()


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("POST", "/oauth2/token", {"data": {"grant_type": "authorization_code", "code": "x", "client_id": "y",
                                        "client_secret": "z", "redirect_uri": REDIRECT, "code_verifier": "v" * 43}}),
    ("POST", "/api/signin/passkey/options", {"json": {"username": "someone@example.com"}}),
    ("GET", "/oauth2/authorize", {"params": {"client_id": "nobody", "redirect_uri": REDIRECT}}),
])
def test_an_unexpected_failure_is_a_logged_500_then_reaches_the_server(
        broken: tuple[Any, Any], caplog: pytest.LogCaptureFixture, method: str, path: str,
        kwargs: dict[str, Any]) -> None:
    answers = []
    for app in broken:
        caplog.clear()
        headers = {"origin": ORIGIN, "client-request-id": REQUEST_ID}
        with TestClient(app, base_url=ORIGIN, headers=headers, raise_server_exceptions=False) as client:
            answer = client.request(method, path, follow_redirects=False, **kwargs)
        assert answer.status_code == 500
        assert answer.json()["error"]["innerError"]["passgateCode"] == 999999
        assert [r.getMessage() for r in caplog.records if r.name == "passgate"] == [
            f"unexpected error on {method} {path}"]
        answers.append(answer)
        with TestClient(app, base_url=ORIGIN, headers=headers) as client, \
                pytest.raises(Exception, match="no such table"):  # the server sees it too, and logs it
            client.request(method, path, follow_redirects=False, **kwargs)
    _same(*answers)
