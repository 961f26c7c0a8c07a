"""App registrations and their client secrets (SHA-256 at rest, shown once)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
from ..store import registrations
from ..store.tables import App, AppSecret

# The Graph application permissions Passgate understands, granted to apps as token `roles`.
GRAPH_PERMISSIONS = frozenset(
    {
        "User.Read.All",
        "User.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "RoleManagement.Read.Directory",
        "RoleManagement.ReadWrite.Directory",
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
        "UserAuthMethod-Passkey.Read.All",
        "UserAuthMethod-Passkey.ReadWrite.All",
        "Policy.Read.All",
        "Policy.ReadWrite.AuthenticationMethod",
        "Policy.Read.ConditionalAccess",
        "Policy.ReadWrite.ConditionalAccess",
        "AuditLog.Read.All",
        "Application.ReadWrite.All",
    }
)


@dataclass(frozen=True, slots=True)
class NewApp:
    app: App
    client_secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


MAX_URIS = 64


def check_redirect_uri(uri: object, what: str = "redirect URI") -> str:
    """An absolute URI without fragment; https, or http only for localhost/loopback; or a native app scheme."""
    if not isinstance(uri, str) or not uri or len(uri) > 1024 or uri != uri.strip():
        raise PassgateError(errors.INVALID_REQUEST, f"Each {what} must be a non-empty URI (at most 1024 characters).")
    parts = urlsplit(uri)
    if not parts.scheme or "#" in uri:
        raise PassgateError(errors.INVALID_REQUEST, f"The {what} {uri!r} must be absolute and have no fragment.")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise PassgateError(errors.INVALID_REQUEST, f"The {what} {uri!r} must use https (http only for localhost).")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise PassgateError(errors.INVALID_REQUEST, f"The {what} {uri!r} has no host.")
    if parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise PassgateError(errors.INVALID_REQUEST, f"The {what} {uri!r} uses a scheme that is not allowed.")
    return uri


def check_uri_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_URIS:
        raise PassgateError(errors.INVALID_REQUEST, f"'{what}' must be a list of at most {MAX_URIS} URIs.")
    out: list[str] = []
    for uri in value:
        checked = check_redirect_uri(uri, what)
        if checked not in out:
            out.append(checked)
    return out


def redirect_uris(app: App) -> list[str]:
    return [*app.web_redirect_uris, *app.spa_redirect_uris, *app.public_client_redirect_uris]


def logout_uris(app: App) -> list[str]:
    return ([app.logout_url] if app.logout_url else []) + list(app.post_logout_redirect_uris)


def may_skip_secret(app: App) -> bool:
    """Public clients (SPA, native, or isFallbackPublicClient) use PKCE without a secret."""
    return bool(app.is_fallback_public_client or app.spa_redirect_uris or app.public_client_redirect_uris)


def create_app_registration(
    session: Session, ctx: RequestContext, name: str, permissions: list[str],
    web_redirect_uris: list[str] | None = None, public_redirect_uris: list[str] | None = None,
    is_public: bool = False, with_secret: bool = True, logout_url: str | None = None,
    backchannel_logout_uri: str | None = None,
) -> NewApp:
    if not name.strip():
        raise PassgateError(errors.INVALID_REQUEST, "The app needs a name.")
    unknown = sorted(set(permissions) - GRAPH_PERMISSIONS)
    if unknown:
        raise PassgateError(
            errors.INVALID_REQUEST,
            f"Unknown permission(s) {', '.join(unknown)}; known: {', '.join(sorted(GRAPH_PERMISSIONS))}.",
        )
    app = App(
        display_name=name.strip(), permissions=sorted(set(permissions)), created_at=ctx.now,
        web_redirect_uris=check_uri_list(web_redirect_uris or [], "web.redirectUris"),
        spa_redirect_uris=[], post_logout_redirect_uris=[],
        public_client_redirect_uris=check_uri_list(public_redirect_uris or [], "publicClient.redirectUris"),
        is_fallback_public_client=is_public,
        logout_url=check_redirect_uri(logout_url, "web.logoutUrl") if logout_url is not None else None,
        backchannel_logout_uri=check_redirect_uri(backchannel_logout_uri, "backchannelLogoutUri")
        if backchannel_logout_uri is not None else None,
    )
    session.add(app)
    session.flush()
    secret = add_secret(session, ctx, app) if with_secret else ""
    record_audit(
        session, ctx, "Add application", category="ApplicationManagement", operation="Add",
        target_type="Application", target_id=app.id, target_name=app.display_name,
        changes=[modified("AppRoles", None, app.permissions)], details={"appId": app.app_id},
    )
    return NewApp(app, secret)


def add_secret(session: Session, ctx: RequestContext, app: App, display_name: str | None = None,
               expires_at: datetime | None = None) -> str:
    secret = secrets.token_urlsafe(32)
    session.add(AppSecret(app_id=app.id, secret_hash=_hash(secret), hint=secret[:3], created_at=ctx.now,
                          display_name=display_name, expires_at=expires_at))
    return secret


def secret_row(session: Session, secret: str) -> AppSecret:
    row = session.scalar(select(AppSecret).where(AppSecret.secret_hash == _hash(secret)))
    assert row is not None
    return row


def authenticate(session: Session, ctx: RequestContext, client_id: str, client_secret: str) -> App:
    app = registrations.by_client_id(session, client_id)
    if app is None or not secret_matches(session, ctx, app, client_secret):
        raise PassgateError(errors.INVALID_CLIENT)
    return app


def secret_matches(session: Session, ctx: RequestContext, app: App, client_secret: str) -> bool:
    """Whether this is one of the app's live secrets (for a caller that has already read the app)."""
    digest = _hash(client_secret)
    for secret_hash, expires_at in registrations.secrets_of(session, app.id):
        live = expires_at is None or expires_at > ctx.now
        if live and hmac.compare_digest(secret_hash, digest):
            return True
    return False
