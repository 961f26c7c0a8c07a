"""/applications: app registrations in Graph's shape (OpenID Connect clients and automation apps).

Redirect URIs per platform (web, spa, publicClient) are matched exactly at sign-in. Post-logout
redirect URIs: Graph's web.logoutUrl, plus Passgate's own list `postLogoutRedirectUris`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
from ..oidc import clients
from ..store.tables import App, AppSecret
from . import odata
from .base import (
    BOOLEAN,
    NULLABLE_OBJECT,
    NULLABLE_STRING,
    STRING,
    STRING_LIST,
    bad_request,
    check_properties,
    graph_json,
    iso,
    json_body,
    no_content,
    odata_context,
    require,
    transaction,
)

router = APIRouter()
WRITE = require("Application.ReadWrite.All")
ODATA_TYPE = "microsoft.graph.application"
PROPERTIES = ("id", "appId", "displayName", "createdDateTime", "web", "spa", "publicClient",
              "isFallbackPublicClient", "passwordCredentials", "postLogoutRedirectUris", "backchannelLogoutUri")
_SCHEMA = {
    "displayName": STRING,
    "web": NULLABLE_OBJECT,
    "spa": NULLABLE_OBJECT,
    "publicClient": NULLABLE_OBJECT,
    "isFallbackPublicClient": BOOLEAN,
    "postLogoutRedirectUris": STRING_LIST,
    "backchannelLogoutUri": NULLABLE_STRING,
    "signInAudience": STRING,
}


def password_json(secret: AppSecret) -> dict[str, Any]:
    return {
        "keyId": secret.id, "displayName": secret.display_name, "hint": secret.hint,
        "startDateTime": iso(secret.created_at), "endDateTime": iso(secret.expires_at),
        "secretText": None, "customKeyIdentifier": None,
    }


def application_json(session: Session, app: App) -> dict[str, Any]:
    secrets = session.scalars(select(AppSecret).where(AppSecret.app_id == app.id).order_by(AppSecret.created_at))
    return {
        "id": app.id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "createdDateTime": iso(app.created_at),
        "signInAudience": "AzureADMyOrg",
        "isFallbackPublicClient": app.is_fallback_public_client,
        "web": {
            "redirectUris": list(app.web_redirect_uris), "logoutUrl": app.logout_url,
            "implicitGrantSettings": {"enableIdTokenIssuance": False, "enableAccessTokenIssuance": False},
        },
        "spa": {"redirectUris": list(app.spa_redirect_uris)},
        "publicClient": {"redirectUris": list(app.public_client_redirect_uris)},
        "postLogoutRedirectUris": list(app.post_logout_redirect_uris),
        "backchannelLogoutUri": app.backchannel_logout_uri,
        "passwordCredentials": [password_json(s) for s in secrets],
    }


def _platform(values: dict[str, Any], name: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
    value = values.get(name)
    if value is None:
        return None
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise bad_request(f"Property '{name}.{unknown[0]}' is not supported; use {', '.join(allowed)}.")
    return dict(value)


def apply(app: App, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Set the given properties on the app; returns the audit record's modified properties."""
    changes = []
    if "displayName" in values:
        name = values["displayName"].strip()
        if not name or len(name) > 256:
            raise bad_request("Property 'displayName' must be 1 to 256 characters.")
        changes.append(modified("DisplayName", app.display_name, name))
        app.display_name = name
    if "signInAudience" in values and values["signInAudience"] != "AzureADMyOrg":
        raise bad_request("Property 'signInAudience' must be AzureADMyOrg: apps sign in this directory's users.")
    web = _platform(values, "web", ("redirectUris", "logoutUrl", "implicitGrantSettings", "homePageUrl"))
    if web is not None:
        if "redirectUris" in web:
            uris = clients.check_uri_list(web["redirectUris"], "web.redirectUris")
            changes.append(modified("WebRedirectUris", app.web_redirect_uris, uris))
            app.web_redirect_uris = uris
        if "logoutUrl" in web:
            url = None if web["logoutUrl"] is None else clients.check_redirect_uri(web["logoutUrl"], "web.logoutUrl")
            changes.append(modified("LogoutUrl", app.logout_url, url))
            app.logout_url = url
        grants = web.get("implicitGrantSettings") or {}
        if any(grants.get(k) for k in ("enableIdTokenIssuance", "enableAccessTokenIssuance")):
            raise bad_request("The implicit grant is not supported: use the authorization code flow with PKCE.")
    for name, attribute in (("spa", "spa_redirect_uris"), ("publicClient", "public_client_redirect_uris")):
        platform = _platform(values, name, ("redirectUris",))
        if platform is not None and "redirectUris" in platform:
            uris = clients.check_uri_list(platform["redirectUris"], f"{name}.redirectUris")
            changes.append(modified(f"{name}RedirectUris", getattr(app, attribute), uris))
            setattr(app, attribute, uris)
    if "postLogoutRedirectUris" in values:
        uris = clients.check_uri_list(values["postLogoutRedirectUris"], "postLogoutRedirectUris")
        changes.append(modified("PostLogoutRedirectUris", app.post_logout_redirect_uris, uris))
        app.post_logout_redirect_uris = uris
    if "backchannelLogoutUri" in values:
        value = values["backchannelLogoutUri"]
        url = None if value is None else clients.check_redirect_uri(value, "backchannelLogoutUri")
        changes.append(modified("BackchannelLogoutUri", app.backchannel_logout_uri, url))
        app.backchannel_logout_uri = url
    if "isFallbackPublicClient" in values:
        changes.append(modified("IsFallbackPublicClient", app.is_fallback_public_client,
                                values["isFallbackPublicClient"]))
        app.is_fallback_public_client = values["isFallbackPublicClient"]
    return changes


