"""App registrations through Graph (/applications, addPassword) and the CLI; signing key rotation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from typer.testing import CliRunner

from passgate.cli import app as cli
from passgate.context import RequestContext, utcnow
from passgate.oidc import keys
from passgate.store.db import Database
from passgate.store.tables import AppSecret, SigningKey

from .graph_helpers import Graph
from .oidc_helpers import LOGOUT, REDIRECT, claims_of, pkce, redirect_params, tokens
from .oidc_helpers import authorize as authorize_request
from .test_signin_support import signed_in_as


def test_applications_in_graph_shape_sign_in_with_the_secret_from_add_password(client: Any, db: Database) -> None:
    graph = Graph(client, db)
    created = graph.post("/applications", json={
        "displayName": "Wiki", "web": {"redirectUris": [REDIRECT], "logoutUrl": LOGOUT},
        "postLogoutRedirectUris": ["http://localhost:9000/bye2"],
    })
    assert created.status_code == 201, created.text
    app = created.json()
    assert app["web"]["redirectUris"] == [REDIRECT] and app["passwordCredentials"] == []
    assert app["spa"] == {"redirectUris": []} and app["isFallbackPublicClient"] is False
    assert app["backchannelLogoutUri"] is None
    set_back = graph.patch(f"/applications/{app['id']}", json={"backchannelLogoutUri": "https://wiki.example/bc"})
    assert set_back.status_code == 204
    assert graph.get(f"/applications/{app['id']}").json()["backchannelLogoutUri"] == "https://wiki.example/bc"
    password = graph.post(f"/applications/{app['id']}/addPassword",
                          json={"passwordCredential": {"displayName": "prod"}})
    assert password.status_code == 200, password.text
    secret = password.json()["secretText"]
    assert password.json()["displayName"] == "prod" and password.json()["hint"] == secret[:3]
    listed = graph.get(f"/applications/{app['id']}").json()
    assert listed["passwordCredentials"][0]["secretText"] is None
    with db.transaction() as s:
        assert secret not in [row.secret_hash for row in s.scalars(select(AppSecret))]
    found = graph.get(f"/applications?$filter=appId eq '{app['appId']}'").json()["value"]
    assert [a["id"] for a in found] == [app["id"]]

    signed_in_as(client, db, "wiki@example.com")
    body = tokens(client, app["appId"], secret)
    assert claims_of(client, body["id_token"])["aud"] == app["appId"]

    # PATCH the redirect URIs: the old one stops working at once (exact match).
    patched = graph.patch(f"/applications/{app['id']}", json={"web": {"redirectUris": ["http://localhost:9000/new"]}})
    assert patched.status_code == 204
    _, challenge = pkce()
    refused = authorize_request(client, app["appId"], challenge)
    assert refused.status_code == 400 and "location" not in refused.headers
    removed = graph.post(f"/applications/{app['id']}/removePassword",
                         json={"keyId": listed["passwordCredentials"][0]["keyId"]})
    assert removed.status_code == 204
    assert client.post("/oauth2/token", data={"grant_type": "client_credentials", "client_id": app["appId"],
                                              "client_secret": secret}).status_code == 401
    assert graph.delete(f"/applications/{app['id']}").status_code == 204
    assert graph.get(f"/applications/{app['id']}").status_code == 404


def test_applications_refusals_and_permission(client: Any, db: Database) -> None:
    graph = Graph(client, db)
    bad = [
        {"displayName": "x", "web": {"redirectUris": ["http://evil.example/cb"]}},
        {"displayName": "x", "web": {"redirectUris": ["https://a.example/cb#frag"]}},
        {"displayName": "x", "spa": {"redirectUris": "https://a.example/cb"}},
        {"displayName": "x", "web": {"implicitGrantSettings": {"enableIdTokenIssuance": True}}},
        {"displayName": "x", "unknown": 1},
        {"displayName": "x", "backchannelLogoutUri": "http://evil.example/bc"},
        {"displayName": "x", "backchannelLogoutUri": ["https://a.example/bc"]},
        {"web": {"redirectUris": []}},
    ]
    for body in bad:
        answer = graph.post("/applications", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["code"] == "Request_BadRequest"
    token = graph.token("User.Read.All")
    denied = client.get("/v1.0/applications", headers={"authorization": f"Bearer {token}"})
    assert denied.status_code == 403


def test_spa_registration_is_a_public_client(client: Any, db: Database) -> None:
    graph = Graph(client, db)
    app = graph.post("/applications", json={"displayName": "SPA", "spa": {"redirectUris": [REDIRECT]}}).json()
    signed_in_as(client, db, "spa@example.com")
    body = tokens(client, app["appId"], None)
    assert body["access_token"] and body["id_token"]


def test_cli_apps_add_with_redirect_uris(settings: Any, db: Database, monkeypatch: Any, client: Any) -> None:
    monkeypatch.setenv("PASSGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PASSGATE_ORIGINS", "http://localhost:8443")
    runner = CliRunner()
    out = runner.invoke(cli, ["apps", "add", "--name", "Portal", "--redirect-uri", REDIRECT,
                              "--redirect-uri", "http://localhost:9000/cb2", "--json"])
    assert out.exit_code == 0, out.output
    made = json.loads(out.output)
    assert made["redirectUris"] == [REDIRECT, "http://localhost:9000/cb2"] and made["clientSecret"]
    public = json.loads(runner.invoke(cli, ["apps", "add", "--name", "CLI tool", "--redirect-uri", REDIRECT,
                                            "--public", "--json"]).output)
    assert "clientSecret" not in public and public["isFallbackPublicClient"] is True
    plain = runner.invoke(cli, ["apps", "add", "--name", "Automation", "--permission", "User.Read.All"])
    assert plain.exit_code == 0 and "clientSecret:" in plain.output
    refused = runner.invoke(cli, ["apps", "add", "--name", "Bad", "--redirect-uri", "http://evil.example/cb"])
    assert refused.exit_code == 1 and "https" in refused.output
    logout = json.loads(runner.invoke(cli, [
        "apps", "add", "--name", "Logout", "--redirect-uri", REDIRECT, "--logout-url", LOGOUT,
        "--backchannel-logout-uri", "https://app.example/backchannel", "--json"]).output)
    assert logout["logoutUrl"] == LOGOUT and logout["backchannelLogoutUri"] == "https://app.example/backchannel"
    bad_logout = runner.invoke(cli, ["apps", "add", "--name", "Bad", "--backchannel-logout-uri", "javascript:x"])
    assert bad_logout.exit_code == 1 and "backchannelLogoutUri" in bad_logout.output
    signed_in_as(client, db, "cli@example.com")
    assert tokens(client, made["appId"], made["clientSecret"])["id_token"]
    assert tokens(client, public["appId"], None)["id_token"]


def test_key_rotation_publishes_first_then_signs_and_old_tokens_still_verify(
        client: Any, db: Database, settings: Any) -> None:
    cache = client.app.state.services.keys
    with db.transaction() as s:
        from passgate.oidc.clients import create_app_registration

        new = create_app_registration(s, RequestContext(), "Rotating", [], web_redirect_uris=[REDIRECT])
    client_id, secret = new.app.app_id, new.client_secret
    signed_in_as(client, db, "rot@example.com")
    before = tokens(client, client_id, secret)
    old_kid = claims_header_kid(before["access_token"])

    with db.transaction() as s:
        added = keys.rotate(s, RequestContext(), 600, settings.access_token_minutes * 60)
    new_kid = next(k.kid for k in added if k.alg == "ES256")
    cache.invalidate()
    published = {k["kid"] for k in client.get("/oauth2/jwks").json()["keys"]}
    assert {old_kid, new_kid} <= published
    # Published, not signing yet.
    assert claims_header_kid(tokens(client, client_id, secret)["access_token"]) == old_kid

    # Time passes: the new key signs; tokens signed before still verify (old key stays published).
    with db.transaction() as s:
        s.execute(update(SigningKey).where(SigningKey.kid.in_([k.kid for k in added]))
                  .values(activates_at=utcnow()))
    cache.invalidate()
    after = tokens(client, client_id, secret)
    assert claims_header_kid(after["access_token"]) == new_kid
    assert claims_header_kid(after["id_token"]) == new_kid
    bearer = {"authorization": f"Bearer {before['access_token']}"}
    assert client.get("/oauth2/userinfo", headers=bearer).status_code == 200
    assert claims_of(client, before["id_token"])["aud"] == client_id
    # Once the old key's tokens have expired it leaves the JWKS.
    with db.transaction() as s:
        s.execute(update(SigningKey).where(SigningKey.kid == old_kid)
                  .values(retired_at=utcnow() - timedelta(seconds=1)))
    cache.invalidate()
    assert old_kid not in {k["kid"] for k in client.get("/oauth2/jwks").json()["keys"]}
    assert client.get("/oauth2/userinfo", headers=bearer).status_code == 401


def test_cli_keys_rotate(settings: Any, db: Database, monkeypatch: Any) -> None:
    monkeypatch.setenv("PASSGATE_DATABASE_URL", settings.database_url)
    out = CliRunner().invoke(cli, ["keys", "rotate", "--activate-in", "900", "--json"])
    assert out.exit_code == 0, out.output
    rotated = json.loads(out.output)
    assert sorted(k["alg"] for k in rotated) == ["ES256", "RS256"]
    with db.transaction() as s:
        rows = list(s.scalars(select(SigningKey)))
    assert len(rows) == 4
    old = [r for r in rows if r.kid not in {k["kid"] for k in rotated}]
    assert all(r.retired_at is not None and r.retired_at > r.created_at for r in old)


def claims_header_kid(token: str) -> str:
    import base64

    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_prompt_none_with_a_session_issues_a_code(client: Any, db: Database) -> None:
    graph = Graph(client, db)
    app = graph.post("/applications", json={"displayName": "Silent", "publicClient": {"redirectUris": [REDIRECT]}})
    signed_in_as(client, db, "silent@example.com")
    _, challenge = pkce()
    answer = redirect_params(authorize_request(client, app.json()["appId"], challenge, prompt="none"))
    assert "code" in answer
