"""Writing sign-in log entries and audit records, always on the caller's open transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core.errors import PassgateError
from ..store.tables import DirectoryAudit, SignIn, User


@dataclass(slots=True)
class SignInAttempt:
    """What is known about a sign-in so far; filled in as the ceremony learns more."""

    method: str
    user: User | None = None
    user_principal_name: str | None = None
    method_detail: str | None = None
    app_id: str | None = None
    app_display_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def record_sign_in(
    session: Session, ctx: RequestContext, attempt: SignInAttempt, error: PassgateError | None = None
) -> SignIn:
    user = attempt.user
    entry = SignIn(
        created_at=ctx.now,
        user_id=user.id if user else None,
        user_principal_name=user.user_principal_name if user else attempt.user_principal_name,
        user_display_name=user.display_name if user else None,
        app_id=attempt.app_id,
        app_display_name=attempt.app_display_name,
        ip_address=ctx.ip_address,
        user_agent=ctx.user_agent,
        correlation_id=ctx.correlation_id,
        error_code=error.code.number if error else 0,
        failure_reason=error.message if error else None,
        authentication_method=attempt.method or None,  # none yet: refused before any authentication
        authentication_method_detail=attempt.method_detail,
        details=attempt.details,
    )
    session.add(entry)
    return entry


def _initiated_by(ctx: RequestContext) -> dict[str, Any]:
    actor = ctx.actor
    if actor.kind == "app":
        return {"app": {"appId": actor.id, "displayName": actor.display_name}, "user": None}
    if actor.kind == "user":
        return {
            "user": {
                "id": actor.id,
                "displayName": actor.display_name,
                "userPrincipalName": actor.user_principal_name,
                "ipAddress": ctx.ip_address,
            },
            "app": None,
        }
    return {"app": {"appId": None, "displayName": actor.display_name}, "user": None}


def modified(name: str, old: Any, new: Any) -> dict[str, Any]:
    return {"displayName": name, "oldValue": old, "newValue": new}


def record_audit(
    session: Session,
    ctx: RequestContext,
    activity: str,
    *,
    category: str,
    operation: str,
    target_type: str,
    target_id: str,
    target_name: str | None = None,
    target_upn: str | None = None,
    changes: list[dict[str, Any]] | None = None,
    details: dict[str, Any] | None = None,
    service: str = "Core Directory",
) -> DirectoryAudit:
    record = DirectoryAudit(
        activity_at=ctx.now,
        activity_display_name=activity,
        category=category,
        operation_type=operation,
        logged_by_service=service,
        correlation_id=ctx.correlation_id,
        result="success",
        initiated_by=_initiated_by(ctx),
        target_resources=[
            {
                "id": target_id,
                "displayName": target_name,
                "type": target_type,
                "userPrincipalName": target_upn,
                "modifiedProperties": changes or [],
            }
        ],
        additional_details=[{"key": k, "value": str(v)} for k, v in (details or {}).items()],
    )
    session.add(record)
    return record
