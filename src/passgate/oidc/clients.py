"""App registrations and their client secrets (SHA-256 at rest, shown once)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
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


def create_app_registration(
    session: Session, ctx: RequestContext, name: str, permissions: list[str]
) -> NewApp:
    if not name.strip():
        raise PassgateError(errors.INVALID_REQUEST, "The app needs a name.")
    unknown = sorted(set(permissions) - GRAPH_PERMISSIONS)
    if unknown:
        raise PassgateError(
            errors.INVALID_REQUEST,
            f"Unknown permission(s) {', '.join(unknown)}; known: {', '.join(sorted(GRAPH_PERMISSIONS))}.",
        )
    app = App(display_name=name.strip(), permissions=sorted(set(permissions)), created_at=ctx.now)
    session.add(app)
    session.flush()
    secret = add_secret(session, ctx, app)
    record_audit(
        session, ctx, "Add application", category="ApplicationManagement", operation="Add",
        target_type="Application", target_id=app.id, target_name=app.display_name,
        changes=[modified("AppRoles", None, app.permissions)], details={"appId": app.app_id},
    )
    return NewApp(app, secret)


def add_secret(session: Session, ctx: RequestContext, app: App) -> str:
    secret = secrets.token_urlsafe(32)
    session.add(AppSecret(app_id=app.id, secret_hash=_hash(secret), hint=secret[:3], created_at=ctx.now))
    return secret


def authenticate(session: Session, ctx: RequestContext, client_id: str, client_secret: str) -> App:
    app = session.scalar(select(App).where(App.app_id == client_id))
    if app is None:
        raise PassgateError(errors.INVALID_CLIENT)
    digest = _hash(client_secret)
    for row in session.scalars(select(AppSecret).where(AppSecret.app_id == app.id)):
        live = row.expires_at is None or row.expires_at > ctx.now
        if live and hmac.compare_digest(row.secret_hash, digest):
            return app
    raise PassgateError(errors.INVALID_CLIENT)
