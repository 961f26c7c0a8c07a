"""Authlib's OAuth 2.0 server core behind a small Starlette adapter.

Authlib's hooks are synchronous, so a token request is parsed here (async, the form is read once)
and then handled by Authlib with a synchronous database session, on the event loop as every handler's
database work is.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NoReturn

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import Settings
from ..context import RequestContext
from ..store import registrations
from ..store.db import Database
from ..store.tables import App, OAuthGrant
from ..web.deps import form_items
from . import clients, grants, tokens
from .keys import KeyCache


class _Payload(OAuth2Payload):
    def __init__(self, values: dict[str, list[str]]) -> None:
        self._datalist = values

    @property
    def data(self) -> dict[str, str]:
        return {k: v[0] for k, v in self._datalist.items() if v}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, self._datalist)


class ParsedRequest(OAuth2Request):
    """A request already read off the wire, so Authlib's synchronous hooks can work on it."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], query: dict[str, list[str]],
                 form: dict[str, list[str]]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = {k: v[0] for k, v in query.items() if v}
        self._form = {k: v[0] for k, v in form.items() if v}
        merged: dict[str, list[str]] = defaultdict(list)
        for source in (query, form):
            for k, v in source.items():
                merged[k].extend(v)
        self.payload = _Payload(dict(merged))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def parse(request: Request, issuer: str) -> ParsedRequest:
    """The request as Authlib reads it. Its URI is the public one (the issuer's), which is also cheaper than
    Starlette's `request.url` (a Host header parse and a URL built per request)."""
    form: dict[str, list[str]] = defaultdict(list)
    if request.method == "POST":
        for key, value in await form_items(request):
            form[key].append(value)
    query: dict[str, list[str]] = defaultdict(list)
    for key, value in request.query_params.multi_items():
        query[key].append(value)
    # Starlette's Headers match names case-insensitively, as Authlib's 'Authorization' lookup needs.
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    uri = issuer + request.scope["path"] + ("?" + raw_query if raw_query else "")
    return ParsedRequest(request.method, uri, request.headers, dict(query), dict(form))


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """An app registration as Authlib sees it; secrets are checked against their stored hashes."""

    def __init__(self, server: PassgateAuthorizationServer, app: App) -> None:
        self.server = server
        self.app = app

    def get_client_id(self) -> str:
        return self.app.app_id

    def get_allowed_scope(self, scope: str) -> str:
        # Application permissions are granted as `roles`; a requested scope (".default") grants nothing more.
        return ""

    def check_client_secret(self, client_secret: str) -> bool:
        # The app was read by query_client in this request: only its secrets are left to read.
        return clients.secret_matches(self.server.session, self.server.ctx, self.app, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "none":
            return clients.may_skip_secret(self.app)
        return method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in ("authorization_code", "refresh_token"):
            return bool(clients.redirect_uris(self.app))
        return grant_type == "client_credentials"

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in clients.redirect_uris(self.app)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"


class AppCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    # Graph scripts send the secret in the form body as often as in Basic auth.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class S256Only(CodeChallenge):  # type: ignore[misc]
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]


