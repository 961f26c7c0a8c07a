"""Authlib's OAuth 2.0 server core behind a small Starlette adapter.

Authlib's hooks are synchronous, so a token request is parsed here (async, the form is read once)
and then handled by Authlib in the thread pool with a synchronous database session.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import Settings
from ..context import RequestContext
from ..core.errors import PassgateError
from ..store.db import Database
from ..store.tables import App
from . import clients, tokens
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
    """A request already read off the wire, so Authlib can work on it from a worker thread."""

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


async def parse(request: Request) -> ParsedRequest:
    form: dict[str, list[str]] = defaultdict(list)
    if request.method == "POST":
        for key, value in (await request.form()).multi_items():
            if isinstance(value, str):
                form[key].append(value)
    query: dict[str, list[str]] = defaultdict(list)
    for key, value in request.query_params.multi_items():
        query[key].append(value)
    # Starlette's Headers match names case-insensitively, as Authlib's 'Authorization' lookup needs.
    return ParsedRequest(request.method, str(request.url), request.headers, dict(query), dict(form))


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
        try:
            clients.authenticate(self.server.session, self.server.ctx, self.app.app_id, client_secret)
        except PassgateError:
            return False
        return True

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class AppCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    # Graph scripts send the secret in the form body as often as in Basic auth.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class PassgateAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One instance per request: it carries that request's database session and context."""

    def __init__(self, session: Session, ctx: RequestContext, settings: Settings, keys: KeyCache) -> None:
        super().__init__()
        self.session = session
        self.ctx = ctx
        self.settings = settings
        self.keys = keys
        self.register_grant(AppCredentialsGrant)
        self.register_token_generator("client_credentials", self._app_token)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        from sqlalchemy import select

        app = self.session.scalar(select(App).where(App.app_id == client_id))
        return RegisteredClient(self, app) if app is not None else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs; nothing is stored for client credentials."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: ParsedRequest) -> ParsedRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return Response(json.dumps(body), status_code=status, headers=dict(headers), media_type="application/json")

    def _app_token(self, grant_type: str, client: RegisteredClient, user: Any = None, scope: Any = None,
                   expires_in: int | None = None, include_refresh_token: bool = False) -> dict[str, Any]:
        lifetime = self.settings.access_token_minutes * 60
        token = tokens.app_access_token(self.keys.ring(self.ctx), self.settings, client.app, self.ctx.now, lifetime)
        return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}


def token_response(db: Database, ctx: RequestContext, settings: Settings, keys: KeyCache,
                   request: ParsedRequest) -> Response:
    with db.transaction() as session:
        server = PassgateAuthorizationServer(session, ctx, settings, keys)
        response: Response = server.create_token_response(request)
        return response


def json_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
