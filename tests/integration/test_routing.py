"""The OIDC and sign-in API routes are the app's own routes rather than included routers (a per-request
saving): what a wrong method, a missing path or a trailing slash gets must not change."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/signin/passkey"), ("PUT", "/oauth2/token"), ("DELETE", "/api/me")])
def test_a_wrong_method_is_refused_with_405(client: Any, method: str, path: str) -> None:
    answer = client.request(method, path)
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "Request_BadRequest"
    assert answer.json()["error"]["message"] == f"{method} is not allowed here."


@pytest.mark.parametrize("path", ["/api/nothing", "/oauth2", "/api/me/passkeys/x/y", "/v1.0/nothing"])
def test_a_missing_path_is_404(client: Any, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"Nothing is served at {path}."


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/oauth2/token/"), ("POST", "/api/signin/passkey/options/")])
def test_a_trailing_slash_is_redirected(client: Any, method: str, path: str) -> None:
    answer = client.request(method, path, follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"].endswith(path.rstrip("/"))


def test_every_route_is_in_the_openapi_document(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/oauth2/token", "/api/signin/passkey/options", "/api/signin/passkey", "/v1.0/users"} <= set(paths)
    assert "/oauth2/authorize" not in paths  # include_in_schema=False is kept