class CodeRecord:
    """A stored code as Authlib's grant and PKCE extension read it."""

    def __init__(self, found: grants.FoundCode) -> None:
        self.found = found
        self.row = found.row
        self.code_challenge = found.row.code_challenge
        self.code_challenge_method = found.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """authorization_code at the token endpoint; codes are issued by oidc/authorize.py."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: PassgateAuthorizationServer

    def query_authorization_code(self, code: str, client: RegisteredClient) -> CodeRecord | None:
        srv = self.server
        found = srv.codes[code] if code in srv.codes else grants.find_code(srv.session, code)
        if found is None or found.row.app_id != client.app.id:
            return None
        row = found.row
        if row.used_at is not None:
            # A code used twice: revoke everything the first use got (RFC 6749 §4.1.2).
            grants.revoke_family(srv.session, row.grant_id, srv.ctx.now, "codeReplayed")
            raise InvalidGrantError("The code was already used; the tokens it gave are revoked.")
        if row.expires_at <= srv.ctx.now:
            raise InvalidGrantError("The code has expired.")
        if self.request.auth_method == "none" and row.redirect_uri in client.app.web_redirect_uris:
            raise InvalidClientError(description="A code sent to a web redirect URI needs the client secret.")
        return CodeRecord(found)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        if not self.request.form.get("code_verifier"):
            # PKCE is required of every client, confidential ones included.
            raise InvalidRequestError("Missing 'code_verifier'")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        srv = self.server
        client: RegisteredClient = self.request.client
        found: grants.FoundCode = self.request.authorization_code.found
        code, user = found.row, found.user
        if user is None or not user.account_enabled:
            raise InvalidGrantError("The account that signed in is not enabled.")
        family = grants.family_from_code(code, found.browser_end, srv.ctx.now)
        if not grants.claim_code(srv.session, code, srv.ctx.now, family.id):
            raise InvalidGrantError("The code was already used.")
        grants.store_family(srv.session, family)
        body = grants.issue_tokens(srv.session, srv.keys.ring(srv.ctx), srv.settings, srv.ctx.now, client.app,
                                   user, family, code.nonce)
        return 200, body, self.TOKEN_RESPONSE_HEADER


class RotatingRefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """refresh_token: each use rotates the token; a used one that comes back revokes its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: PassgateAuthorizationServer

    def validate_token_request(self) -> None:
        srv = self.server
        client: RegisteredClient = self._validate_request_client()
        value = self.request.form.get("refresh_token")
        if not value:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        claimed = grants.claim_refresh(srv.session, value, client.app.id, srv.ctx.now)
        if claimed is None:
            self._refuse_unclaimed(client, value)
        family_id, expires_at = claimed
        found = grants.family_with_user(srv.session, family_id)
        if found is None:  # its app was deleted in between (the family goes with it)
            raise InvalidGrantError("Unknown refresh token.")
        family, user, signed_in = found
        if grants.family_ended(srv.session, family, srv.ctx.now, signed_in) is not None:
            raise InvalidGrantError("The sign-in behind this refresh token has ended.")
        if expires_at <= srv.ctx.now:
            raise InvalidGrantError("The refresh token has expired.")
        scope = self.request.payload.scope
        if scope and not set(scope.split()) <= set(family.scope.split()):
            raise InvalidGrantError("A refresh cannot widen the scope.")
        self.request.client = client
        self.request.refresh_token = family
        self.request.user = user

    def _refuse_unclaimed(self, client: RegisteredClient, value: str) -> NoReturn:
        """Why a refresh token could not be claimed: unknown (or another app's), or used before, which revokes
        every token of its sign-in."""
        srv = self.server
        row = grants.find_refresh(srv.session, value)
        family = srv.session.get(OAuthGrant, row.grant_id) if row is not None else None
        if family is None or family.app_id != client.app.id:
            raise InvalidGrantError("Unknown refresh token.")
        grants.revoke_family(srv.session, family.id, srv.ctx.now, "refreshTokenReused")
        raise InvalidGrantError("The refresh token was already used; every token of this sign-in is revoked.")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        srv = self.server
        family = self.request.refresh_token
        user = self.request.user
        if user is None or not user.account_enabled:
            grants.revoke_family(srv.session, family.id, srv.ctx.now, "userDisabled")
            raise InvalidGrantError("The account is not enabled.")
        body = grants.issue_tokens(srv.session, srv.keys.ring(srv.ctx), srv.settings, srv.ctx.now,
                                   self.request.client.app, user, family, None)
        return 200, body, self.TOKEN_RESPONSE_HEADER


class PassgateAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One instance per request: it carries that request's database session and context. Building one costs
    about 4 µs (measured), too little to trade for a shared instance whose state would need care."""

    def __init__(self, session: Session, ctx: RequestContext, settings: Settings, keys: KeyCache) -> None:
        super().__init__()
        self.session = session
        self.ctx = ctx
        self.settings = settings
        self.keys = keys
        # Codes already read in this transaction (see token_response), by value.
        self.codes: dict[str, grants.FoundCode | None] = {}
        self.register_grant(AppCredentialsGrant)
        self.register_grant(CodeGrant, [S256Only(required=True)])
        self.register_grant(RotatingRefreshGrant)
        self.register_token_generator("client_credentials", self._app_token)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        app = registrations.by_client_id(self.session, client_id)
        return RegisteredClient(self, app) if app is not None else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs; nothing is stored for client credentials."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: ParsedRequest) -> ParsedRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        out = {"Cache-Control": "no-store", "Pragma": "no-cache", **dict(headers)}
        return Response(json.dumps(body), status_code=status, headers=out, media_type="application/json")

    def _app_token(self, grant_type: str, client: RegisteredClient, user: Any = None, scope: Any = None,
                   expires_in: int | None = None, include_refresh_token: bool = False) -> dict[str, Any]:
        lifetime = self.settings.access_token_minutes * 60
        token = tokens.app_access_token(self.keys.ring(self.ctx), self.settings, client.app, self.ctx.now, lifetime)
        return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}


def token_response(db: Database, ctx: RequestContext, settings: Settings, keys: KeyCache,
                   request: ParsedRequest) -> Response:
    keys.ring(ctx)  # loaded (and created on first use) before this transaction takes the write lock
    data = request.payload.data
    code = data.get("code") if data.get("grant_type") == "authorization_code" else None
    # A code exchange ends the sign-in ceremony; refreshes and app tokens commit as any other transaction.
    with db.transaction(write=True, ceremony=code is not None) as session:
        server = PassgateAuthorizationServer(session, ctx, settings, keys)
        if code:
            # Read before the client is authenticated, as the transaction's first statement: it brings the
            # configuration version that the client's registration is checked against (one round trip less).
            # The code is still used only once the client and the request pass Authlib's checks.
            server.codes[code] = grants.find_code(session, code)
        response: Response = server.create_token_response(request)
        return response


def json_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
