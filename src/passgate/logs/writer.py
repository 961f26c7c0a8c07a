"""Writing sign-in log entries and audit records, always on the caller's open transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import user_agents
from ..core.errors import PassgateError
from ..store.prepared import Prepared
from ..store.tables import DirectoryAudit, SignIn, UserView, new_id

PREVIOUSLY_SATISFIED = "Previously satisfied"
PRIMARY_AUTHENTICATION = "Primary authentication"
SINGLE_FACTOR = "singleFactorAuthentication"
MULTI_FACTOR = "multiFactorAuthentication"
CONDITIONAL_ACCESS_STATUSES = ("success", "failure", "notApplied")
BROWSER = "Browser"


@dataclass(slots=True)
class SignInAttempt:
    """What is known about a sign-in so far; filled in as the ceremony learns more.

    Everything after `details` is optional, so a caller that knows only the method still writes a whole
    entry: no Conditional Access applied, single-factor, interactive, through a browser, and one
    authentication step derived from the method and the outcome."""

    method: str
    user: UserView | None = None
    user_principal_name: str | None = None
    method_detail: str | None = None
    app_id: str | None = None
    app_display_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # A step that succeeded but does not finish the sign-in (a second factor is due) is logged with this code.
    interrupted: PassgateError | None = None
    # Graph appliedConditionalAccessPolicy documents, stored as given (the beta shape; the reader trims it).
    applied_policies: list[dict[str, Any]] = field(default_factory=list)
    conditional_access_status: str = "notApplied"
    # Graph authenticationDetail documents, one per step (see authentication_step); none given: one derived.
    authentication_details: list[dict[str, Any]] = field(default_factory=list)
    authentication_requirement: str = SINGLE_FACTOR
    is_interactive: bool = True
    client_app_used: str = BROWSER
    authentication_protocol: str = "none"
    session_id: str | None = None
    resource_id: str | None = None  # defaults to the app signed in to
    resource_display_name: str | None = None


def authentication_step(
    method: str | None,
    detail: str | None,
    at: datetime,
    succeeded: bool,
    result_detail: str | None = None,
    requirement: str = PRIMARY_AUTHENTICATION,
) -> dict[str, Any]:
    """One Graph authenticationDetail: a step of a sign-in (a passkey, a pass, a step-up...)."""
    if result_detail is None:
        if not succeeded:
            result_detail = "Authentication failed"
        elif method == PREVIOUSLY_SATISFIED or detail == PREVIOUSLY_SATISFIED:
            result_detail = "First factor requirement satisfied by claim in the token"
        else:
            result_detail = "Authentication succeeded"
    return {
        "authenticationMethod": method,
        "authenticationMethodDetail": detail,
        "authenticationStepDateTime": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "authenticationStepRequirement": requirement,
        "authenticationStepResultDetail": result_detail,
        "succeeded": succeeded,
    }


def _derived(method: str | None, detail: str | None, at: datetime, error_code: int, reason: str | None
             ) -> dict[str, Any]:
    return authentication_step(method, detail, at, error_code == 0, reason if error_code else None)


def derived_step(entry: Any) -> dict[str, Any]:
    """The one step an entry (a SignIn, or a log page's SignInRow) stands for when its writer gave none (and for
    entries older than steps)."""
    return _derived(entry.authentication_method, entry.authentication_method_detail, entry.created_at,
                    entry.error_code, entry.failure_reason)


@dataclass(frozen=True, slots=True)
class LoggedSignIn:
    """A written sign-in log entry, as its writer gets it back (the row is not loaded into the session)."""

    id: str


# Built once: the log entry is written on every sign-in and every refusal, without the ORM's unit of work.
_INSERT_SIGN_IN = Prepared(insert(SignIn.__table__))


def sign_in_entry(ctx: RequestContext, attempt: SignInAttempt, error: PassgateError | None = None) -> dict[str, Any]:
    """The log entry's columns. Taken while the attempt's user is loaded: a refused attempt's transaction is
    rolled back (which expires the user) before its entry is written in a new one."""
    if attempt.conditional_access_status not in CONDITIONAL_ACCESS_STATUSES:
        raise ValueError(f"conditionalAccessStatus {attempt.conditional_access_status!r} is not a Graph value")
    if attempt.authentication_requirement not in (SINGLE_FACTOR, MULTI_FACTOR):
        raise ValueError(f"authenticationRequirement {attempt.authentication_requirement!r} is not a Graph value")
    user = attempt.user
    device = user_agents.describe(ctx.user_agent)
    method = attempt.method or None  # none yet: refused before any authentication
    error_code = error.code.number if error else 0
    reason = error.message if error else None
    return {
        "id": new_id(),
        "created_at": ctx.now,
        "user_id": user.id if user else None,
        "user_principal_name": user.user_principal_name if user else attempt.user_principal_name,
        "user_display_name": user.display_name if user else None,
        "app_id": attempt.app_id,
        "app_display_name": attempt.app_display_name,
        "ip_address": ctx.ip_address,
        "user_agent": ctx.user_agent,
        "correlation_id": ctx.correlation_id,
        "error_code": error_code,
        "failure_reason": reason,
        "authentication_method": method,
        "authentication_method_detail": attempt.method_detail,
        "details": attempt.details,
        "conditional_access_status": attempt.conditional_access_status,
        "applied_policies": list(attempt.applied_policies),
        "authentication_details": list(attempt.authentication_details)
        or [_derived(method, attempt.method_detail, ctx.now, error_code, reason)],
        "authentication_requirement": attempt.authentication_requirement,
        "is_interactive": attempt.is_interactive,
        "client_app_used": attempt.client_app_used,
        "authentication_protocol": attempt.authentication_protocol,
        "session_id": attempt.session_id or attempt.details.get("sessionId"),
        "resource_id": attempt.resource_id or attempt.app_id,
        "resource_display_name": attempt.resource_display_name or attempt.app_display_name,
        "operating_system": device.operating_system,
        "browser": device.browser[:64] if device.browser else None,
    }


def write_sign_in(session: Session, entry: dict[str, Any]) -> LoggedSignIn:
    """Write an entry made by `sign_in_entry` on the session's transaction."""
    _INSERT_SIGN_IN.run(session, entry)
    return LoggedSignIn(entry["id"])


def record_sign_in(
    session: Session, ctx: RequestContext, attempt: SignInAttempt, error: PassgateError | None = None
) -> LoggedSignIn:
    return write_sign_in(session, sign_in_entry(ctx, attempt, error))


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