def get_app(session: Session, object_id: str) -> App:
    app = session.get(App, object_id.lower()) if len(object_id) <= 36 else None
    if app is None:
        raise PassgateError(errors.NOT_FOUND, f"No application has the id {object_id[:64]!r}.")
    return app


def _audit(session: Session, ctx: RequestContext, app: App, activity: str, operation: str,
           changes: list[dict[str, Any]]) -> None:
    record_audit(session, ctx, activity, category="ApplicationManagement", operation=operation,
                 target_type="Application", target_id=app.id, target_name=app.display_name, changes=changes,
                 details={"appId": app.app_id})


@router.post("/applications")
def create(request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
           ) -> Response:
    values = check_properties(body, _SCHEMA, ODATA_TYPE)
    if "displayName" not in values:
        raise bad_request("Property 'displayName' is required.")
    with transaction(request) as session:
        app = App(display_name="-", permissions=[], created_at=ctx.now, web_redirect_uris=[], spa_redirect_uris=[],
                  public_client_redirect_uris=[], post_logout_redirect_uris=[], is_fallback_public_client=False)
        changes = apply(app, values)
        session.add(app)
        session.flush()
        _audit(session, ctx, app, "Add application", "Add", changes)
        created = {"@odata.context": odata_context(request, "applications/$entity"), **application_json(session, app)}
    return graph_json(ctx, created, 201)


@router.get("/applications")
def list_all(request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    query = odata.parse(request, filterable=("displayName", "appId"), selectable=PROPERTIES)
    with transaction(request) as session:
        statement = select(App)
        if query.filter is not None:
            column = App.app_id if query.filter[0] == "appId" else App.display_name
            statement = statement.where(column == query.filter[1])
        rows = odata.page(session, statement, App.id, query)
        context = odata_context(request, odata.fragment("applications", query))
        return graph_json(ctx, odata.collection(request, context, rows, query,
                                                lambda a: application_json(session, a)))


@router.get("/applications/{object_id}")
def read(object_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    query = odata.parse(request, selectable=PROPERTIES, paged=False)
    with transaction(request) as session:
        app = get_app(session, object_id)
        context = odata_context(request, odata.fragment("applications", query) + "/$entity")
        return graph_json(ctx, {"@odata.context": context, **odata.project(application_json(session, app), query)})


@router.patch("/applications/{object_id}")
def update(object_id: str, request: Request, ctx: RequestContext = Depends(WRITE),
           body: dict[str, Any] = Depends(json_body)) -> Response:
    values = check_properties(body, _SCHEMA, ODATA_TYPE)
    with transaction(request) as session:
        app = get_app(session, object_id)
        changes = apply(app, values)
        _audit(session, ctx, app, "Update application", "Update", changes)
    return no_content(ctx)


@router.delete("/applications/{object_id}")
def delete(object_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        app = get_app(session, object_id)
        _audit(session, ctx, app, "Delete application", "Delete", [])
        session.delete(app)
    return no_content(ctx)


@router.post("/applications/{object_id}/addPassword")
def add_password(object_id: str, request: Request, ctx: RequestContext = Depends(WRITE),
                 body: dict[str, Any] = Depends(json_body)) -> Response:
    """A new client secret, returned once in `secretText` (only its SHA-256 is kept)."""
    values = check_properties(body, {"passwordCredential": NULLABLE_OBJECT}, "microsoft.graph.passwordCredential")
    wanted = values.get("passwordCredential") or {}
    unknown = sorted(set(wanted) - {"displayName", "endDateTime", "startDateTime"})
    if unknown:
        raise bad_request(f"Property 'passwordCredential.{unknown[0]}' is not supported.")
    name = wanted.get("displayName")
    if name is not None and (not isinstance(name, str) or len(name) > 256):
        raise bad_request("Property 'passwordCredential.displayName' must be a string of at most 256 characters.")
    end = None
    if wanted.get("endDateTime") is not None:
        try:
            end = datetime.fromisoformat(str(wanted["endDateTime"]).replace("Z", "+00:00"))
        except ValueError:
            raise bad_request("Property 'passwordCredential.endDateTime' must be an ISO 8601 date and time.") from None
        if end.tzinfo is None or end <= ctx.now:
            raise bad_request("Property 'passwordCredential.endDateTime' must be a future time with a time zone.")
    with transaction(request) as session:
        app = get_app(session, object_id)
        secret = clients.add_secret(session, ctx, app, name, end)
        session.flush()
        row = clients.secret_row(session, secret)
        _audit(session, ctx, app, "Update application - Certificates and secrets management", "Update",
               [modified("KeyDescription", None, f"[KeyIdentifier={row.id}]")])
        out = {"@odata.context": odata_context(request, "microsoft.graph.passwordCredential"), **password_json(row),
               "secretText": secret}
    return graph_json(ctx, out)


@router.post("/applications/{object_id}/removePassword")
def remove_password(object_id: str, request: Request, ctx: RequestContext = Depends(WRITE),
                    body: dict[str, Any] = Depends(json_body)) -> Response:
    values = check_properties(body, {"keyId": STRING}, "microsoft.graph.passwordCredential")
    key_id = str(values.get("keyId", ""))
    try:
        uuid.UUID(key_id)
    except ValueError:
        raise bad_request("Property 'keyId' must be the keyId of one of the app's passwordCredentials.") from None
    with transaction(request) as session:
        app = get_app(session, object_id)
        row = session.get(AppSecret, key_id.lower())
        if row is None or row.app_id != app.id:
            raise PassgateError(errors.NOT_FOUND, f"The app has no password credential {key_id!r}.")
        session.delete(row)
        _audit(session, ctx, app, "Update application - Certificates and secrets management", "Update",
               [modified("KeyDescription", f"[KeyIdentifier={row.id}]", None)])
    return no_content(ctx)
